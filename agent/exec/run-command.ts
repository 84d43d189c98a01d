// Running one command for a technician: policy first, then the shell, with
// output streamed under the caller's flow control, a per-stream output cap, a
// timeout and cancellation that kill the whole process tree. Pure domain: the
// agent's channel adapter turns requests into a CommandSpec and onOutput calls
// into data frames.
//
// Behaviours decided here:
// - The call ends when the SHELL exits. Whatever it left running in its
//   process group (`sleep 100 &`) is SIGKILLed at that moment, so nothing
//   outlives the call and no orphan keeps the pipes (and the call) open.
//   Output already written to the pipes is still read and delivered.
// - A process that left the group on purpose (setsid, a daemon) is out of our
//   reach; if it still holds the pipes `leftoverPipeGraceMs` after the shell
//   exited, we close our ends of the pipes and finish.
// - Timeout and cancel: SIGTERM to the group, SIGKILL `killGraceMs` later if
//   the shell still runs (and SIGKILL to the group's leftovers as soon as the
//   shell exits). Windows: taskkill /T /F at once.
// - The timeout counts from the call, and only until the shell exits; draining
//   the last output into a slow consumer is not the command's time. A cancel
//   during that drain ends the call at once: reason "canceled", with the
//   shell's real exit code.
// - stdout and stderr are read independently: at most one onOutput call is in
//   flight per stream, and while it waits that pipe is not read (the command
//   blocks on a full pipe). Calls for the two streams may overlap.
// - Past maxOutputBytes on a stream, its bytes are still read (so the command
//   never blocks) and counted, but no longer delivered. stdoutBytes and
//   stderrBytes count everything the command wrote.
// - onOutput failing (the consumer is gone) kills the tree like a cancel, and
//   runCommand rejects with that error.
// - exitCode is -1 when the shell died of a signal; signal is "" otherwise.
import { stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { checkCommand, requireCapability, type LocalPolicy } from "../policy/local-policy.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { createDirectLauncher, LaunchError, type LaunchedProcess, type ProcessLauncher } from "./launcher/launcher.ts";
import { baseCommandEnv, commandEnv } from "./command-env.ts";
import { createProcessTree } from "./process-tree.ts";
import { defaultShell, resolveShellPaths, shellInvocation, shellNames, type ShellName, type ShellPaths } from "./shells.ts";

export interface CommandSpec {
  command: string;
  shell?: ShellName;
  workingDir?: string;
  timeoutMs: number;
  env?: Record<string, string>;
  maxOutputBytes: number;
}

export interface CommandOutcome {
  exitCode: number;
  signal: string;
  durationMs: number;
  reason: "exited" | "timed_out" | "canceled" | "killed";
  stdoutBytes: number;
  stderrBytes: number;
  truncated: boolean;
}

export type OutputStream = "stdout" | "stderr";

export interface CommandIo {
  /** May wait (flow control): while it waits, that pipe is not read. */
  onOutput(stream: OutputStream, data: Uint8Array): Promise<void>;
  /** Abort = cancel: the whole tree is killed and the outcome's reason is "canceled". */
  signal: AbortSignal;
}

export interface RunCommandDeps {
  policy: LocalPolicy;
  pathGuard: PathGuard;
  platform?: NodeJS.Platform;
  /** How the shell is started; default: child_process.spawn from this process. */
  launcher?: ProcessLauncher;
  logger: Logger;
  /** Between SIGTERM and SIGKILL on timeout or cancel. */
  killGraceMs?: number;
  /** How long pipes held open by an escaped process may delay the end after the shell exited. */
  leftoverPipeGraceMs?: number;
  /** Shell paths and base environment, found at agent start; default: found on first use. */
  setup?: ExecSetup;
}

/** What the agent finds once, at start, for every command it runs. */
export interface ExecSetup {
  shellPaths: ShellPaths;
  /** Every command's environment before the caller's variables (command-env.ts). */
  baseEnv: Record<string, string>;
}

export function createExecSetup(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): ExecSetup {
  return { shellPaths: resolveShellPaths(platform, env), baseEnv: baseCommandEnv(platform, env) };
}

let defaultSetup: ExecSetup | undefined;
function sharedSetup(): ExecSetup {
  defaultSetup ??= createExecSetup();
  return defaultSetup;
}

/** setTimeout's limit: a longer delay would fire at once. */
const maxTimeoutMs = 2_147_483_647;
const defaultKillGraceMs = 1_000;
const defaultLeftoverPipeGraceMs = 200;

export async function runCommand(spec: CommandSpec, io: CommandIo, deps: RunCommandDeps): Promise<CommandOutcome> {
  const startedAt = performance.now();
  const platform = deps.platform ?? process.platform;
  validateSpec(spec);
  requireCapability(deps.policy, "exec");
  const verdict = checkCommand(deps.policy, spec.command);
  if (!verdict.allowed) {
    throw new GuruError("denied", `command refused by the agent's policy rule "${verdict.rule}"`, {
      reason: "POLICY_DENIED",
      metadata: { rule: verdict.rule },
      details: { rule: verdict.rule },
    });
  }
  const setup = deps.setup ?? sharedSetup();
  const env = commandEnv(spec.env, deps.policy, setup.baseEnv, platform);
  // Allowed and real; whether it is a directory the launch finds out (a stat
  // here would be one more trip through the threadpool and the event loop on
  // every command, several milliseconds while a transfer keeps both busy).
  const cwd = await deps.pathGuard.resolve(spec.workingDir ?? deps.pathGuard.allowedPaths[0], { mustExist: true });
  if (io.signal.aborted) throw new GuruError("canceled", "the command was canceled before it started");

  const shell = spec.shell ?? defaultShell(platform);
  const invocation = shellInvocation(shell, spec.command, platform, setup.shellPaths);
  if (invocation === undefined) throw new GuruError("invalid", `shell ${shell} is not installed on this agent`, { details: { shell } });
  let child: LaunchedProcess;
  try {
    child = await (deps.launcher ?? createDirectLauncher(deps.logger)).launch(invocation.file, invocation.args, {
      cwd,
      // Never the agent's own environment (command-env.ts says why).
      env,
      // POSIX: lead a new process group, so the tree can be killed as one.
      detached: platform !== "win32",
      windowsVerbatimArguments: invocation.windowsVerbatimArguments,
    });
  } catch (err) {
    if (!(err instanceof LaunchError)) throw err;
    throw (await workingDirError(err, cwd, spec.workingDir)) ?? launchError(err, shell);
  }
  return supervise(child, spec, io, deps, platform, startedAt);
}

function supervise(child: LaunchedProcess, spec: CommandSpec, io: CommandIo, deps: RunCommandDeps, platform: NodeJS.Platform, startedAt: number) {
  const { logger } = deps;
  const pid = child.pid;
  const killGraceMs = deps.killGraceMs ?? defaultKillGraceMs;
  const leftoverPipeGraceMs = deps.leftoverPipeGraceMs ?? defaultLeftoverPipeGraceMs;
  const tree = createProcessTree(pid, platform, logger);
  const stdout = child.stdout as Readable;
  const stderr = child.stderr as Readable;
  const bytes = { stdout: 0, stderr: 0 };

  return new Promise<CommandOutcome>((resolve, reject) => {
    let exited = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let ended: "timed_out" | "canceled" | null = null;
    let consumerError: { error: unknown } | null = null;
    let deliveryStopped = false;
    let truncated = false;
    let openPipes = 2;
    let pending = 0;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let pipeTimer: NodeJS.Timeout | undefined;

    const deadline = setTimeout(() => end("timed_out"), Math.max(0, spec.timeoutMs - (performance.now() - startedAt)));
    const onAbort = () => end("canceled");
    io.signal.addEventListener("abort", onAbort, { once: true });
    // Canceled while the process was being started.
    if (io.signal.aborted) queueMicrotask(onAbort);

    function end(why: "timed_out" | "canceled") {
      if (settled || ended !== null) return;
      ended = why;
      clearTimeout(deadline);
      if (why === "canceled") stopDelivery();
      if (exited) {
        // Only the delivery of the last output was left: cut it short.
        destroyPipes();
        return;
      }
      tree.terminate();
      killTimer = setTimeout(() => tree.kill(), killGraceMs);
    }

    // Delivery stops on cancel or when the consumer failed. The pipes keep
    // being read (and counted) so the command never blocks on a full pipe
    // while the kill is under way, and EOF can arrive.
    function stopDelivery() {
      deliveryStopped = true;
      stdout.resume();
      stderr.resume();
    }

    function destroyPipes() {
      stdout.destroy();
      stderr.destroy();
    }

    function armPipeTimer() {
      pipeTimer = setTimeout(() => {
        // Wait on a slow consumer (the bytes are ours to deliver), never on an escaped writer.
        if (pending > 0 && !deliveryStopped) armPipeTimer();
        else destroyPipes();
      }, leftoverPipeGraceMs);
    }

    void child.exited.then(({ code, signal }) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      clearTimeout(deadline);
      clearTimeout(killTimer);
      // Right away, while the group id cannot have been reused: Linux hands
      // out pids in sequence, so reuse needs a full wrap-around of pid_max.
      tree.killLeftovers();
      if (openPipes > 0) armPipeTimer();
      maybeFinish();
    });

    const pump = (name: OutputStream, stream: Readable) => {
      stream.on("data", (chunk: Buffer) => {
        const before = bytes[name];
        bytes[name] = before + chunk.length;
        if (deliveryStopped) return;
        const room = spec.maxOutputBytes - before;
        if (room <= 0) {
          truncated = true;
          return;
        }
        if (chunk.length > room) truncated = true;
        deliver(name, stream, chunk.length > room ? chunk.subarray(0, room) : chunk);
      });
      stream.on("error", (err) => logger.debug({ err, pid, stream: name }, "command pipe error"));
      stream.on("close", () => {
        openPipes--;
        maybeFinish();
      });
      stream.resume();
    };

    function deliver(name: OutputStream, stream: Readable, data: Uint8Array) {
      let sent: Promise<void>;
      try {
        sent = io.onOutput(name, data);
      } catch (err) {
        sent = Promise.reject(err);
      }
      pending++;
      stream.pause();
      sent.then(
        () => {
          pending--;
          stream.resume();
          maybeFinish();
        },
        (error: unknown) => {
          pending--;
          consumerError ??= { error };
          stopDelivery();
          if (exited) destroyPipes();
          else end("canceled");
          maybeFinish();
        },
      );
    }

    function maybeFinish() {
      if (settled || !exited || openPipes > 0) return;
      if (pending > 0 && !deliveryStopped) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(killTimer);
      clearTimeout(pipeTimer);
      io.signal.removeEventListener("abort", onAbort);
      if (consumerError !== null) {
        reject(consumerError.error);
        return;
      }
      const outcome: CommandOutcome = {
        exitCode: exitCode ?? -1,
        signal: exitSignal ?? "",
        durationMs: Math.round(performance.now() - startedAt),
        reason: ended ?? (exitSignal !== null ? "killed" : "exited"),
        stdoutBytes: bytes.stdout,
        stderrBytes: bytes.stderr,
        truncated,
      };
      logger.debug({ pid, ...outcome }, "command finished");
      resolve(outcome);
    }

    pump("stdout", stdout);
    pump("stderr", stderr);
  });
}

function validateSpec(spec: CommandSpec): void {
  if (typeof spec.command !== "string" || spec.command.trim() === "") throw new GuruError("invalid", "command must be a non-empty string");
  if (spec.shell !== undefined && !shellNames.includes(spec.shell)) {
    throw new GuruError("invalid", `shell must be one of ${shellNames.join(", ")}`, { details: { shell: spec.shell } });
  }
  if (!Number.isInteger(spec.timeoutMs) || spec.timeoutMs <= 0 || spec.timeoutMs > maxTimeoutMs) {
    throw new GuruError("invalid", `timeoutMs must be an integer from 1 to ${maxTimeoutMs}`, { details: { timeoutMs: spec.timeoutMs } });
  }
  if (!Number.isSafeInteger(spec.maxOutputBytes) || spec.maxOutputBytes < 0) {
    throw new GuruError("invalid", "maxOutputBytes must be a non-negative integer", { details: { maxOutputBytes: spec.maxOutputBytes } });
  }
}

/** A launch that failed on its working directory (the process changes into it first), said as such; undefined when the directory is fine. */
async function workingDirError(err: LaunchError, dir: string, workingDir: string | undefined): Promise<GuruError | undefined> {
  if (err.code !== "ENOENT" && err.code !== "ENOTDIR" && err.code !== "EACCES") return undefined;
  const found = await stat(dir).catch(() => undefined);
  if (found === undefined)
    return new GuruError("not_found", `path "${workingDir ?? dir}" does not exist`, {
      reason: "PATH_NOT_FOUND",
      metadata: { path: workingDir ?? dir },
      details: { path: workingDir ?? dir },
    });
  if (!found.isDirectory()) return new GuruError("invalid", `working directory "${workingDir ?? dir}" is not a directory`, { details: { workingDir: dir } });
  return undefined;
}

function launchError(err: LaunchError, shell: ShellName): GuruError {
  const code = err.code;
  // The working directory is a directory (workingDirError), so ENOENT names the shell.
  if (code === "ENOENT") return new GuruError("invalid", `shell ${shell} is not installed on this agent`, { cause: err, details: { shell } });
  if (code === "EAGAIN" || code === "EMFILE" || code === "ENFILE" || code === "ENOMEM") {
    return new GuruError("unavailable", `the agent cannot start a process right now (${code})`, { cause: err });
  }
  // Node refuses some arguments before starting anything (a NUL byte in an env value).
  if (code.startsWith("ERR_INVALID_ARG")) return new GuruError("invalid", `the command cannot be started: ${err.message}`, { cause: err });
  return new GuruError("internal", `the command could not be started (${code}: ${err.message})`, { cause: err });
}
