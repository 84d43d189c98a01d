// The launcher's side of zygotes (zygote-spec.js says what they are): it
// starts one when the agent asks, for a prepared id and in a given
// environment, and reports its pid; the agent then hands it a launch
// directly, over the zygote's stdin socket. The launcher stays its parent, so
// its exit reaches the agent as any command's does: { type: "exit", id, code,
// signal }. Plain JavaScript, part of the launcher process.
import { spawn } from "node:child_process";
import { zygoteScript, zygoteShell } from "./zygote-spec.js";

/**
 * deps: groups (the launcher's set of process groups, killed when the agent
 * goes), send(message) to the agent.
 */
export function createZygotes(deps) {
  /** id → pid of a zygote not told to stand aside. */
  const byId = new Map();

  return {
    /** Starts a zygote for `id` with `stdio` ({ control, stdout, stderr }); answers { type: "zygote", id, pid } or { type: "zygoteFailed", id, message }. */
    start(id, env, stdio) {
      let child;
      try {
        child = spawn(zygoteShell, ["-c", zygoteScript], {
          cwd: "/",
          env,
          detached: true,
          stdio: [stdio.control, stdio.stdout, stdio.stderr],
        });
      } catch (err) {
        deps.send({ type: "zygoteFailed", id, message: err.message });
        return;
      }
      if (child.pid === undefined) {
        child.once("error", (err) => deps.send({ type: "zygoteFailed", id, message: err.message }));
        return;
      }
      const pid = child.pid;
      deps.groups.add(pid);
      byId.set(id, pid);
      child.on("error", () => {}); // reported through exit
      child.on("exit", (code, signal) => {
        deps.groups.delete(pid);
        // One discarded (its id was spawned instead) is nobody's business any more.
        if (byId.get(id) !== pid) return;
        byId.delete(id);
        deps.send({ type: "exit", id, code, signal });
      });
      deps.send({ type: "zygote", id, pid });
    },

    /** The launch of `id` is spawned instead: its zygote, if any, goes (its exit is not reported). */
    discard(id) {
      const pid = byId.get(id);
      if (pid === undefined) return;
      byId.delete(id);
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}
