// Killing a command's whole process tree, not just the shell.
//
// POSIX: the shell is spawned detached, so it leads a new process group whose
// id is its pid, and every child it starts (pipelines, `&` jobs) stays in that
// group unless it deliberately leaves it (setsid, daemons). Signalling -pid
// reaches all of them with one syscall.
// Windows: there are no process groups to signal; `taskkill /T /F` walks the
// tree by parent pid. It cannot find children whose parent already exited.
import { spawn } from "node:child_process";
import type { Logger } from "../../lib/logging.ts";

export interface ProcessTree {
  /** Asks the tree to stop: SIGTERM to the group; taskkill /T /F on Windows. */
  terminate(): void;
  /** SIGKILL to the group; taskkill /T /F on Windows. */
  kill(): void;
  /**
   * After the shell exited: SIGKILL to whatever is left in its group. A no-op
   * on Windows, where the orphans can no longer be found from the shell's pid.
   */
  killLeftovers(): void;
}

export function createProcessTree(pid: number, platform: NodeJS.Platform, logger: Logger): ProcessTree {
  if (platform === "win32") return createWindowsTree(pid, logger);
  const signalGroup = (signal: "SIGTERM" | "SIGKILL") => {
    // ESRCH (nothing left in the group) is the usual answer after every
    // command, and Node throws it: without a stack trace to capture, the
    // error costs a few microseconds instead of tens, on the command's path.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      process.kill(-pid, signal);
    } catch (err) {
      // EPERM: a member changed its credentials (setuid); nothing more we can do from here.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ESRCH") logger.warn({ err, pid, signal }, "could not signal the command's process group");
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
  };
  return {
    terminate: () => signalGroup("SIGTERM"),
    kill: () => signalGroup("SIGKILL"),
    killLeftovers: () => signalGroup("SIGKILL"),
  };
}

function createWindowsTree(pid: number, logger: Logger): ProcessTree {
  let started = false;
  const taskkill = () => {
    // Console programs have no graceful stop taskkill could ask for: /F always.
    if (started) return;
    started = true;
    const killer = spawn("taskkill", ["/T", "/F", "/PID", String(pid)], { stdio: "ignore", windowsHide: true });
    killer.on("error", (err) => {
      logger.warn({ err, pid }, "taskkill could not be started; killing the shell alone");
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    });
  };
  return { terminate: taskkill, kill: taskkill, killLeftovers: () => {} };
}
