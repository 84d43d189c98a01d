// The launcher process through real processes: what it starts, how it fails,
// and that nothing it started outlives it or the agent.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../lib/logging.ts";
import { collectLaunched, isAlive, waitUntilDead } from "../../../test/support/exec-test-fixture.ts";
import { createForkedLauncher, LaunchError, type ProcessLauncher } from "./launcher.ts";

const posix = process.platform !== "win32";

const collect = collectLaunched;

// Commands always get their whole environment from the agent.
const env = { PATH: "/usr/bin:/bin" };

describe.runIf(posix)("process launcher", () => {
  let launcher: ProcessLauncher;
  beforeAll(async () => {
    launcher = await createForkedLauncher(silentLogger());
  });
  afterAll(() => launcher.close());

  it("starts a process with its own output sockets, cwd and env, and reports its exit", async () => {
    const p = await launcher.launch("/bin/sh", ["-c", 'echo "$PWD $GURU_X"; echo oops >&2; exit 7'], {
      cwd: "/tmp",
      env: { ...env, GURU_X: "x1" },
      detached: true,
    });
    expect(await collect(p)).toEqual({ exit: { code: 7, signal: null }, stdout: "/tmp x1\n", stderr: "oops\n" });
  });

  it("runs commands with the command umask, not the agent's private 077", async () => {
    const before = process.umask(0o077);
    const masked = await createForkedLauncher(silentLogger(), { commandUmask: 0o027 });
    try {
      const p = await masked.launch("/bin/sh", ["-c", "umask"], { cwd: "/tmp", env, detached: true });
      expect((await collect(p)).stdout.trim()).toBe("0027");
      const q = await launcher.launch("/bin/sh", ["-c", "umask"], { cwd: "/tmp", env, detached: true });
      expect((await collect(q)).stdout.trim()).toBe("0022");
    } finally {
      process.umask(before);
      await masked.close();
    }
  });

  it("keeps output written before the agent reads it, and the end after it", async () => {
    const p = await launcher.launch("/bin/sh", ["-c", "printf early"], { cwd: "/tmp", env, detached: true });
    await p.exited;
    await new Promise((r) => setTimeout(r, 50)); // exited and closed before anyone read
    expect((await collect(p)).stdout).toBe("early");
  });

  it("leads a new process group when detached", async () => {
    const p = await launcher.launch("/bin/sh", ["-c", "ps -o pgid= -p $$"], { cwd: "/tmp", env, detached: true });
    expect(Number((await collect(p)).stdout.trim())).toBe(p.pid);
  });

  it("fails like spawn for a missing program or a bad argument, and keeps working", async () => {
    const missing = await launcher.launch("/nonexistent/shell", [], { cwd: "/tmp", env, detached: true }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(LaunchError);
    expect((missing as LaunchError).code).toBe("ENOENT");
    const nul = await launcher.launch("/bin/sh", ["-c", "true"], { cwd: "/tmp", env: { BAD: "a\0b" }, detached: true }).catch((e: unknown) => e);
    expect((nul as LaunchError).code).toMatch(/^ERR_INVALID_ARG/);
    expect((await collect(await launcher.launch("/bin/sh", ["-c", "echo ok"], { cwd: "/tmp", env, detached: true }))).stdout).toBe("ok\n");
  });

  it("runs 50 at once, each with its own output", async () => {
    const runs = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => collect(await launcher.launch("/bin/sh", ["-c", `echo ${i}`], { cwd: "/tmp", env, detached: true }))),
    );
    expect(runs.map((r) => r.stdout)).toEqual(Array.from({ length: 50 }, (_, i) => `${i}\n`));
  });

  it("when the launcher dies, its running commands are reported killed and die; the next launch starts a new one", async () => {
    const own = await createForkedLauncher(silentLogger());
    try {
      const p = await own.launch("/bin/sh", ["-c", "echo $PPID; sleep 60"], { cwd: "/tmp", env, detached: true });
      p.stdout.resume();
      const launcherPid = Number(await new Promise<string>((r) => p.stdout.once("data", (d: Buffer) => r(d.toString()))));
      process.kill(launcherPid, "SIGKILL");
      expect(await p.exited).toEqual({ code: null, signal: "SIGKILL" });
      // A SIGKILLed launcher cannot clean up: the agent kills the group.
      process.kill(-p.pid, "SIGKILL");
      expect(await waitUntilDead(p.pid)).toBe(true);
      expect((await collect(await own.launch("/bin/sh", ["-c", "echo again"], { cwd: "/tmp", env, detached: true }))).stdout).toBe("again\n");
    } finally {
      await own.close();
    }
  });

  it("when the agent goes away, the launcher kills what it started and exits", async () => {
    // A stand-in agent: starts a launcher, launches a sleeper, prints both pids, then is SIGKILLed.
    const script = `
      import { createForkedLauncher } from ${JSON.stringify(fileURLToPath(new URL("./launcher.ts", import.meta.url)))};
      import { silentLogger } from ${JSON.stringify(fileURLToPath(new URL("../../../lib/logging.ts", import.meta.url)))};
      const env = { PATH: "/usr/bin:/bin" };
      const l = await createForkedLauncher(silentLogger());
      const p = await l.launch("/bin/sh", ["-c", "echo $PPID; exec sleep 60"], { cwd: "/tmp", env, detached: true });
      p.stdout.once("data", (d) => process.stdout.write(JSON.stringify({ launcher: Number(String(d)), sleeper: p.pid }) + "\\n"));
      p.stdout.resume();
      setInterval(() => {}, 1000);`;
    const agent = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const pids = JSON.parse(await new Promise<string>((r) => agent.stdout.once("data", (d: Buffer) => r(d.toString())))) as {
      launcher: number;
      sleeper: number;
    };
    expect(isAlive(pids.sleeper)).toBe(true);
    agent.kill("SIGKILL");
    expect(await waitUntilDead(pids.sleeper, 3000)).toBe(true);
    expect(await waitUntilDead(pids.launcher, 3000)).toBe(true);
  });
});
