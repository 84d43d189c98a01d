// Runs a system tool (systemctl, an init script, powershell, launchctl) with
// argv only: no shell ever parses what we pass. The tool runs in a process
// group of its own, so a daemon an init script starts is not tied to the
// agent, and the call ends when the tool exits even if a daemon it started
// kept its output pipes open.
import { spawn } from "node:child_process";
import { GuruError } from "../../lib/errors.ts";

export interface ToolResult {
  code: number;
  signal: string;
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  timeoutMs?: number;
  /** Output kept per stream; past it, the rest is dropped. */
  maxOutputBytes?: number;
  env?: NodeJS.ProcessEnv;
  /** Feeds the tool's stdin, then closes it. */
  input?: string;
}

/** Runs a tool; the caller supplies the argv, so a test can check it. */
export type ToolRunner = (file: string, args: readonly string[], options?: ToolOptions) => Promise<ToolResult>;

const defaultTimeoutMs = 60_000;
const defaultMaxOutputBytes = 32 * 1024 * 1024;
// After the tool exits, output still in flight gets this long to arrive.
const drainAfterExitMs = 200;

export const runTool: ToolRunner = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const maxBytes = options.maxOutputBytes ?? defaultMaxOutputBytes;
    const child = spawn(file, [...args], {
      shell: false,
      windowsHide: true,
      detached: process.platform !== "win32",
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    child.stdout.on("data", (b: Buffer) => {
      if (outBytes < maxBytes) out.push(b);
      outBytes += b.length;
    });
    child.stderr.on("data", (b: Buffer) => {
      if (errBytes < maxBytes) err.push(b);
      errBytes += b.length;
    });
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new GuruError("timeout", `${file} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === "ENOENT") reject(new GuruError("failed_precondition", `${file} is not installed on this agent`, { cause: e }));
      else reject(new GuruError("internal", `could not run ${file}: ${e.message}`, { cause: e }));
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const finish = () => {
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({ code: code ?? -1, signal: signal ?? "", stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
      };
      // Both pipes closed: nothing more can come. Otherwise a daemon holds them.
      let closed = 0;
      const onClose = () => {
        if (++closed === 2) {
          clearTimeout(drain);
          finish();
        }
      };
      const drain = setTimeout(finish, drainAfterExitMs);
      if (child.stdout.closed) closed++;
      else child.stdout.once("close", onClose);
      if (child.stderr.closed) closed++;
      else child.stderr.once("close", onClose);
      if (closed === 2) {
        clearTimeout(drain);
        finish();
      }
    });
  });
