// The agent's local policy: a JSON file the endpoint's owner controls. The
// server cannot override it; every operation the agent performs passes it
// first, whatever the server allowed.
//
// File format (every field optional; a missing field takes its default):
//   {
//     "allowedPaths": ["/srv/app", "/var/log"],      // absolute; default: the caller's defaults
//     "commands": {
//       "deny":  ["rm -rf *", "re:\\bshutdown\\b"],  // checked first; any match refuses
//       "allow": ["systemctl status *", "df -h"]     // empty: everything not denied is allowed
//     },
//     "capabilities": { "exec": true, "files": true, "services": false, "registry": false, "terminal": false },
//     "exec": { "allowEnv": ["PATH", "PYTHON*"] },         // see below
//     "consent": {
//       "mode": "ask",                                  // ask | auto-approve | deny (attended sessions)
//       "command": ["zenity", "--question", "--text=Allow remote access?"]  // asks when no terminal; exit 0 approves
//     },
//     "services": {                                  // with capabilities.services
//       "allow": ["nginx", "app-*"],                 // empty: every service not denied
//       "deny":  ["sshd", "guru*"],                  // checked first
//       "control": true                              // false: listing only
//     },
//     "registryKeys": ["HKLM\\SOFTWARE", "HKCU"]      // with capabilities.registry; key prefixes
//   }
// Service rules are globs matched against the whole service name,
// case-insensitively, `*` the only wildcard; they govern control (start,
// stop, restart, enable, disable). Registry key prefixes match whole key
// parts (HKLM\SOFTWARE covers HKLM\SOFTWARE\Vendor, not HKLM\SOFTWAREX) and
// govern every registry operation.
// Consent: with "mode": "ask" written here, every session needs the approval
// of the person at the endpoint (unattended ones are refused). Without a
// consent section, attended sessions are asked as with "ask" and unattended
// ones are allowed, as before consent existed.
// Unknown fields are refused rather than ignored: a typo such as "alowedPaths"
// must not silently lift a restriction.
//
// Command rules. A rule is a string:
// - `re:<regex>`: a JavaScript regular expression searched in the trimmed
//   command (not anchored: write ^...$ to match the whole command; (?i:...)
//   for case-insensitive parts).
// - anything else: a glob matched against the WHOLE trimmed command,
//   case-insensitively (Windows commands are case-insensitive, and a deny rule
//   must not be dodged by `RM -rf /`). `*` is the only wildcard; every other
//   character, `?` included, is literal. A space in the pattern matches a run
//   of whitespace in the command (spaces and tabs only, in an allow rule).
//   In an ALLOW rule, `*` does not match the shell's control and substitution
//   characters (; & | ` $ ( ) < > and newlines), so `ls *` allows `ls -la /tmp`
//   but not `ls; rm -rf /` nor `ls $(rm -rf /)`. An allow rule that needs those
//   characters must spell them out or use `re:`. In a DENY rule `*` matches
//   anything, so denying is never weakened by the exception.
// Deny rules are a guard against mistakes, not a sandbox: a shell offers many
// spellings of one command. Owners who need a hard boundary use an allow list.
//
// exec.allowEnv: environment variables a caller may set for a command although
// they change what a shell or loader runs (PATH, BASH_ENV, LD_PRELOAD...: see
// agent/exec/command-env.ts); they are refused otherwise. A name, or a prefix
// ending in `*`; matched case-insensitively. GURU_* names are the agent's own
// and can never be allowed.
import { readFile } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { z } from "zod";
import { GuruError } from "../../lib/errors.ts";

export type CommandRule = string;

export type ConsentMode = "ask" | "auto-approve" | "deny";

export interface LocalPolicy {
  allowedPaths: string[];
  commands: { deny: CommandRule[]; allow: CommandRule[] };
  capabilities: { exec: boolean; files: boolean; services: boolean; registry: boolean; terminal: boolean };
  exec: { allowEnv: string[] };
  consent: {
    mode: ConsentMode;
    /** The owner wrote "mode": "ask": unattended sessions are refused too. */
    requiredForEverySession: boolean;
    /** Program and arguments that ask the person (a desktop dialog); exit code 0 approves. */
    command?: string[];
  };
  services: { allow: string[]; deny: string[]; control: boolean };
  registryKeys: string[];
}

export type Capability = keyof LocalPolicy["capabilities"];

export type CommandCheck = { allowed: true } | { allowed: false; rule: string };

const regexPrefix = "re:";
// Characters that chain, substitute or redirect in sh, cmd and PowerShell.
const shellControlClass = "[^;&|`$()<>\\r\\n]";

const defaultCapabilities: LocalPolicy["capabilities"] = {
  exec: true,
  files: true,
  services: false,
  registry: false,
  terminal: false,
};

const defaultRegistryKeys = ["HKLM\\SOFTWARE", "HKCU"];

const serviceRuleSchema = z
  .string()
  .min(1, "a rule must not be empty")
  .regex(/^[A-Za-z0-9_.@:+\\ *-]+$/, "a service rule uses name characters and * only");

const ruleSchema = z
  .string()
  .min(1, "a rule must not be empty")
  .superRefine((rule, ctx) => {
    if (!rule.startsWith(regexPrefix)) return;
    try {
      new RegExp(rule.slice(regexPrefix.length));
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `invalid regular expression: ${(err as Error).message}` });
    }
  });

const allowEnvSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*\*?$/, "must be a variable name, or a prefix ending in *")
  .refine((name) => !/^GURU_/i.test(name) && !/^(G|GU|GUR|GURU)?\*$/i.test(name), { message: "GURU_* variables belong to the agent and cannot be allowed" });

const fileSchema = z
  .object({
    allowedPaths: z
      .array(z.string().refine((p) => isAbsolute(p), { message: "must be an absolute path" }))
      .min(1, "must list at least one path")
      .optional(),
    commands: z
      .object({ deny: z.array(ruleSchema).optional(), allow: z.array(ruleSchema).optional() })
      .strict()
      .optional(),
    capabilities: z
      .object({
        exec: z.boolean().optional(),
        files: z.boolean().optional(),
        services: z.boolean().optional(),
        registry: z.boolean().optional(),
        terminal: z.boolean().optional(),
      })
      .strict()
      .optional(),
    exec: z
      .object({ allowEnv: z.array(allowEnvSchema).optional() })
      .strict()
      .optional(),
    consent: z
      .object({
        mode: z.enum(["ask", "auto-approve", "deny"]).optional(),
        command: z.array(z.string().min(1)).min(1, "must name a program").optional(),
      })
      .strict()
      .optional(),
    services: z
      .object({ allow: z.array(serviceRuleSchema).optional(), deny: z.array(serviceRuleSchema).optional(), control: z.boolean().optional() })
      .strict()
      .optional(),
    registryKeys: z
      .array(z.string().regex(/^(HKLM|HKCU|HKU|HKCR|HKCC|HKEY_[A-Z_]+)(\\[^\\]+)*\\?$/i, "must be a registry key such as HKLM\\SOFTWARE\\Vendor"))
      .optional(),
  })
  .strict();

/**
 * Loads the policy file, or the defaults when no file is configured. A file
 * that is configured but unreadable or invalid fails: an owner's restriction
 * must never be lifted by a broken file.
 */
export async function loadLocalPolicy(options: { file?: string; defaults: PolicyDefaults }): Promise<LocalPolicy> {
  const { file, defaults } = options;
  if (file === undefined) return buildPolicy({}, defaults);

  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new GuruError("invalid", `local policy ${file} cannot be read (${code})`, { cause: err, details: { file } });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new GuruError("invalid", `local policy ${file} is not valid JSON: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = formatPath(issue.path);
    throw new GuruError("invalid", `local policy ${file}: ${field}: ${issue.message}`, {
      details: { file, field, issues: parsed.error.issues.map((i) => ({ field: formatPath(i.path), message: i.message })) },
    });
  }
  return buildPolicy(parsed.data, defaults);
}

/** What applies where the file says nothing: the agent's flags (or the quick start) set these. */
export interface PolicyDefaults {
  allowedPaths: string[];
  /** Capabilities switched on unless the file switches them off. */
  capabilities?: Partial<LocalPolicy["capabilities"]>;
}

function buildPolicy(data: z.infer<typeof fileSchema>, defaults: PolicyDefaults): LocalPolicy {
  return {
    allowedPaths: [...(data.allowedPaths ?? defaults.allowedPaths)],
    commands: { deny: [...(data.commands?.deny ?? [])], allow: [...(data.commands?.allow ?? [])] },
    capabilities: { ...defaultCapabilities, ...defaults.capabilities, ...data.capabilities },
    exec: { allowEnv: [...(data.exec?.allowEnv ?? [])] },
    consent: {
      mode: data.consent?.mode ?? "ask",
      requiredForEverySession: data.consent?.mode === "ask",
      command: data.consent?.command ? [...data.consent.command] : undefined,
    },
    services: { allow: [...(data.services?.allow ?? [])], deny: [...(data.services?.deny ?? [])], control: data.services?.control ?? true },
    registryKeys: [...(data.registryKeys ?? defaultRegistryKeys)],
  };
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : `${out === "" ? "" : "."}${String(key)}`;
  return out === "" ? "(root)" : out;
}

/** Deny rules first; then, when the allow list is not empty, the command must match one of it. */
export function checkCommand(policy: LocalPolicy, command: string): CommandCheck {
  const trimmed = command.trim();
  const { deny, allow } = compiledRules(policy);
  for (const rule of deny) if (rule.test(trimmed)) return { allowed: false, rule: rule.text };
  if (allow.length === 0) return { allowed: true };
  for (const rule of allow) if (rule.test(trimmed)) return { allowed: true };
  return { allowed: false, rule: "not in the allow list" };
}

/** Throws denied when the owner switched the capability off. */
export function requireCapability(policy: LocalPolicy, capability: Capability): void {
  if (policy.capabilities[capability] !== true) {
    throw new GuruError("denied", `the agent's local policy disables ${capability}`, {
      reason: "POLICY_DENIED",
      metadata: { capability },
      details: { capability },
    });
  }
}

interface CompiledRule {
  text: string;
  test(command: string): boolean;
}

// Compiled once per rule list: checkCommand sits on every exec.
const compiledCache = new WeakMap<CommandRule[], CompiledRule[]>();

function compiledRules(policy: LocalPolicy): { deny: CompiledRule[]; allow: CompiledRule[] } {
  return { deny: compileList(policy.commands.deny, "deny"), allow: compileList(policy.commands.allow, "allow") };
}

function compileList(rules: CommandRule[], kind: "deny" | "allow"): CompiledRule[] {
  let compiled = compiledCache.get(rules);
  // A list edited in place after compiling is recompiled.
  if (compiled === undefined || compiled.length !== rules.length || compiled.some((c, i) => c.text !== rules[i])) {
    compiled = rules.map((text) => compileRule(text, kind));
    compiledCache.set(rules, compiled);
  }
  return compiled;
}

function compileRule(text: string, kind: "deny" | "allow"): CompiledRule {
  if (text.startsWith(regexPrefix)) {
    const re = new RegExp(text.slice(regexPrefix.length));
    return { text, test: (command) => re.test(command) };
  }
  // In an allow rule neither `*` nor a space may cross a newline, which
  // separates commands as `;` does.
  const star = kind === "deny" ? "[\\s\\S]*" : `${shellControlClass}*`;
  const space = kind === "deny" ? "\\s+" : "[ \\t]+";
  const body = text
    .trim()
    .split("*")
    .map((part) => part.split(/\s+/).map(escapeRegex).join(space))
    .join(star);
  const re = new RegExp(`^${body}$`, "i");
  return { text, test: (command) => re.test(command) };
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}
