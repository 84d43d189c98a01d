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
import { createQuietRefill } from "./quiet-refill.ts";
import { createZygotePool } from "./zygote-pool.ts";
import { chdirFailure, zygoteExit } from "./zygote-spec.js";

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
  | { type: "spawned"; id: number; pid: number }
  | { type: "failed"; id: number; code: string; message: string }
  | { type: "exit"; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { type: "zygote"; id: number; pid: number }
  | { type: "zygoteFailed"; id: number; message: string };

interface Pending {
  spawned(pid: number): void;
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
  /** The stdin of a zygote started on these sockets, when zygotes are in use (zygote-pool.ts). */
  control: Socket | undefined;
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
  const zygotes = createZygotePool({
    request(id, env) {
      if (child !== undefined) void sendTo(child, { type: "zygote", id, env }).catch(() => {});
    },
    drop(id) {
      const dropped = takePrepared((p) => p.id === id);
      if (dropped !== undefined) destroyStdio(dropped);
      quiet.soon();
    },
  });
  // Stale zygotes out, sockets topped up, then zygotes on the new ones.
  const quiet = createQuietRefill(() => {
    for (const stale of prepared.filter((p) => zygotes.stale(p.id))) {
      takePrepared((p) => p === stale);
      zygotes.release(stale.id);
      destroyStdio(stale); // its zygote sees its stdin end and exits
    }
    void refill().then(() => zygotes.refill(prepared.map((p) => p.id)));
  });
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
      if (m.type === "zygote") return zygotes.started(m.id, m.pid);
      if (m.type === "zygoteFailed") {
        logger.debug({ reason: m.message }, "the launcher could not start a zygote; commands are spawned");
        return zygotes.failed(m.id);
      }
      const p = pending.get(m.id);
      // No launch on the id yet: its zygote died waiting.
      if (p === undefined) return m.type === "exit" && zygotes.died(m.id);
      if (m.type === "spawned") p.spawned(m.pid);
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

  /** Two socket pairs (three for a zygote: the third its stdin), their far ends handed to the launcher under a new id. */
  async function prepareStdio(launcher: ChildProcess, forZygote = zygotes.enabled): Promise<PreparedStdio> {
    const id = nextId++;
    const streams = forZygote ? (["stdout", "stderr", "control"] as const) : (["stdout", "stderr"] as const);
    const made = await Promise.all(streams.map(() => pairs.create()));
    try {
      await Promise.all(streams.map((stream, i) => sendTo(launcher, { type: "stdio", id, stream }, made[i].writeEnd)));
    } catch (e) {
      for (const pair of made) for (const socket of [pair.readEnd, pair.writeEnd]) socket.destroy();
      throw new LaunchError("EPIPE", `the process launcher could not be reached: ${(e as Error).message}`);
    }
    return { id, launcher, stdout: made[0].readEnd, stderr: made[1].readEnd, control: made[2]?.readEnd };
  }

  function destroyStdio(stdio: PreparedStdio): void {
    stdio.stdout.destroy();
    stdio.stderr.destroy();
    stdio.control?.destroy();
  }

  /** Removes and returns the first prepared set `match` accepts. */
  function takePrepared(match: (p: PreparedStdio) => boolean): PreparedStdio | undefined {
    const i = prepared.findIndex(match);
    return i < 0 ? undefined : prepared.splice(i, 1)[0];
  }

  function discardPrepared(): void {
    for (const p of prepared) destroyStdio(p);
    prepared = [];
    zygotes.clear();
  }

  /** Tops the prepared sockets up in the background, off every command's path. */
  async function refill(): Promise<void> {
    if (refilling || closed) return;
    refilling = true;
    try {
      while (!closed && child !== undefined && prepared.length < preparedTarget) {
        const next = await prepareStdio(child);
        if (closed || next.launcher !== child) {
          destroyStdio(next);
          return;
        }
        prepared.push(next);
      }
    } catch (err) {
      logger.debug({ err }, "could not prepare output sockets for the launcher; the next command makes its own");
    } finally {
      refilling = false;
    }
  }

  /**
   * Writes the launch to the zygote's stdin and waits for its one byte back
   * (it is in the directory and about to exec): true, and its exit is the
   * command's. The launcher keeps no copy of that socket, so its end means
   * the zygote exec'd or died; without the byte first, it died before the
   * exec: false once its exit arrived (its sockets are gone with it), or, for
   * a directory it could not enter, the launch fails as spawn's would.
   */
  async function launchInZygote(id: number, control: Socket, spec: string, cwd: string, file: string, onExit: (exit: ProcessExit) => void): Promise<boolean> {
    let zygoteGone!: (exit: ProcessExit) => void;
    const zygoteExited = new Promise<ProcessExit>((resolve) => (zygoteGone = resolve));
    pending.set(id, { spawned: () => {}, failed: () => {}, exit: zygoteGone });
    const took = await new Promise<boolean>((resolve) => {
      control.once("data", () => resolve(true));
      control.once("end", () => resolve(false));
      control.once("close", () => resolve(false));
      control.once("error", () => resolve(false));
      control.resume();
      control.end(spec);
    });
    control.destroy();
    if (took) {
      void zygoteExited.then(onExit);
      return true;
    }
    const exit = await zygoteExited;
    pending.delete(id);
    if (exit.code === zygoteExit.noDirectory) {
      const code = chdirFailure(cwd);
      throw new LaunchError(code, `spawn ${file} ${code}`);
    }
    return false;
  }

  child = start();
  void refill();

  return {
    async launch(file, args, options) {
      if (closed) throw new GuruError("unavailable", "the agent is shutting down");
      child ??= start();
      const launcher = child;
      quiet.commandStarted();
      let onExit!: (exit: ProcessExit) => void;
      const exited = new Promise<ProcessExit>((resolve) => (onExit = resolve));
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        quiet.commandEnded();
      };
      void exited.then(end);
      let stdio: PreparedStdio | undefined;
      try {
        const fit = zygotes.fit(file, args, options);
        const zygotePid = (p: PreparedStdio) => (fit === undefined || p.control === undefined ? undefined : zygotes.ready(p.id, fit.key));
        const ready = takePrepared((p) => zygotePid(p) !== undefined);
        if (fit !== undefined && ready?.control !== undefined) {
          stdio = ready;
          const pid = zygotePid(ready) as number;
          zygotes.release(ready.id);
          if (await launchInZygote(ready.id, ready.control, fit.spec, options.cwd, file, onExit)) {
            return { pid, stdout: ready.stdout, stderr: ready.stderr, exited, prepared: true };
          }
          // It died before it took the launch, and its sockets with it: spawned instead, on others.
          destroyStdio(ready);
        }
        stdio = takePrepared((p) => !zygotes.reserved(p.id)) ?? (await prepareStdio(launcher, false));
        // No zygote was asked for on these: their third socket has no use.
        stdio.control?.destroy();
        const { id } = stdio;
        const spawned = new Promise<number>((resolve, reject) => pending.set(id, { spawned: resolve, failed: reject, exit: onExit }));
        const [pid] = await Promise.all([
          spawned,
          sendTo(launcher, { type: "launch", id, file, args, cwd: options.cwd, env: options.env, detached: options.detached }),
        ]);
        return { pid, stdout: stdio.stdout, stderr: stdio.stderr, exited, prepared: false };
      } catch (e) {
        if (stdio !== undefined) {
          pending.delete(stdio.id);
          destroyStdio(stdio);
        }
        end();
        if (e instanceof LaunchError) throw e;
        throw new LaunchError("EPIPE", `the process launcher could not be reached: ${(e as Error).message}`);
      }
    },
    async close() {
      closed = true;
      quiet.stop();
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
