// Killing everything a terminal started. A pseudo-terminal's shell leads a
// session of its own (forkpty calls setsid), and an interactive shell puts
// each job in a process group of its own, so signalling the shell's group
// (what commands do) would miss `sleep 100 &` or a pipeline in the
// background. What belongs to the terminal:
// - Linux: every process whose session id is the shell's pid (read from
//   /proc/PID/stat), plus the shell's descendants by parent pid, which
//   catches a child that called setsid while its parent is still alive.
// - other POSIX systems: the shell's descendants by parent pid (from ps).
// - Windows: taskkill /T /F walks the tree from the shell (ConPTY's children).
// The set is collected at each signal, so a process forked in between is seen
// by the next one.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import type { Logger } from "../../lib/logging.ts";
import { createProcessTree } from "../exec/process-tree.ts";

export interface PtyTree {
  /** Sends the signal to the shell and every process of its terminal. */
  signal(signal: "SIGHUP" | "SIGKILL"): void;
}

interface ProcInfo {
  pid: number;
  ppid: number;
  session: number;
}

export function createPtyTree(pid: number, platform: NodeJS.Platform, logger: Logger): PtyTree {
  if (platform === "win32") {
    const tree = createProcessTree(pid, platform, logger);
    return { signal: () => tree.kill() };
  }
  return {
    signal(signal) {
      const members = terminalMembers(pid, platform === "linux" ? readProcTable : readPsTable, logger);
      for (const member of members) {
        try {
          process.kill(member, signal);
        } catch (err) {
          // ESRCH: it exited meanwhile, the usual race.
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== "ESRCH") logger.warn({ err, pid: member, signal }, "could not signal a terminal's process");
        }
      }
    },
  };
}

/** The shell first, then the rest, without our own process. */
function terminalMembers(shellPid: number, table: () => ProcInfo[], logger: Logger): number[] {
  let procs: ProcInfo[];
  try {
    procs = table();
  } catch (err) {
    logger.warn({ err }, "could not list processes; signalling the shell alone");
    return [shellPid];
  }
  const members = new Set<number>([shellPid]);
  for (const p of procs) if (p.session === shellPid) members.add(p.pid);
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const list = children.get(p.ppid);
    if (list) list.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const queue = [...members];
  while (queue.length > 0) {
    const next = queue.pop() as number;
    for (const child of children.get(next) ?? []) {
      if (!members.has(child)) {
        members.add(child);
        queue.push(child);
      }
    }
  }
  members.delete(process.pid);
  return [...members];
}

function readProcTable(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.push({ pid: Number(name), ppid: Number(fields[1]), session: Number(fields[3]) });
  }
  return out;
}

function readPsTable(): ProcInfo[] {
  const text = execFileSync("ps", ["-A", "-o", "pid=", "-o", "ppid="], { encoding: "utf8" });
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter((f) => f.length === 2 && f.every(Number.isInteger))
    .map(([pid, ppid]) => ({ pid, ppid, session: -1 }));
}
