// Zygotes: shells started ahead of time that each become one command with a
// single exec, so a launch costs no fork. Part of the launcher process
// (launcher-process.js), plain JavaScript like it.
//
// A zygote is `/bin/sh -c <script>` started detached (it leads its own
// process group, as a command does) with a prepared pair of output sockets
// as its stdout and stderr, in the environment the next command is expected
// to have: that of the last one. On launch it reads the command from its
// stdin (cwd, file, args, each as a line count and the lines), changes to the
// directory, acknowledges on fd 3 and execs the file with stdin from
// /dev/null and fd 3 closed. The command is then exactly what spawn would
// have started: same pid as the group, same descriptors, same environment
// (the shell's own variables are not exported, and the ones it exports by
// itself are unset first), same umask.
//
// A launch is spawned instead when it does not fit: another environment (the
// zygote's was fixed when it started), a variable the shell would change or
// drop, a relative or missing program, a NUL byte, or a command line long
// enough that the shell's byte-by-byte read would cost more than the fork.
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";

const shell = "/bin/sh";
/** Waiting zygotes kept at most, each holding one prepared pair of output sockets. */
const target = 2;
/** Past this the command is spawned: the shell reads its input one byte per read(2). */
const maxSpecBytes = 2048;
/**
 * A fork costs the launcher a couple of milliseconds of CPU (on a VM). Just
 * after a command ended, the agent, the server and the caller are busy with
 * its answer, and a fork then would slow that answer down (measured:
 * RunCommand("true") p50 9.7 ms with the refill this long after the last
 * command, 10.7 ms without zygotes, and no gain when it forked at once).
 */
const refillAfterEndMs = 8;
/** Refill this long after a launch even while commands still run (long ones must not hold it back). */
const refillAfterLaunchMs = 50;
/** Zygotes that die before any launch (a broken /bin/sh): past this many, launches are all spawned. */
const maxUnexpectedDeaths = 3;

// Exit codes of the script before the exec; after it, the command's own.
const noInput = 100;
const noDirectory = 101;

const script = `__guru_field() {
  IFS= read -r __guru_n || exit ${noInput}
  IFS= read -r __guru_v || exit ${noInput}
  while [ "$__guru_n" -gt 1 ]; do
    IFS= read -r __guru_l || exit ${noInput}
    __guru_v="$__guru_v
$__guru_l"
    __guru_n=$((__guru_n - 1))
  done
}
__guru_field; __guru_dir=$__guru_v
__guru_field; __guru_file=$__guru_v
IFS= read -r __guru_argc || exit ${noInput}
set --
while [ "$__guru_argc" -gt 0 ]; do
  __guru_field
  set -- "$@" "$__guru_v"
  __guru_argc=$((__guru_argc - 1))
done
cd -P -- "$__guru_dir" 2>/dev/null || exit ${noDirectory}
unset PWD OLDPWD SHLVL
printf x >&3
exec "$__guru_file" "$@" 0</dev/null 3>&-
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
function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Why a chdir into `dir` fails, as spawn's error code would say it. */
function chdirFailure(dir) {
  try {
    if (!statSync(dir).isDirectory()) return "ENOTDIR";
    accessSync(dir, constants.X_OK);
    return "ENOENT";
  } catch (err) {
    return typeof err?.code === "string" ? err.code : "ENOENT";
  }
}

/**
 * deps: groups (the launcher's set of process groups to kill when the agent
 * goes), readyIds() (prepared ids with both sockets, oldest first), stdioOf(id),
 * send(message) to the agent; and what becomes of a launch handed to a
 * zygote: started(id) once it execs (the launcher lets go of the sockets),
 * fallback(request) when it died first (spawn it), failed(id, code, message).
 */
export function createZygotes(deps) {
  /** id → zygote; only those not launched yet. */
  const waiting = new Map();
  let disabled = !isExecutable(shell);
  let unexpectedDeaths = 0;
  /** The environment of the last launch a zygote could serve. */
  let expected;
  let running = 0;
  let quietTimer;
  let refillTimer;

  function start(id, pair) {
    let child;
    try {
      child = spawn(shell, ["-c", script], {
        cwd: "/",
        env: expected.env,
        detached: true,
        stdio: ["pipe", pair.stdout, pair.stderr, "pipe"],
      });
    } catch {
      disabled = true;
      return;
    }
    if (child.pid === undefined) {
      child.once("error", () => {});
      disabled = true;
      return;
    }
    const z = { id, child, pid: child.pid, key: expected.key, state: "waiting", acked: false, ackClosed: false, exit: undefined };
    deps.groups.add(z.pid);
    waiting.set(id, z);
    child.on("error", () => {});
    child.stdin.on("error", () => {}); // it died before reading: its exit says so
    const ack = child.stdio[3];
    ack.on("data", () => {
      z.acked = true;
      if (z.state === "starting") started(z);
    });
    ack.on("error", () => {});
    ack.on("close", () => {
      z.ackClosed = true;
      settle(z);
    });
    child.on("exit", (code, signal) => {
      z.exit = { code, signal };
      settle(z);
    });
  }

  function started(z) {
    z.state = "running";
    deps.started(z.id);
    deps.send({ type: "spawned", id: z.id, pid: z.pid, prepared: true });
  }

  function settle(z) {
    if (z.exit === undefined) return;
    if (z.state === "starting") {
      if (z.acked) started(z);
      // The acknowledgement may still be on its way: decide once fd 3 closed.
      else if (!z.ackClosed) return;
    }
    const state = z.state;
    z.state = "ended";
    deps.groups.delete(z.pid);
    if (state === "waiting") {
      waiting.delete(z.id);
      if (++unexpectedDeaths >= maxUnexpectedDeaths) disabled = true;
      queueRefill();
    } else if (state === "starting") {
      if (z.exit.code === noDirectory) {
        // It could not change into the directory: fail with the reason spawn would give.
        const code = chdirFailure(z.request.cwd);
        deps.failed(z.id, code, `spawn ${z.request.file} ${code}`);
        commandEnded();
      } else {
        // It died before it took the launch (killed, out of memory): spawn it instead.
        deps.fallback(z.request);
      }
    } else if (state === "running") {
      deps.send({ type: "exit", id: z.id, code: z.exit.code, signal: z.exit.signal });
      commandEnded();
    }
  }

  function discard(z) {
    waiting.delete(z.id);
    z.state = "discarded";
    try {
      process.kill(-z.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }

  /** Forks zygotes up to the target; `evenIfBusy` for the timer that long commands must not hold back. */
  function refill(evenIfBusy = false) {
    if (running > 0 && !evenIfBusy) return;
    clearTimeout(quietTimer);
    quietTimer = undefined;
    clearTimeout(refillTimer);
    refillTimer = undefined;
    if (disabled || expected === undefined) return;
    for (const z of [...waiting.values()]) if (z.key !== expected.key) discard(z);
    for (const id of deps.readyIds()) {
      if (waiting.size >= target || disabled) break;
      if (!waiting.has(id)) start(id, deps.stdioOf(id));
    }
  }

  /** Once nothing happened for refillAfterEndMs: each call starts the wait again. */
  function queueRefill() {
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => refill(), refillAfterEndMs);
  }

  /** A launch arrived: until it ended, a refill would put a fork in its way. */
  function commandStarted() {
    running++;
    if (refillTimer === undefined) refillTimer = setTimeout(() => refill(true), refillAfterLaunchMs);
  }

  /** Its exit or failure was reported. */
  function commandEnded() {
    running--;
    queueRefill();
  }

  return {
    /** Starts the launch in its zygote and returns true, or returns false: spawn it. */
    launch({ id, file, args, cwd, env, detached }) {
      const key = zygoteEnvKey(env);
      if (key !== undefined) expected = { env, key };
      const z = waiting.get(id);
      if (z === undefined) return false;
      const spec = detached && key === z.key ? zygoteSpec(file, args, cwd) : undefined;
      if (spec === undefined || !isExecutable(file)) {
        discard(z);
        return false;
      }
      waiting.delete(id);
      z.state = "starting";
      z.request = { id, file, args, cwd, env, detached };
      z.child.stdin.end(spec);
      return true;
    },
    /** The launch of `id` will not happen (its sockets are being closed). */
    discard(id) {
      const z = waiting.get(id);
      if (z !== undefined) discard(z);
    },
    commandStarted,
    commandEnded,
    /** A prepared pair is complete: idle, fill the zygotes now; busy, the refill after the command does. */
    stdioReady() {
      if (running === 0) queueRefill();
    },
  };
}
