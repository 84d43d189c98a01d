// The environment a command runs with. Never the agent's own: that holds the
// agent's key (GURU_AGENT_KEY), and under `guru start` the server's settings
// (DATABASE_URL). A command gets a small base per OS, built once at agent
// start, plus what the caller asked for, under the owner's local policy.
//
// A caller's variables that change what a shell or a program loader runs
// (PATH, BASH_ENV, LD_PRELOAD, NODE_OPTIONS...) are refused unless the policy
// allows the name (exec.allowEnv): otherwise `env: {BASH_ENV: script}` would run
// a script under a policy that allows only `df -h`. It is a denylist, so it is
// a guard, not a sandbox: owners who need a hard boundary use a command allow
// list AND keep these names refused. GURU_* names are never accepted.
import { homedir, userInfo } from "node:os";
import { validateCommandEnv } from "../../lib/command-env.ts";
import { GuruError } from "../../lib/errors.ts";
import type { LocalPolicy } from "../policy/local-policy.ts";

/** PATH for every command on POSIX: the system's directories, nothing from the agent's environment. */
export const safePosixPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const posixBaseNames = ["HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TZ", "SHELL"];
const windowsBaseNames = [
  "SystemRoot",
  "SystemDrive",
  "windir",
  "ComSpec",
  "PATHEXT",
  "Path",
  "TEMP",
  "TMP",
  "USERPROFILE",
  "USERNAME",
  "USERDOMAIN",
  "HOMEDRIVE",
  "HOMEPATH",
  "APPDATA",
  "LOCALAPPDATA",
  "ProgramData",
  "ProgramFiles",
  "ProgramFiles(x86)",
  "ProgramW6432",
  "CommonProgramFiles",
  "CommonProgramFiles(x86)",
  "CommonProgramW6432",
  "PUBLIC",
  "ALLUSERSPROFILE",
  "COMPUTERNAME",
  "OS",
  "NUMBER_OF_PROCESSORS",
  "PROCESSOR_ARCHITECTURE",
  "PSModulePath",
];

/** The base environment of every command, from the agent's environment at start. */
export function baseCommandEnv(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const base: Record<string, string> = {};
  if (platform === "win32") {
    // process.env is case-insensitive on Windows; a copied object is not.
    const byUpper = new Map(Object.entries(env).map(([k, v]) => [k.toUpperCase(), v]));
    for (const name of windowsBaseNames) {
      const value = env[name] ?? byUpper.get(name.toUpperCase());
      if (value !== undefined && value !== "") base[name] = value;
    }
    return base;
  }
  for (const name of posixBaseNames) {
    const value = env[name];
    if (value !== undefined && value !== "") base[name] = value;
  }
  base.PATH = safePosixPath;
  base.HOME ??= homedir();
  if (base.USER === undefined || base.LOGNAME === undefined) {
    const user = safeUserName();
    if (user !== undefined) {
      base.USER ??= user;
      base.LOGNAME ??= user;
    }
  }
  base.SHELL ??= "/bin/sh";
  return base;
}

function safeUserName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined; // no passwd entry for this uid (some containers)
  }
}

interface EnvRule {
  /** Upper case; a trailing * is a prefix. */
  pattern: string;
  why: string;
}

const shell = "changes what the shell runs";
const loader = "changes what the program loader loads";
const interp = "changes what an interpreter loads at start";
const tool = "names a program a tool runs";
const base = "is part of the agent's base environment";

// Matched case-insensitively: Windows names are case-insensitive, and on POSIX
// refusing `ld_preload` too costs nothing.
const refusedEnv: EnvRule[] = [
  ...[
    "PATH",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "IFS",
    "PROMPT_COMMAND",
    "CDPATH",
    "GLOBIGNORE",
    "FIGNORE",
    "ZDOTDIR",
    "BASH_XTRACEFD",
    "BASH_LOADABLES_PATH",
    "BASH_COMPAT",
    "EXECIGNORE",
    "HISTFILE",
    "INPUTRC",
    "BASH_FUNC_*",
    "SHELL",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    "XDG_DATA_DIRS",
    "TERMINFO",
    "TERMINFO_DIRS",
  ].map((pattern) => ({ pattern, why: shell })),
  ...[
    "LD_*",
    "DYLD_*",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "MALLOC_*",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "RES_OPTIONS",
    "RESOLV_HOST_CONF",
    "NLSPATH",
    "LOCPATH",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    "GIO_EXTRA_MODULES",
    "GIO_MODULE_DIR",
    "GTK_PATH",
    "GTK_MODULES",
    "QT_PLUGIN_PATH",
    "LIBPATH",
    "SHLIB_PATH",
  ].map((pattern) => ({ pattern, why: loader })),
  ...[
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_REPL_EXTERNAL_MODULE",
    "NPM_CONFIG_*",
    "PERL5*",
    "PERLLIB",
    "PERLDB_OPTS",
    "PYTHON*",
    "RUBYOPT",
    "RUBYLIB",
    "RUBYSHELL",
    "GEM_*",
    "BUNDLE_*",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "LUA_*",
    "PHPRC",
    "PHP_INI_SCAN_DIR",
    "TCLLIBPATH",
    "R_PROFILE*",
    "R_ENVIRON*",
    "DOTNET_STARTUP_HOOKS",
    "DOTNET_ADDITIONAL_DEPS",
    "COR_*",
    "CORECLR_*",
    "PSMODULEPATH",
    "PSEXECUTIONPOLICYPREFERENCE",
    "__PSLOCKDOWNPOLICY",
    "RUSTC_WRAPPER",
    "CARGO_*",
  ].map((pattern) => ({ pattern, why: interp })),
  ...[
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_ASKPASS",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "GIT_TEMPLATE_DIR",
    "GIT_CONFIG*",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "MANPAGER",
    "MANPATH",
    "LESSOPEN",
    "LESSCLOSE",
    "BROWSER",
    "SYSTEMD_PAGER",
    "SYSTEMD_EDITOR",
    "KRB5_CONFIG",
  ].map((pattern) => ({ pattern, why: tool })),
  ...[
    "COMSPEC",
    "PATHEXT",
    "SYSTEMROOT",
    "SYSTEMDRIVE",
    "WINDIR",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "PROGRAMDATA",
    "PROGRAMFILES*",
    "PROGRAMW6432",
    "COMMONPROGRAM*",
    "ALLUSERSPROFILE",
  ].map((pattern) => ({ pattern, why: base })),
];

function matches(pattern: string, upperName: string): boolean {
  return pattern.endsWith("*") ? upperName.startsWith(pattern.slice(0, -1).toUpperCase()) : upperName === pattern.toUpperCase();
}

/** The refusal rule a name falls under, if any (ignoring the policy). */
function refusedEnvRule(name: string): EnvRule | undefined {
  const upper = name.toUpperCase();
  return refusedEnv.find((rule) => matches(rule.pattern, upper));
}

/**
 * Checks the caller's variables against the rules and the policy and returns
 * the command's whole environment. Throws invalid for a malformed entry,
 * denied (naming the variable and the rule) for a refused one.
 */
export function commandEnv(
  callerEnv: Record<string, string> | undefined,
  policy: LocalPolicy,
  baseEnv: Record<string, string>,
  platform: NodeJS.Platform = process.platform,
): Record<string, string> {
  const caller = callerEnv ?? {};
  validateCommandEnv(caller);
  for (const name of Object.keys(caller)) {
    if (/^GURU_/i.test(name)) {
      throw new GuruError("denied", `environment variable ${name} refused: GURU_* variables belong to the agent and are never passed to commands`, {
        details: { variable: name, rule: "GURU_*" },
      });
    }
    const rule = refusedEnvRule(name);
    if (rule === undefined) continue;
    if (policy.exec.allowEnv.some((allowed) => matches(allowed, name.toUpperCase()))) continue;
    throw new GuruError(
      "denied",
      `environment variable ${name} refused by the agent's policy: it ${rule.why} (rule "${rule.pattern}"); the endpoint's owner can allow it with exec.allowEnv`,
      { details: { variable: name, rule: rule.pattern } },
    );
  }
  const env = { ...baseEnv };
  for (const [name, value] of Object.entries(caller)) {
    // Windows names are case-insensitive: an allowed `PATH` replaces the base's `Path`.
    if (platform === "win32") for (const key of Object.keys(env)) if (key.toUpperCase() === name.toUpperCase()) delete env[key];
    env[name] = value;
  }
  return env;
}
