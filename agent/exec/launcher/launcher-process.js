// The agent's process launcher: a small child process of the agent that
// starts commands on its behalf (POSIX only). fork() copies the parent's page
// tables, so starting a process costs time in proportion to the parent's
// memory: about 3 ms from the agent (~110 MB), about 1 ms from a bare Node,
// and more again while a transfer has grown the agent's heap. Commands fork
// from here instead, and the agent's event loop is not held while they do.
//
// Even from here a fork is most of a short command's start on a VM whose
// page tables are dear to copy, so this process also keeps zygotes for the
// agent (zygote-spec.js): shells started ahead of time that a command becomes
// with one exec. The agent hands them their launch itself; the launcher
// starts them and reports their exit.
//
// Plain JavaScript on purpose: a .ts file would load Node's TypeScript
// stripper, which would double this process's memory and with it the cost it
// exists to avoid. It imports Node's built-ins and its own two modules.
//
// Protocol on the IPC channel (see launcher.ts, the agent's side):
//   agent → here: { type: "stdio", id, stream: "stdout" | "stderr" | "control" }
//     with a socket as the handle (its peer is the agent's), ahead of time;
//     { type: "zygote", id, env }: start a zygote on those sockets (they are its);
//     { type: "launch", id, file, args, cwd, env, detached }: spawn it on them
//   here → agent: { type: "zygote", id, pid } or { type: "zygoteFailed", id, message };
//     { type: "spawned", id, pid } or { type: "failed", id, code, message },
//     then { type: "exit", id, code, signal } (a zygote's too)
// When the agent goes away (the IPC channel closes), every process group
// started here is killed and this process exits: nothing outlives the agent.
import { spawn } from "node:child_process";
import { startZygote } from "./zygote.js";

// The agent runs with umask 077 for its private state; commands get the mask
// the agent names (its first argument, octal), as a login shell would give.
if (/^[0-7]{1,4}$/.test(process.argv[2] ?? "")) process.umask(Number.parseInt(process.argv[2], 8));

/** id → { stdout, stderr, control } sockets waiting for their launch. */
const stdio = new Map();
/** pids of running process groups (detached launches and zygotes), for the agent's exit. */
const groups = new Set();

function send(message) {
  // The agent may be gone between the check and the write (EPIPE): the
  // 'disconnect' handler below cleans up then, so the failed send is dropped.
  if (process.connected) process.send(message, undefined, undefined, () => {});
}

function closeStdio(id) {
  const sockets = stdio.get(id);
  stdio.delete(id);
  sockets?.stdout?.destroy();
  sockets?.stderr?.destroy();
  sockets?.control?.destroy();
}

function launch({ id, file, args, cwd, env, detached }) {
  const sockets = stdio.get(id);
  if (sockets?.stdout === undefined || sockets?.stderr === undefined) {
    closeStdio(id);
    send({ type: "failed", id, code: "EPROTO", message: "the launch arrived without its output sockets" });
    return;
  }
  let child;
  try {
    // env is always given: a missing one would hand the command this process's.
    child = spawn(file, args, { cwd, env: env ?? {}, detached, stdio: ["ignore", sockets.stdout, sockets.stderr] });
  } catch (err) {
    closeStdio(id);
    send({ type: "failed", id, code: err.code ?? "EINVAL", message: err.message });
    return;
  }
  // The child holds its own copies of the sockets now.
  closeStdio(id);
  if (child.pid === undefined) {
    child.once("error", (err) => send({ type: "failed", id, code: err.code ?? "EUNKNOWN", message: err.message }));
    return;
  }
  const pid = child.pid;
  if (detached) groups.add(pid);
  send({ type: "spawned", id, pid });
  child.on("error", () => {}); // reported through exit; nothing else can happen after a successful spawn
  child.on("exit", (code, signal) => {
    groups.delete(pid);
    send({ type: "exit", id, code, signal });
  });
}

process.on("message", (message, handle) => {
  if (message?.type === "stdio") {
    const sockets = stdio.get(message.id) ?? {};
    const stream = message.stream === "stderr" || message.stream === "control" ? message.stream : "stdout";
    sockets[stream] = handle;
    stdio.set(message.id, sockets);
  } else if (message?.type === "zygote") {
    const sockets = stdio.get(message.id);
    if (sockets?.stdout === undefined || sockets?.stderr === undefined || sockets?.control === undefined) {
      send({ type: "zygoteFailed", id: message.id, message: "the zygote request arrived without its sockets" });
      return;
    }
    // The zygote holds its own copies: the command's output ends when its holders close it, not when this
    // process gets round to it, and the end of its stdin tells the agent it exec'd or died.
    if (startZygote(message.id, message.env ?? {}, sockets, { groups, send })) closeStdio(message.id);
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
