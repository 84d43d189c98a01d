// One interactive terminal for a technician: the local policy first, then a
// real pseudo-terminal (node-pty: forkpty on POSIX, ConPTY on Windows)
// running a shell or one command. Pure domain: the channel adapter turns
// channel data into write() calls and onOutput calls into data frames.
//
// Behaviours decided here:
// - Output is read only while the consumer keeps up: while onOutput waits
//   (flow control), reads are batched, and once a batch is full the pty is
//   paused, so the program blocks on a full terminal instead of growing
//   memory (`yes` runs at the reader's pace).
// - Input waits while the pty holds more than maxInputBufferBytes unwritten.
// - The terminal ends when the shell exits; whatever it left behind in its
//   session is killed then. An abort (cancel, tunnel closed, link lost) sends
//   SIGHUP to every process of the terminal and SIGKILL killGraceMs later.
// - An interactive shell is refused when the owner's policy has a command
//   allow list: a free shell would bypass it. A command is checked like any
//   command (deny rules, then the allow list).
import { constants, userInfo } from "node:os";
import { isAbsolute } from "node:path";
import { stat } from "node:fs/promises";
import type { IPty } from "@lydell/node-pty";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { checkCommand, requireCapability, type LocalPolicy } from "../policy/local-policy.ts";
import type { PathGuard } from "../policy/path-guard.ts";
import { commandEnv } from "../exec/command-env.ts";
import { createExecSetup, type ExecSetup } from "../exec/run-command.ts";
import { shellNames, type ShellName } from "../exec/shells.ts";
import { createPtyTree } from "./pty-tree.ts";

export interface PtySpec {
  /** Empty: an interactive shell. */
  command: string;
  shell?: ShellName;
  workingDir?: string;
  columns: number;
  rows: number;
  env: Record<string, string>;
  term: string;
}

export interface PtyOutcome {
  exitCode: number;
  signal: string;
  durationMs: number;
  reason: "exited" | "canceled" | "killed";
  inputBytes: number;
  outputBytes: number;
}

export interface PtyIo {
  /** May wait (flow control): the pty is not read meanwhile. */
  onOutput(data: Uint8Array): Promise<void>;
  /** Abort: the terminal's processes are killed and the outcome's reason is "canceled". */
  signal: AbortSignal;
}

export interface RunningPty {
  readonly pid: number;
  /** Resolves once the bytes are with the pty (or the terminal ended). */
  write(data: Uint8Array): Promise<void>;
  resize(columns: number, rows: number): void;
  readonly outcome: Promise<PtyOutcome>;
}

export interface RunPtyDeps {
  policy: LocalPolicy;
  pathGuard: PathGuard;
  logger: Logger;
  platform?: NodeJS.Platform;
  killGraceMs?: number;
  maxInputBufferBytes?: number;
  /** Shell paths and the base environment, as commands get them; found at agent start. */
  execSetup?: ExecSetup;
}

const maxTerminalSize = 10_000;
const defaultKillGraceMs = 1_000;
const defaultMaxInputBufferBytes = 256 * 1024;
const maxBatchBytes = 64 * 1024;

function checkTerminalSize(columns: number, rows: number): void {
  for (const [name, value] of [
    ["columns", columns],
    ["rows", rows],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > maxTerminalSize) {
      throw new GuruError("invalid", `${name} must be an integer from 1 to ${maxTerminalSize}`, { details: { [name]: value } });
    }
  }
}

export async function startPty(spec: PtySpec, io: PtyIo, deps: RunPtyDeps): Promise<RunningPty> {
  const platform = deps.platform ?? process.platform;
  requireCapability(deps.policy, "terminal");
  checkTerminalSize(spec.columns, spec.rows);
  if (spec.shell !== undefined && !shellNames.includes(spec.shell)) throw new GuruError("invalid", `shell must be one of ${shellNames.join(", ")}`);
  const setup = deps.execSetup ?? createExecSetup(platform);
  // The same rules as a command's: a clean base, never the agent's own
  // variables, and no caller variable that changes what a shell runs.
  const env = { ...commandEnv(spec.env, deps.policy, setup.baseEnv, platform), TERM: spec.term };
  if (spec.command.trim() === "") {
    if (deps.policy.commands.allow.length > 0) {
      throw new GuruError("denied", "the agent's policy allows only listed commands; an interactive shell would bypass that list", {
        details: { rule: "allow list" },
      });
    }
  } else {
    const verdict = checkCommand(deps.policy, spec.command);
    if (!verdict.allowed) throw new GuruError("denied", `command refused by the agent's policy rule "${verdict.rule}"`, { details: { rule: verdict.rule } });
  }
  const cwd = await deps.pathGuard.resolve(spec.workingDir || deps.pathGuard.allowedPaths[0], { mustExist: true });
  if (!(await stat(cwd)).isDirectory()) throw new GuruError("invalid", `working directory "${spec.workingDir ?? cwd}" is not a directory`);
  if (io.signal.aborted) throw new GuruError("canceled", "the terminal was canceled before it started");

  const { file, args } = invocation(spec, platform, setup);
  // Loaded on the first terminal: most agents keep terminals off and need not load a native module at start.
  const pty = (await import("@lydell/node-pty")).default;
  let term: IPty;
  try {
    term = pty.spawn(file, args, {
      name: spec.term,
      cols: spec.columns,
      rows: spec.rows,
      cwd,
      env,
      // Raw bytes both ways: output may split a UTF-8 character across reads.
      encoding: null,
    });
  } catch (err) {
    const message = (err as Error).message;
    if (/ENOENT|not found|No such file/i.test(message)) throw new GuruError("invalid", `shell ${file} is not installed on this agent`, { cause: err });
    throw new GuruError("internal", `the terminal could not be started: ${message}`, { cause: err });
  }
  return supervise(term, io, deps, platform);
}

function invocation(spec: PtySpec, platform: NodeJS.Platform, setup: ExecSetup): { file: string; args: string[] } {
  const win = platform === "win32";
  const command = spec.command.trim() === "" ? undefined : spec.command;
  if (spec.shell === undefined && !win) {
    // The agent user's login shell, as ssh gives: from the password database,
    // not from $SHELL, and only by absolute path.
    const login = loginShell();
    if (login !== undefined) return { file: login, args: command === undefined ? [] : ["-c", command] };
  }
  const shell = spec.shell ?? (win ? "powershell" : "sh");
  // Shells start by absolute path, found at agent start: never through PATH.
  const file = setup.shellPaths[shell];
  if (file === undefined) throw new GuruError("invalid", `shell ${shell} is not installed on this agent`, { details: { shell } });
  switch (shell) {
    case "bash":
    case "sh":
      return { file, args: command === undefined ? [] : ["-c", command] };
    case "powershell":
    case "pwsh":
      return { file, args: command === undefined ? ["-NoLogo"] : ["-NoLogo", "-NoProfile", "-Command", command] };
    case "cmd":
      return { file, args: command === undefined ? ["/d"] : ["/d", "/s", "/c", command] };
  }
}

function loginShell(): string | undefined {
  try {
    const shell = userInfo().shell;
    return shell !== null && isAbsolute(shell) ? shell : undefined;
  } catch {
    return undefined;
  }
}

function supervise(term: IPty, io: PtyIo, deps: RunPtyDeps, platform: NodeJS.Platform): RunningPty {
  const started = performance.now();
  const tree = createPtyTree(term.pid, platform, deps.logger);
  const killGraceMs = deps.killGraceMs ?? defaultKillGraceMs;
  const maxInputBufferBytes = deps.maxInputBufferBytes ?? defaultMaxInputBufferBytes;
  // node-pty writes through a net.Socket on POSIX; its buffer tells us when to wait.
  const socket = (term as unknown as { _socket?: NodeJS.WritableStream & { writableLength?: number } })._socket;
  let inputBytes = 0;
  let outputBytes = 0;
  let exited = false;
  let canceled = false;
  let killTimer: NodeJS.Timeout | undefined;
  let consumerFailed = false;

  const abort = () => {
    if (exited || canceled) return;
    canceled = true;
    tree.signal("SIGHUP");
    killTimer = setTimeout(() => tree.signal("SIGKILL"), killGraceMs);
  };
  io.signal.addEventListener("abort", abort, { once: true });

  // A pty hands out at most a few KiB per read: reads that arrive while a send
  // waits are sent together, and the pty is paused once a batch is full.
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let inFlight = false;
  let drained: (() => void) | undefined;
  const pump = () => {
    inFlight = true;
    const data = batch.length === 1 ? batch[0] : Buffer.concat(batch);
    batch = [];
    batchBytes = 0;
    void io.onOutput(data).then(
      () => {
        inFlight = false;
        if (!exited) term.resume();
        if (batch.length > 0) pump();
        else drained?.();
      },
      (err: unknown) => {
        // The consumer is gone (channel ended): keep draining so the shell is never stuck, and end it.
        inFlight = false;
        consumerFailed = true;
        batch = [];
        deps.logger.debug({ err, pid: term.pid }, "terminal output has no consumer; ending the terminal");
        if (!exited) term.resume();
        drained?.();
        abort();
      },
    );
  };
  term.onData((chunk: string | Buffer) => {
    // Bytes with `encoding: null`; ConPTY builds may still hand out strings.
    const data = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    outputBytes += data.length;
    if (consumerFailed) return;
    batch.push(data);
    batchBytes += data.length;
    if (batchBytes >= maxBatchBytes) term.pause();
    if (!inFlight) pump();
  });
  const allSent = () => (inFlight || batch.length > 0 ? new Promise<void>((resolve) => (drained = resolve)) : Promise.resolve());

  const outcome = new Promise<PtyOutcome>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      exited = true;
      clearTimeout(killTimer);
      io.signal.removeEventListener("abort", abort);
      // What the shell left running in its session must not outlive the terminal.
      tree.signal("SIGKILL");
      const signalName = signal ? (Object.entries(constants.signals).find(([, n]) => n === signal)?.[0] ?? `signal ${signal}`) : "";
      void allSent().finally(() =>
        resolve({
          exitCode: signal ? -1 : exitCode,
          signal: signalName,
          durationMs: Math.round(performance.now() - started),
          reason: canceled ? "canceled" : signal ? "killed" : "exited",
          inputBytes,
          outputBytes,
        }),
      );
    });
  });

  return {
    pid: term.pid,
    async write(data) {
      if (exited || canceled) return;
      inputBytes += data.byteLength;
      term.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength) as unknown as string);
      if (socket && (socket.writableLength ?? 0) > maxInputBufferBytes) {
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off("drain", done);
            socket.off("close", done);
            resolve();
          };
          socket.on("drain", done);
          socket.on("close", done);
        });
      }
    },
    resize(columns, rows) {
      checkTerminalSize(columns, rows);
      if (!exited) term.resize(columns, rows);
    },
    outcome,
  };
}
