// What a caller may pass as a command's environment, checked the same way by
// the server (before the command is audited and dispatched) and the agent
// (which trusts no server): names a shell can export, values without NUL,
// bounded in count and size. Which names are allowed is the agent's local
// policy (agent/exec/command-env.ts). And how an environment is recorded in
// the audit and the operation log: secret-looking values redacted.
import { GuruError } from "./errors.ts";

const maxCommandEnvEntries = 128;
const maxCommandEnvNameChars = 256;
const maxCommandEnvValueBytes = 32 * 1024;
const maxCommandEnvTotalBytes = 128 * 1024;

/** POSIX's portable variable names; `BASH_FUNC_x%%` and `A=B` are not among them. */
const validName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Throws invalid, naming the entry, for an environment no command should get. */
export function validateCommandEnv(env: Record<string, string>): void {
  const entries = Object.entries(env);
  if (entries.length > maxCommandEnvEntries) {
    throw new GuruError("invalid", `env has ${entries.length} variables; at most ${maxCommandEnvEntries} are allowed`, { details: { count: entries.length } });
  }
  let total = 0;
  for (const [name, value] of entries) {
    if (name.length > maxCommandEnvNameChars || !validName.test(name)) {
      throw new GuruError(
        "invalid",
        `env name ${JSON.stringify(name.slice(0, 80))} is not a valid variable name (letters, digits and _, not starting with a digit)`,
        {
          details: { variable: name.slice(0, maxCommandEnvNameChars) },
        },
      );
    }
    if (typeof value !== "string" || value.includes("\0")) {
      throw new GuruError("invalid", `env variable ${name} must be a string without NUL characters`, { details: { variable: name } });
    }
    const bytes = Buffer.byteLength(value);
    if (bytes > maxCommandEnvValueBytes) {
      throw new GuruError("invalid", `env variable ${name} is ${bytes} bytes; at most ${maxCommandEnvValueBytes} are allowed`, { details: { variable: name } });
    }
    total += name.length + 1 + bytes;
  }
  if (total > maxCommandEnvTotalBytes) {
    throw new GuruError("invalid", `env totals ${total} bytes; at most ${maxCommandEnvTotalBytes} are allowed`, { details: { totalBytes: total } });
  }
}

const redactedValue = "[redacted]";

// Names whose values are credentials: ...KEY, ...TOKEN, ...SECRET, ...PASSWORD,
// ...PASS(WD), ...CREDENTIAL(S), AUTH..., ...COOKIE..., SESSION...; matched on
// the name's words, case-insensitively, so API_KEY, GITHUB_TOKEN, PGPASSWORD,
// AUTHORIZATION and SESSION_ID are covered. Too much redaction costs a log
// reader a value; too little leaks a secret.
const secretName =
  /(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PWD|CREDENTIALS?|COOKIE|PRIVATE)$|^(AUTH|SESSION)|(^|_)(AUTH|SESSION|COOKIE|SECRET|TOKEN|PASSWORD|CREDENTIALS?|APIKEY)(_|$)/i;
// user:password@ in a URL value (DATABASE_URL-style), whatever the name.
const urlCredentials = /(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^/\s@]+@/gi;

function isSecretEnvName(name: string): boolean {
  return secretName.test(name) && !/^(PWD|OLDPWD)$/i.test(name);
}

/** The environment as the audit and the operation log keep it. */
export function redactCommandEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    out[name] = isSecretEnvName(name) ? redactedValue : String(value).replace(urlCredentials, `$1${redactedValue}@`);
  }
  return out;
}
