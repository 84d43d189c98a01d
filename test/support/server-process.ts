// `guru server` or `guru start` as a real child process, for tests of what
// happens across process lifetimes (crash, restart, quick start).
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

export interface GuruProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first stdout match of pattern. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnGuru(args: string[], env: Record<string, string | undefined> = {}, options: { nodeArgs?: string[] } = {}): GuruProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), guruBin, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    output += d.toString();
    for (const l of listeners) l();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  return {
    child,
    output: () => output,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) {
            cleanup();
            resolve(match);
          } else if (child.exitCode !== null) {
            cleanup();
            reject(new Error(`guru ${args[0]} exited with ${child.exitCode} before printing ${pattern}:\n${output}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`guru ${args[0]} did not print ${pattern} within ${timeoutMs} ms:\n${output}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off("exit", check);
        };
        listeners.add(check);
        child.on("exit", check);
        check();
      });
    },
    stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
      return new Promise((resolve) => {
        child.once("exit", (code) => resolve(code));
        child.kill(signal);
      });
    },
  };
}
