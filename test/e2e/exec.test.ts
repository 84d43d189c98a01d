// Remote commands end to end: a real server, real `guru agent` processes
// running real shells, real databases, Connect clients over HTTP. Streaming,
// exit codes and signals, timeouts, cancellation, the output cap, concurrency.
import { ExitReason } from "../../gen/guru/api/v1/exec_pb.js";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDatabases } from "../support/databases.ts";
import { collectStream, errorOf, openTunnel, waitDead } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { waitFor } from "../support/raw-agent.ts";

const MiB = 1024 * 1024;

describeDatabases("remote commands", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("streams output as it is written, before the command ends, and audits it", async () => {
    const { api, sessionId, agent, technicianId } = await openTunnel(t, "stream");
    // A command moves the session's last activity once it is older than a second (idle expiry needs no finer clock).
    await t.server.store.db.query("UPDATE tunnel_sessions SET last_activity_at = now() - interval '1 minute' WHERE id = $1", [sessionId]);
    const before = await t.server.store.sessions.get(sessionId);
    const got = await collectStream(api.exec.streamCommand({ sessionId, command: "echo first; sleep 1; echo second >&2; echo third" }));
    expect(got.stdout).toBe("first\nthird\n");
    expect(got.stderr).toBe("second\n");
    expect(got.result?.reason).toBe(ExitReason.EXITED);
    expect(got.result?.exitCode).toBe(0);
    expect(got.result?.stdoutBytes).toBe(12n);
    expect(got.result?.stderrBytes).toBe(7n);
    // "first" arrived while the command still slept.
    expect(got.resultTime - got.chunkTimes[0]).toBeGreaterThan(700);

    await t.server.commands.drain(); // results are written just after the answer
    const [row] = await t.server.store.audit.listCommands({ sessionId });
    expect(row).toMatchObject({
      technicianId,
      agentId: agent.agentId,
      sessionId,
      command: "echo first; sleep 1; echo second >&2; echo third",
      outcome: "allowed",
      exitCode: 0,
      exitReason: "exited",
      truncated: false,
    });
    expect(Number(row.stdoutBytes)).toBe(12);
    expect(Number(row.stderrBytes)).toBe(7);
    expect(Number(row.durationMs)).toBeGreaterThanOrEqual(1000);
    expect(row.channelId).toBeGreaterThan(0);
    const after = await t.server.store.sessions.get(sessionId);
    expect(after!.lastActivityAt.getTime()).toBeGreaterThan(before!.lastActivityAt.getTime());
  });

  it("reports exit codes and signals, with the shell, working dir and env asked for", async () => {
    const { api, sessionId } = await openTunnel(t, "codes");
    const exited = await api.exec.runCommand({ sessionId, command: "echo out; echo err >&2; exit 7" });
    expect(Buffer.from(exited.stdout).toString()).toBe("out\n");
    expect(Buffer.from(exited.stderr).toString()).toBe("err\n");
    expect(exited.result).toMatchObject({ exitCode: 7, signal: "", reason: ExitReason.EXITED });

    const killed = await api.exec.runCommand({ sessionId, command: "kill -TERM $$" });
    expect(killed.result).toMatchObject({ exitCode: -1, signal: "SIGTERM", reason: ExitReason.KILLED });

    const env = await api.exec.runCommand({ sessionId, command: 'echo "$GREETING" "$(pwd)"', env: { GREETING: "hi" }, workingDir: t.tempDir });
    expect(Buffer.from(env.stdout).toString().trim()).toBe(`hi ${t.tempDir}`);

    await t.server.commands.drain(); // results are written just after the answer
    const rows = await t.server.store.audit.listCommands({ sessionId });
    expect(rows.map((r) => [r.outcome, r.exitCode, r.exitReason, r.signal])).toEqual([
      ["allowed", 0, "exited", null],
      ["failed", -1, "killed", "SIGTERM"],
      ["failed", 7, "exited", null],
    ]);
    expect(rows[0].workingDir).toBe(t.tempDir);
  });

  it("kills the whole process tree on timeout: neither the shell nor its background child survives", async () => {
    const { api, sessionId } = await openTunnel(t, "timeout");
    const pids: number[] = [];
    const got = await collectStream(api.exec.streamCommand({ sessionId, command: "sleep 30 & echo $!; echo $$; wait", timeoutMs: 700 }), (text) =>
      pids.push(...text.trim().split(/\s+/).map(Number)),
    );
    expect(got.result?.reason).toBe(ExitReason.TIMED_OUT);
    expect(got.resultTime).toBeLessThan(5000);
    expect(pids).toHaveLength(2);
    await waitDead(pids);
    await t.server.commands.drain(); // results are written just after the answer
    const [row] = await t.server.store.audit.listCommands({ sessionId });
    expect(row).toMatchObject({ outcome: "failed", exitReason: "timed_out" });
  });

  it("clamps a timeout above the server's maximum to it", async () => {
    const clamped = await startTestServer({ kind, config: { execMaxTimeoutMs: 500 } });
    try {
      const { api, sessionId } = await openTunnel(clamped, "clamp");
      const started = Date.now();
      const res = await api.exec.runCommand({ sessionId, command: "sleep 20", timeoutMs: 60_000 });
      expect(res.result?.reason).toBe(ExitReason.TIMED_OUT);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await clamped.close();
    }
  });

  it("kills the remote process when the client aborts the stream", async () => {
    const { api, sessionId } = await openTunnel(t, "cancel");
    const abort = new AbortController();
    let pid = 0;
    const call = collectStream(api.exec.streamCommand({ sessionId, command: "echo $$; sleep 30 & wait" }, { signal: abort.signal }), (text) => {
      pid = Number(text.trim());
      abort.abort();
    });
    expect((await errorOf(call)).code).toBe(Code.Canceled);
    expect(pid).toBeGreaterThan(0);
    await waitDead([pid]);
    await waitFor(async () => (await t.server.store.audit.listCommands({ sessionId }))[0]?.exitReason === "canceled", 5000, "the canceled audit row");
    // The tunnel is still usable afterwards.
    const res = await api.exec.runCommand({ sessionId, command: "echo ok" });
    expect(Buffer.from(res.stdout).toString()).toBe("ok\n");
  });

  it("caps output per stream: a command printing 50 MiB returns 1 MiB, counts all, says truncated", async () => {
    const { api, sessionId } = await openTunnel(t, "cap");
    const res = await api.exec.runCommand({ sessionId, command: "head -c 52428800 /dev/zero; echo tail >&2" });
    expect(res.stdout.byteLength).toBe(MiB);
    expect(Buffer.from(res.stderr).toString()).toBe("tail\n");
    expect(res.result).toMatchObject({ exitCode: 0, stdoutBytes: 50n * BigInt(MiB), stderrBytes: 5n, truncated: true });
    const streamed = await collectStream(api.exec.streamCommand({ sessionId, command: "head -c 52428800 /dev/zero" }));
    expect(streamed.stdout.length).toBe(MiB);
    expect(streamed.result?.truncated).toBe(true);
    await t.server.commands.drain(); // results are written just after the answer
    const [row] = await t.server.store.audit.listCommands({ sessionId });
    expect(row.truncated).toBe(true);
    expect(Number(row.stdoutBytes)).toBe(50 * MiB);
  });

  it("runs many commands at once on one agent; a slow one never delays a fast one", async () => {
    const { api, sessionId } = await openTunnel(t, "concurrent");
    const slow = api.exec.runCommand({ sessionId, command: "sleep 3; echo slow" });
    const started = Date.now();
    const fast = await api.exec.runCommand({ sessionId, command: "echo fast" });
    expect(Buffer.from(fast.stdout).toString()).toBe("fast\n");
    expect(Date.now() - started).toBeLessThan(1500);

    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => api.exec.runCommand({ sessionId, command: `sleep 1; echo ${i}` })));
    expect(Date.now() - started).toBeLessThan(2900);
    expect(many.map((r) => Buffer.from(r.stdout).toString())).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`));
    expect(Buffer.from((await slow).stdout).toString()).toBe("slow\n");
    await t.server.commands.drain(); // results are written just after the answer
    const rows = await t.server.store.audit.listCommands({ sessionId });
    expect(rows).toHaveLength(22);
    expect(new Set(rows.map((r) => r.channelId)).size).toBe(22);
  });
});
