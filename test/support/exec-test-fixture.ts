// Shared by the exec tests: a real temp dir as the allowlist, a default
// policy, a recorder for output, and process liveness checks through ps.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../lib/logging.ts";
import type { LocalPolicy } from "../../agent/policy/local-policy.ts";
import { createDirectLauncher, createForkedLauncher, type LaunchedProcess, type ProcessLauncher } from "../../agent/exec/launcher/launcher.ts";
import { createPathGuard } from "../../agent/policy/path-guard.ts";
import { runCommand, type CommandIo, type CommandOutcome, type CommandSpec, type OutputStream, type RunCommandDeps } from "../../agent/exec/run-command.ts";

export type LauncherKind = "direct" | "launcher";

export interface ExecFixture {
  root: string;
  launcher: ProcessLauncher;
  allowed: string;
  deps(overrides?: Partial<Omit<RunCommandDeps, "policy">> & { policy?: Partial<LocalPolicy> }): RunCommandDeps;
  cleanup(): Promise<void>;
}

/** A temp dir, and commands started directly or through a launcher process. */
export async function createExecFixture(kind: LauncherKind = "direct"): Promise<ExecFixture> {
  const root = await realpath(await mkdtemp(join(tmpdir(), "guru-exec-")));
  const allowed = join(root, "allowed");
  await mkdir(allowed);
  const launcher = kind === "launcher" ? await createForkedLauncher(silentLogger()) : createDirectLauncher(silentLogger());
  return {
    root,
    launcher,
    allowed,
    deps(overrides = {}) {
      const { policy: policyOverrides, ...rest } = overrides;
      const policy: LocalPolicy = {
        allowedPaths: [allowed],
        commands: { deny: [], allow: [] },
        capabilities: { exec: true, files: true, services: false, registry: false, terminal: false },
        exec: { allowEnv: [] },
        consent: { mode: "ask", requiredForEverySession: false },
        services: { allow: [], deny: [], control: true },
        registryKeys: [],
        ...policyOverrides,
      };
      return { policy, pathGuard: createPathGuard(policy.allowedPaths), logger: silentLogger(), killGraceMs: 300, launcher, ...rest };
    },
    async cleanup() {
      await launcher.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface Recorded {
  chunks: { stream: OutputStream; data: Buffer; atMs: number }[];
  text(stream: OutputStream): string;
  bytes(stream: OutputStream): number;
}

/** An io that records every chunk (copied: the caller may reuse its buffers). */
export function recordingIo(options: { signal?: AbortSignal; delayMs?: number; maxKeptBytes?: number } = {}): CommandIo & Recorded {
  const chunks: Recorded["chunks"] = [];
  const totals = { stdout: 0, stderr: 0 };
  const maxKept = options.maxKeptBytes ?? Number.POSITIVE_INFINITY;
  return {
    chunks,
    signal: options.signal ?? new AbortController().signal,
    async onOutput(stream, data) {
      totals[stream] += data.length;
      if (totals[stream] <= maxKept) chunks.push({ stream, data: Buffer.from(data), atMs: performance.now() });
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
    },
    text: (stream) => Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data)).toString("utf8"),
    bytes: (stream) => totals[stream],
  };
}

export function spec(command: string, overrides: Partial<CommandSpec> = {}): CommandSpec {
  return { command, timeoutMs: 10_000, maxOutputBytes: 1024 * 1024, ...overrides };
}

export async function run(command: string, fixture: ExecFixture, overrides: Partial<CommandSpec> = {}): Promise<{ outcome: CommandOutcome; io: Recorded }> {
  const io = recordingIo();
  const outcome = await runCommand(spec(command, overrides), io, fixture.deps());
  return { outcome, io };
}

/** Alive = known to ps and not a zombie (a zombie has exited, it only waits to be reaped). */
export function isAlive(pid: number): boolean {
  try {
    const stat = execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" }).trim();
    return stat !== "" && !stat.startsWith("Z");
  } catch {
    return false; // ps exits 1 when the pid is unknown
  }
}

export async function waitUntilDead(pid: number, withinMs = 2_000): Promise<boolean> {
  const until = performance.now() + withinMs;
  while (performance.now() < until) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

export function pidsIn(text: string): number[] {
  return [...text.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

/** A launched process's exit and all of its stdout and stderr, once both streams closed. */
export async function collectLaunched(p: LaunchedProcess) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const closed = Promise.all([new Promise((r) => p.stdout.once("close", r)), new Promise((r) => p.stderr.once("close", r))]);
  p.stdout.on("data", (d: Buffer) => out.push(d));
  p.stderr.on("data", (d: Buffer) => err.push(d));
  p.stdout.resume();
  p.stderr.resume();
  const exit = await p.exited;
  await closed;
  return { exit, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}
