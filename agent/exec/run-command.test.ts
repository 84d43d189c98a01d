// Through real shells and real child processes: streaming, exit, signals,
// timeouts and cancellation killing whole trees, output caps, backpressure.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GuruError } from "../../lib/errors.ts";
import { createExecFixture, pidsIn, recordingIo, run, spec, waitUntilDead, type ExecFixture } from "../../test/support/exec-test-fixture.ts";
import { runCommand } from "./run-command.ts";

const posix = process.platform !== "win32";

describe.each(["direct", "launcher"] as const)("commands started %s", (kind) => {
  let fx: ExecFixture;
  const strays: number[] = [];

  beforeAll(async () => {
    fx = await createExecFixture(kind);
  });
  afterAll(async () => {
    for (const pid of strays) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone, as it should be
      }
    }
    await fx.cleanup();
  });

  describe.runIf(posix)("runCommand: running and streaming", () => {
    it("streams output before the command ends", async () => {
      const io = recordingIo();
      const outcome = await runCommand(spec("echo first; sleep 0.5; echo second"), io, fx.deps());
      const endedAt = performance.now();
      expect(outcome).toMatchObject({ reason: "exited", exitCode: 0, signal: "", stdoutBytes: 13, stderrBytes: 0, truncated: false });
      expect(io.text("stdout")).toBe("first\nsecond\n");
      expect(io.chunks[0].data.toString()).toBe("first\n");
      expect(endedAt - io.chunks[0].atMs).toBeGreaterThan(300);
    });

    it("reports exit codes and separates stderr", async () => {
      const { outcome, io } = await run("echo out; echo err >&2; exit 3", fx);
      expect(outcome).toMatchObject({ reason: "exited", exitCode: 3, signal: "", stdoutBytes: 4, stderrBytes: 4 });
      expect(io.text("stdout")).toBe("out\n");
      expect(io.text("stderr")).toBe("err\n");
    });

    it("runs bash when asked, with the command as one argument", async () => {
      const { outcome, io } = await run(`a='x  "y"'; echo "$a" "$BASH_VERSION" | cut -c1-7`, fx, { shell: "bash" });
      expect(outcome.exitCode).toBe(0);
      expect(io.text("stdout")).toBe('x  "y" \n');
    });

    it("reports a command killed by a signal", async () => {
      const { outcome } = await run("kill -9 $$", fx);
      expect(outcome).toMatchObject({ reason: "killed", exitCode: -1, signal: "SIGKILL" });
    });

    it("gives the command a closed stdin", async () => {
      const { outcome, io } = await run("cat; echo rc=$?", fx, { timeoutMs: 5_000 });
      expect(outcome.reason).toBe("exited");
      expect(io.text("stdout")).toBe("rc=0\n");
    });

    it("runs concurrent commands independently", async () => {
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => run(`sleep 0.3; echo n=${i}; exit ${i}`, fx)));
      results.forEach(({ outcome, io }, i) => {
        expect(outcome.exitCode).toBe(i);
        expect(io.text("stdout")).toBe(`n=${i}\n`);
      });
      expect(performance.now() - started).toBeLessThan(8 * 300);
    });
  });

  describe.runIf(posix)("runCommand: process trees", () => {
    it("ends when the shell exits and kills the background children it left", async () => {
      const started = performance.now();
      const { outcome, io } = await run("sleep 100 & echo pid=$!", fx);
      const [sleeper] = pidsIn(io.text("stdout"));
      strays.push(sleeper);
      expect(outcome).toMatchObject({ reason: "exited", exitCode: 0 });
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(await waitUntilDead(sleeper)).toBe(true);
    });

    it("a timeout kills the shell and its background child", async () => {
      const started = performance.now();
      const io = recordingIo();
      const outcome = await runCommand(spec("sleep 30 & echo pid=$! pid=$$; sleep 30", { timeoutMs: 400 }), io, fx.deps());
      const pids = pidsIn(io.text("stdout"));
      strays.push(...pids);
      expect(pids).toHaveLength(2);
      expect(outcome).toMatchObject({ reason: "timed_out", exitCode: -1, signal: "SIGTERM" });
      expect(outcome.durationMs).toBeGreaterThanOrEqual(390);
      expect(performance.now() - started).toBeLessThan(3_000);
      for (const pid of pids) expect(await waitUntilDead(pid), `pid ${pid}`).toBe(true);
    });

    it("SIGKILLs a tree that ignores SIGTERM after the grace", async () => {
      const io = recordingIo();
      const started = performance.now();
      const outcome = await runCommand(spec(`trap '' TERM; sleep 30 & echo pid=$! pid=$$; wait`, { timeoutMs: 300 }), io, fx.deps({ killGraceMs: 300 }));
      const pids = pidsIn(io.text("stdout"));
      strays.push(...pids);
      expect(outcome).toMatchObject({ reason: "timed_out", signal: "SIGKILL" });
      expect(performance.now() - started).toBeGreaterThanOrEqual(580);
      for (const pid of pids) expect(await waitUntilDead(pid), `pid ${pid}`).toBe(true);
    });

    it("cancels through the AbortSignal and kills the tree", async () => {
      const controller = new AbortController();
      const io = recordingIo({ signal: controller.signal });
      const running = runCommand(spec("sleep 30 & echo pid=$! pid=$$; sleep 30"), io, fx.deps());
      while (io.chunks.length === 0) await new Promise((r) => setTimeout(r, 10));
      controller.abort();
      const outcome = await running;
      const pids = pidsIn(io.text("stdout"));
      strays.push(...pids);
      expect(outcome.reason).toBe("canceled");
      expect(outcome.durationMs).toBeLessThan(2_000);
      for (const pid of pids) expect(await waitUntilDead(pid), `pid ${pid}`).toBe(true);
    });

    it("refuses to start a command already canceled", async () => {
      const controller = new AbortController();
      controller.abort();
      const err = await runCommand(spec("echo never"), recordingIo({ signal: controller.signal }), fx.deps()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuruError);
      expect((err as GuruError).kind).toBe("canceled");
    });

    it("does not wait for a process that escaped the group but holds the pipes", async () => {
      const started = performance.now();
      const { outcome, io } = await run("setsid sh -c 'echo pid=$$; exec sleep 30' & sleep 0.2; echo done", fx);
      strays.push(...pidsIn(io.text("stdout")));
      expect(outcome.reason).toBe("exited");
      expect(io.text("stdout")).toContain("done");
      expect(performance.now() - started).toBeLessThan(2_000);
    });

    it("kills the tree and rejects when the consumer fails", async () => {
      let calls = 0;
      let shellPid = 0;
      const io = {
        signal: new AbortController().signal,
        async onOutput(_stream: string, data: Uint8Array) {
          calls++;
          shellPid = pidsIn(Buffer.from(data).toString())[0];
          throw new Error("channel closed");
        },
      };
      const err = await runCommand(spec("echo pid=$$; sleep 30"), io, fx.deps()).catch((e: unknown) => e);
      strays.push(shellPid);
      expect((err as Error).message).toBe("channel closed");
      expect(calls).toBe(1);
      expect(await waitUntilDead(shellPid)).toBe(true);
    });
  });

  describe.runIf(posix)("runCommand: output limits and flow control", () => {
    it("caps 50 MiB of output at 1 MiB, counting every byte", async () => {
      const total = 50 * 1024 * 1024;
      const cap = 1024 * 1024;
      const io = recordingIo({ maxKeptBytes: 0 });
      const outcome = await runCommand(spec(`head -c ${total} /dev/zero; echo tail >&2`, { maxOutputBytes: cap }), io, fx.deps());
      expect(outcome).toMatchObject({ reason: "exited", exitCode: 0, stdoutBytes: total, stderrBytes: 5, truncated: true });
      expect(io.bytes("stdout")).toBe(cap);
      expect(io.bytes("stderr")).toBe(5);
    });

    it("keeps memory bounded whatever the command prints", async () => {
      // RSS grows by the 64 KiB read buffers awaiting garbage collection (a bare
      // spawn that discards its output grows as much: ~35 MiB at 50 MiB, ~64 MiB
      // flat from 200 MiB on), so boundedness shows on a large output.
      const total = 256 * 1024 * 1024;
      const rssBefore = process.memoryUsage().rss;
      let peakRss = rssBefore;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 10);
      const outcome = await runCommand(spec(`head -c ${total} /dev/zero`, { maxOutputBytes: 1024 * 1024 }), recordingIo({ maxKeptBytes: 0 }), fx.deps());
      clearInterval(sampler);
      expect(outcome).toMatchObject({ stdoutBytes: total, truncated: true });
      expect(peakRss - rssBefore).toBeLessThan(96 * 1024 * 1024);
    });

    it("delivers nothing and reports truncation with a zero cap", async () => {
      const { outcome, io } = await run("echo hi", fx, { maxOutputBytes: 0 });
      expect(outcome).toMatchObject({ stdoutBytes: 3, truncated: true });
      expect(io.bytes("stdout")).toBe(0);
    });

    it("a slow consumer loses no byte", async () => {
      const io = recordingIo({ delayMs: 2 });
      const outcome = await runCommand(spec("seq 1 100000", { maxOutputBytes: 10 * 1024 * 1024 }), io, fx.deps());
      const expected = Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join("");
      expect(outcome).toMatchObject({ reason: "exited", stdoutBytes: expected.length, truncated: false });
      expect(io.text("stdout")).toBe(expected);
    });

    it("stops reading a pipe while its consumer waits (the command blocks)", async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const seen = { stdout: 0, stderr: "" };
      const io = {
        signal: new AbortController().signal,
        async onOutput(stream: "stdout" | "stderr", data: Uint8Array) {
          if (stream === "stderr") {
            seen.stderr += Buffer.from(data).toString();
            return;
          }
          seen.stdout += data.length;
          await gate;
        },
      };
      const running = runCommand(spec("echo start >&2; head -c 4194304 /dev/zero; echo done >&2", { maxOutputBytes: 8 * 1024 * 1024 }), io, fx.deps());
      await new Promise((r) => setTimeout(r, 500));
      // One chunk delivered and waiting; the 4 MiB writer is stuck on a full pipe.
      expect(seen.stderr).toBe("start\n");
      expect(seen.stdout).toBeLessThanOrEqual(256 * 1024);
      release();
      const outcome = await running;
      expect(seen.stderr).toBe("start\ndone\n");
      expect(seen.stdout).toBe(4194304);
      expect(outcome.stdoutBytes).toBe(4194304);
    });
  });
});
