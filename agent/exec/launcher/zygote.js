// The launcher's side of zygotes (zygote-spec.js says what they are): it
// starts one when the agent asks, for a prepared id and in a given
// environment, and reports its pid; the agent then hands it a launch
// directly, over the zygote's stdin socket. The launcher stays its parent, so
// its exit reaches the agent as any command's does: { type: "exit", id, code,
// signal }. Plain JavaScript, part of the launcher process.
import { spawn } from "node:child_process";
import { zygoteScript, zygoteShell } from "./zygote-spec.js";

/**
 * Starts a zygote for `id` on `sockets` ({ control, stdout, stderr }) in
 * `env`; answers { type: "zygote", id, pid } and returns true, or answers
 * { type: "zygoteFailed", id, message } and returns false. `groups` is the
 * launcher's set of process groups, killed when the agent goes.
 */
export function startZygote(id, env, sockets, { groups, send }) {
  let child;
  try {
    child = spawn(zygoteShell, ["-c", zygoteScript], {
      cwd: "/",
      env,
      detached: true,
      stdio: [sockets.control, sockets.stdout, sockets.stderr],
    });
  } catch (err) {
    send({ type: "zygoteFailed", id, message: err.message });
    return false;
  }
  if (child.pid === undefined) {
    child.once("error", (err) => send({ type: "zygoteFailed", id, message: err.message }));
    return false;
  }
  const pid = child.pid;
  groups.add(pid);
  child.on("error", () => {}); // reported through exit
  child.on("exit", (code, signal) => {
    groups.delete(pid);
    send({ type: "exit", id, code, signal });
  });
  send({ type: "zygote", id, pid });
  return true;
}
