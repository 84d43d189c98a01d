// What a zygote is and what it can run, shared by the agent (launcher.ts,
// which hands launches to zygotes) and the launcher process (zygote.js, which
// starts them). Plain JavaScript: the launcher process loads no TypeScript.
//
// A zygote is `/bin/sh -c <zygoteScript>` started ahead of time, detached
// (it leads its own process group, as a command does), with a socket as its
// stdin (the agent holds the other end), a prepared pair of output sockets
// as its stdout and stderr, and the environment the next command is expected
// to have. On launch it reads the command from the socket (cwd, file, args,
// each as a line count and the lines), changes to the directory, writes one
// byte back and execs the file with stdin from /dev/null. The command is
// then exactly what spawn would have started: same pid as the group, same
// descriptors, same environment (the shell's own variables are not
// exported, and the ones it exports by itself are unset first), same umask.
//
// A launch is spawned instead when it does not fit: another environment (the
// zygote's was fixed when it started), a variable the shell would change or
// drop, a relative program or directory, a NUL byte, or a command line long
// enough that the shell's byte-by-byte read would cost more than a fork.
import { accessSync, constants, statSync } from "node:fs";

export const zygoteShell = "/bin/sh";

/** Exit codes of the script before the exec (after it, the command's own). */
export const zygoteExit = Object.freeze({ noInput: 100, noDirectory: 101 });

/** Past this the command is spawned: the shell reads its input one byte per read(2). */
const maxSpecBytes = 2048;

export const zygoteScript = `__guru_field() {
  IFS= read -r __guru_n || exit ${zygoteExit.noInput}
  IFS= read -r __guru_v || exit ${zygoteExit.noInput}
  while [ "$__guru_n" -gt 1 ]; do
    IFS= read -r __guru_l || exit ${zygoteExit.noInput}
    __guru_v="$__guru_v
$__guru_l"
    __guru_n=$((__guru_n - 1))
  done
}
__guru_field; __guru_dir=$__guru_v
__guru_field; __guru_file=$__guru_v
IFS= read -r __guru_argc || exit ${zygoteExit.noInput}
set --
while [ "$__guru_argc" -gt 0 ]; do
  __guru_field
  set -- "$@" "$__guru_v"
  __guru_argc=$((__guru_argc - 1))
done
cd -P -- "$__guru_dir" 2>/dev/null || exit ${zygoteExit.noDirectory}
unset PWD OLDPWD SHLVL
printf x >&0
exec "$__guru_file" "$@" 0</dev/null
`;

const validName = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Variables a shell sets, exports or acts on by itself, before the exec.
const shellOwned = new Set([
  "PWD",
  "OLDPWD",
  "SHLVL",
  "IFS",
  "CDPATH",
  "ENV",
  "BASH_ENV",
  "SHELLOPTS",
  "BASHOPTS",
  "POSIXLY_CORRECT",
  "LINENO",
  "PPID",
  "OPTIND",
  "OPTARG",
  "PS1",
  "PS2",
  "PS3",
  "PS4",
]);

/** A key naming the environment, or undefined when a zygote's shell could not pass it on unchanged. */
export function zygoteEnvKey(env) {
  if (env === null || typeof env !== "object") return undefined;
  const entries = Object.entries(env);
  for (const [name, value] of entries) {
    if (!validName.test(name) || shellOwned.has(name) || name.startsWith("__guru_")) return undefined;
    if (typeof value !== "string" || value.includes("\0")) return undefined;
  }
  return JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function field(value) {
  const lines = value.split("\n");
  return `${lines.length}\n${lines.join("\n")}\n`;
}

/** What the script reads, or undefined when the launch is better spawned. */
export function zygoteSpec(file, args, cwd) {
  if (typeof file !== "string" || !file.startsWith("/") || typeof cwd !== "string" || !cwd.startsWith("/") || !Array.isArray(args)) return undefined;
  const fields = [cwd, file, ...args];
  if (fields.some((f) => typeof f !== "string" || f.includes("\0"))) return undefined;
  const spec = `${field(cwd)}${field(file)}${args.length}\n${args.map(field).join("")}`;
  return Buffer.byteLength(spec) <= maxSpecBytes ? spec : undefined;
}

/** True for a regular file this process may execute; else spawn reports why not, as it always did. */
export function isExecutableFile(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Why a chdir into `dir` fails, as spawn's error code would say it. */
export function chdirFailure(dir) {
  try {
    if (!statSync(dir).isDirectory()) return "ENOTDIR";
    accessSync(dir, constants.X_OK);
    return "ENOENT";
  } catch (err) {
    return typeof err?.code === "string" ? err.code : "ENOENT";
  }
}
