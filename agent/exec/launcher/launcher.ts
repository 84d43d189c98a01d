// Starting a command's process: directly with child_process.spawn, or (POSIX)
// through the launcher process (launcher-process.js says why), which the
// agent forks once and restarts if it dies. Both give the same thing back: a
// pid, the output streams, and the exit.
import { fork, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { GuruError } from "../../../lib/errors.ts";
import type { Logger } from "../../../lib/logging.ts";
import { baseCommandEnv } from "../command-env.ts";
import { createSocketPairs, type SocketPairs } from "./socket-pairs.ts";

export interface LaunchOptions {
  cwd: string;
  /** The command's whole environment; never the agent's own (../command-env.ts). */
  env: Record<string, string>;
  /** POSIX: lead a new process group (its id is the pid). */
  detached: boolean;
  windowsVerbatimArguments?: boolean;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchedProcess {
  readonly pid: number;
  /** Paused: attach listeners, then call resume() (a 'data' listener alone may not start it). */
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves once, when the process exited. */
  readonly exited: Promise<ProcessExit>;
  /** True when a shell the launcher started ahead of time became the process (launcher-process.js), so no fork was waited for. */
  readonly prepared: boolean;
}

export interface ProcessLauncher {
  /** Rejects with the spawn error (an errno-style `code`) when the process could not be started. */
  launch(file: string, args: string[], options: LaunchOptions): Promise<LaunchedProcess>;
  close(): Promise<void>;
}

/** An error as spawn reports it: a message and an errno-style code (ENOENT, EAGAIN...). */
export class LaunchError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** child_process.spawn from this process. */
export function createDirectLauncher(logger: Logger): ProcessLauncher {
  return {
    async launch(file, args, options) {
      let child: ChildProcess;
      try {
        child = spawn(file, args, {
          cwd: options.cwd,
          env: options.env,
          stdio: ["ignore", "pipe", "pipe"],
          detached: options.detached,
          windowsHide: true,
          windowsVerbatimArguments: options.windowsVerbatimArguments,
        });
      } catch (err) {
        // Node refuses some arguments synchronously (a NUL byte in an env value).
        throw new LaunchError((err as NodeJS.ErrnoException).code ?? "EINVAL", (err as Error).message);
      }
      if (child.pid === undefined) {
        const err = await new Promise<NodeJS.ErrnoException>((resolve) => child.once("error", resolve));
        throw new LaunchError(err.code ?? "EUNKNOWN", err.message);
      }
      const pid = child.pid;
      child.on("error", (err) => logger.warn({ err, pid }, "command process error"));
      const exited = new Promise<ProcessExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
      const stdout = (child.stdout as Readable).pause();
      const stderr = (child.stderr as Readable).pause();
      return { pid, stdout, stderr, exited, prepared: false };
    },
    async close() {},
  };
}

type LauncherMessage =
  | { type: "spawned"; id: number; pid: number; prepared?: boolean }
  | { type: "failed"; id: number; code: string; message: string }
  | { type: "exit"; id: number; code: number | null; signal: NodeJS.Signals | null };

interface Pending {
  spawned(started: { pid: number; prepared: boolean }): void;
  failed(err: LaunchError): void;
  exit(exit: ProcessExit): void;
}

const launcherScript = fileURLToPath(new URL("./launcher-process.js", import.meta.url));

/** Output sockets already handed to a launcher, ready for its next command. */
interface PreparedStdio {
  id: number;
  launcher: ChildProcess;
  stdout: Socket;
  stderr: Socket;
}

export interface ForkedLauncherOptions {
  /** Output socket pairs kept ready in the launcher, so a launch is one message. */
  preparedStdio?: number;
  /** The umask commands run with (the agent's own is 077); default 022. */
  commandUmask?: number;
}

/**
 * Commands fork from a small launcher process instead of from the agent.
 * If the launcher dies, its running commands are reported as killed and the
 * next launch starts a new one.
 */
export async function createForkedLauncher(logger: Logger, options: ForkedLauncherOptions = {}): Promise<ProcessLauncher> {
  const preparedTarget = options.preparedStdio ?? 4;
  const pairs: SocketPairs = await createSocketPairs();
  const pending = new Map<number, Pending>();
  let prepared: PreparedStdio[] = [];
  let refilling = false;
  let nextId = 1;
  let child: ChildProcess | undefined;
  let closed = false;

  function start(): ChildProcess {
    // No execArgv: the agent's own flags (inspectors, profilers) are not the
    // launcher's. Nor its environment: the launcher needs none, and the
    // agent's may hold secrets (its key, under `guru start` the server's).
    const umask = (options.commandUmask ?? 0o022).toString(8);
    const launcher = fork(launcherScript, [umask], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      execArgv: [],
      serialization: "json",
      env: baseCommandEnv(),
    });
    launcher.on("message", (m: LauncherMessage) => {
      const p = pending.get(m.id);
      if (p === undefined) return;
      if (m.type === "spawned") p.spawned({ pid: m.pid, prepared: m.prepared === true });
      else if (m.type === "failed") {
        pending.delete(m.id);
        p.failed(new LaunchError(m.code, m.message));
      } else if (m.type === "exit") {
        pending.delete(m.id);
        p.exit({ code: m.code, signal: m.signal });
      }
    });
    launcher.on("error", (err) => logger.warn({ err }, "the process launcher failed"));
    launcher.once("exit", (code, signal) => {
      if (child === launcher) child = undefined;
      if (!closed) logger.warn({ code, signal }, "the process launcher exited; the next command starts a new one");
      discardPrepared();
      // Its commands were killed with it (it kills their groups when it goes).
      for (const [id, p] of pending) {
        pending.delete(id);
        p.failed(new LaunchError("ECHILD", "the process launcher exited"));
        p.exit({ code: null, signal: "SIGKILL" });
      }
    });
    return launcher;
  }

  function sendTo(launcher: ChildProcess, message: object, handle?: Socket): Promise<void> {
    return new Promise((resolve, reject) => {
      launcher.send(message, handle, (err: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  /** Two socket pairs, their write ends handed to the launcher under a new id. */
  async function prepareStdio(launcher: ChildProcess): Promise<PreparedStdio> {
    const id = nextId++;
    const [out, err] = await Promise.all([pairs.create(), pairs.create()]);
    try {
      await Promise.all([
        sendTo(launcher, { type: "stdio", id, stream: "stdout" }, out.writeEnd),
        sendTo(launcher, { type: "stdio", id, stream: "stderr" }, err.writeEnd),
      ]);
    } catch (e) {
      for (const socket of [out.readEnd, out.writeEnd, err.readEnd, err.writeEnd]) socket.destroy();
      throw new LaunchError("EPIPE", `the process launcher could not be reached: ${(e as Error).message}`);
    }
    return { id, launcher, stdout: out.readEnd, stderr: err.readEnd };
  }

  function discardPrepared(): void {
    for (const p of prepared) {
      p.stdout.destroy();
      p.stderr.destroy();
    }
    prepared = [];
  }

  /** Tops the prepared sockets up in the background, off every command's path. */
  function refill(): void {
    if (refilling || closed) return;
    refilling = true;
    void (async () => {
      try {
        while (!closed && child !== undefined && prepared.length < preparedTarget) {
          const next = await prepareStdio(child);
          if (closed || next.launcher !== child) {
            next.stdout.destroy();
            next.stderr.destroy();
            return;
          }
          prepared.push(next);
        }
      } catch (err) {
        logger.debug({ err }, "could not prepare output sockets for the launcher; the next command makes its own");
      } finally {
        refilling = false;
      }
    })();
  }

  child = start();
  refill();

  return {
    async launch(file, args, options) {
      if (closed) throw new GuruError("unavailable", "the agent is shutting down");
      child ??= start();
      const launcher = child;
      const stdio = prepared.shift() ?? (await prepareStdio(launcher));
      refill();
      const { id } = stdio;
      let onExit!: (exit: ProcessExit) => void;
      const exited = new Promise<ProcessExit>((resolve) => (onExit = resolve));
      const spawned = new Promise<{ pid: number; prepared: boolean }>((resolve, reject) => pending.set(id, { spawned: resolve, failed: reject, exit: onExit }));
      try {
        const [{ pid, prepared }] = await Promise.all([
          spawned,
          sendTo(launcher, { type: "launch", id, file, args, cwd: options.cwd, env: options.env, detached: options.detached }),
        ]);
        return { pid, stdout: stdio.stdout, stderr: stdio.stderr, exited, prepared };
      } catch (e) {
        pending.delete(id);
        stdio.stdout.destroy();
        stdio.stderr.destroy();
        if (e instanceof LaunchError) throw e;
        throw new LaunchError("EPIPE", `the process launcher could not be reached: ${(e as Error).message}`);
      }
    },
    async close() {
      closed = true;
      discardPrepared();
      const launcher = child;
      child = undefined;
      if (launcher !== undefined && launcher.exitCode === null) {
        const gone = new Promise((resolve) => launcher.once("exit", resolve));
        launcher.disconnect();
        await gone;
      }
      await pairs.close();
    },
  };
}

/** The launcher for this platform and choice; falls back to direct when the launcher cannot be set up. */
export async function createProcessLauncher(
  choice: "auto" | "launcher" | "direct",
  logger: Logger,
  platform = process.platform,
  options: ForkedLauncherOptions = {},
): Promise<ProcessLauncher> {
  if (choice === "direct" || (choice === "auto" && platform === "win32")) return createDirectLauncher(logger);
  try {
    return await createForkedLauncher(logger, options);
  } catch (err) {
    logger.warn({ err }, "the process launcher could not be set up; commands start directly from the agent");
    return createDirectLauncher(logger);
  }
}
