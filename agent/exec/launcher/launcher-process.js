// The agent's process launcher: a small child process of the agent that
// starts commands on its behalf (POSIX only). fork() copies the parent's page
// tables, so starting a process costs time in proportion to the parent's
// memory: about 3 ms from the agent (~110 MB), about 1 ms from a bare Node,
// and more again while a transfer has grown the agent's heap. Commands fork
// from here instead, and the agent's event loop is not held while they do.
//
// Even from here a fork is most of a short command's time (on a VM whose page
// tables are expensive to copy, 2 ms of the 3 that `sh -c true` takes). So the
// fork is done ahead of time: a waiting shell (a "zygote", zygote.js) is
// started for the next prepared output sockets, in the environment of the
// last command, and a launch that fits it is one exec in that process. A
// launch that does not fit (another environment, a long command line) is
// spawned as before.
//
// Plain JavaScript on purpose: a .ts file would load Node's TypeScript
// stripper, which would double this process's memory and with it the cost it
// exists to avoid. It imports Node's built-ins and zygote.js, nothing else.
//
// Protocol on the IPC channel (see launcher.ts, the agent's side):
//   agent → here: { type: "stdio", id, stream: "stdout" | "stderr" } with a
//     socket as the handle (its peer is read by the agent), twice, ahead of
//     time; later { type: "launch", id, file, args, cwd, env, detached }
//   here → agent: { type: "spawned", id, pid } or { type: "failed", id, code,
//     message }, then { type: "exit", id, code, signal }
// When the agent goes away (the IPC channel closes), every process group
// started here is killed and this process exits: nothing outlives the agent.
import { spawn } from "node:child_process";
import { createZygotes } from "./zygote.js";

// The agent runs with umask 077 for its private state; commands get the mask
// the agent names (its first argument, octal), as a login shell would give.
if (/^[0-7]{1,4}$/.test(process.argv[2] ?? "")) process.umask(Number.parseInt(process.argv[2], 8));

/** id → { stdout, stderr } sockets waiting for their launch message. */
const stdio = new Map();
/** pids of running process groups (detached launches and zygotes), for the agent's exit. */
const groups = new Set();

function send(message) {
  if (process.connected) process.send(message);
}

function closeStdio(id) {
  const pair = stdio.get(id);
  stdio.delete(id);
  pair?.stdout?.destroy();
  pair?.stderr?.destroy();
}

const zygotes = createZygotes({
  groups,
  /** Prepared ids with both sockets and no launch yet, oldest first (the agent uses them in that order). */
  readyIds: () => [...stdio].filter(([, pair]) => pair.stdout !== undefined && pair.stderr !== undefined && !pair.launched).map(([id]) => id),
  stdioOf: (id) => stdio.get(id),
  send,
  // The command runs in the zygote, which holds its own copies of the sockets.
  started: closeStdio,
  // The zygote died before it took the launch: spawn it with the same sockets.
  fallback: spawnCommand,
  failed(id, code, message) {
    closeStdio(id);
    send({ type: "failed", id, code, message });
  },
});

function launch(request) {
  const pair = stdio.get(request.id);
  if (pair?.stdout === undefined || pair?.stderr === undefined) {
    zygotes.discard(request.id);
    closeStdio(request.id);
    send({ type: "failed", id: request.id, code: "EPROTO", message: "the launch arrived without its output sockets" });
    return;
  }
  // Its sockets stay here until the command holds them (a zygote may die first), but no other zygote may take them.
  pair.launched = true;
  zygotes.commandStarted();
  if (!zygotes.launch(request)) spawnCommand(request);
}

function spawnCommand({ id, file, args, cwd, env, detached }) {
  const pair = stdio.get(id);
  let child;
  try {
    // env is always given: a missing one would hand the command this process's.
    child = spawn(file, args, { cwd, env: env ?? {}, detached, stdio: ["ignore", pair.stdout, pair.stderr] });
  } catch (err) {
    closeStdio(id);
    send({ type: "failed", id, code: err.code ?? "EINVAL", message: err.message });
    zygotes.commandEnded();
    return;
  }
  // The child holds its own copies of the sockets now.
  closeStdio(id);
  if (child.pid === undefined) {
    child.once("error", (err) => {
      send({ type: "failed", id, code: err.code ?? "EUNKNOWN", message: err.message });
      zygotes.commandEnded();
    });
    return;
  }
  const pid = child.pid;
  if (detached) groups.add(pid);
  send({ type: "spawned", id, pid });
  child.on("error", () => {}); // reported through exit; nothing else can happen after a successful spawn
  child.on("exit", (code, signal) => {
    groups.delete(pid);
    send({ type: "exit", id, code, signal });
    zygotes.commandEnded();
  });
}

process.on("message", (message, handle) => {
  if (message?.type === "stdio") {
    const pair = stdio.get(message.id) ?? {};
    pair[message.stream === "stderr" ? "stderr" : "stdout"] = handle;
    stdio.set(message.id, pair);
    if (pair.stdout !== undefined && pair.stderr !== undefined) zygotes.stdioReady();
  } else if (message?.type === "launch") {
    launch(message);
  }
});

process.on("disconnect", () => {
  for (const pid of groups) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  process.exit(0);
});
