import { beforeAll, expect, it } from "vitest";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedSession } from "../../test/support/store-fixtures.ts";

describeDatabases("audit", (kind) => {
  const ctx = useTestStore(kind);
  let ids: { agentId: string; technicianId: string; sessionId: string };
  beforeAll(async () => {
    ids = await seedSession(ctx.store);
  });

  it("records and lists tunnel events, newest first", async () => {
    const open = await ctx.store.audit.tunnel({ event: "open", ...ids, outcome: "allowed", detail: { via: "cli" } });
    expect(open).toMatchObject({ event: "open", ...ids, outcome: "allowed", reason: null, detail: { via: "cli" } });
    expect(typeof open.id).toBe("number");
    expect(open.at).toBeInstanceOf(Date);
    const refuse = await ctx.store.audit.tunnel({ event: "refuse", agentId: ids.agentId, reason: "busy" });
    expect(refuse).toMatchObject({ sessionId: null, technicianId: null, detail: null });
    expect((await ctx.store.audit.listTunnel({ agentId: ids.agentId })).map((e) => e.event)).toEqual(["refuse", "open"]);
    expect((await ctx.store.audit.listTunnel({ sessionId: ids.sessionId })).map((e) => e.event)).toEqual(["open"]);
    expect(await ctx.store.audit.listTunnel({ sessionId: "nope" })).toEqual([]);
  });

  it("records commands, completes them, and counts failures for alerting", async () => {
    const started = await ctx.store.audit.command({ ...ids, channelId: 3, shell: "bash", workingDir: "/tmp", command: "ls -la", outcome: "allowed" });
    expect(started).toMatchObject({ command: "ls -la", outcome: "allowed", exitCode: null, truncated: false, channelId: 3 });
    const completed = await ctx.store.audit.completeCommand(started.id, {
      outcome: "failed",
      exitCode: 2,
      exitReason: "exited",
      durationMs: 1234,
      stdoutBytes: 5_000_000_000,
      stderrBytes: 10,
      truncated: true,
    });
    expect(completed).toBe(true);
    const [done] = await ctx.store.audit.listCommands({ sessionId: ids.sessionId });
    expect(done).toMatchObject({ id: started.id, outcome: "failed", exitCode: 2, durationMs: 1234, stdoutBytes: 5_000_000_000, truncated: true });
    expect(await ctx.store.audit.completeCommand(started.id + 1000, { outcome: "failed" })).toBe(false);
    await ctx.store.audit.command({ ...ids, command: "rm -rf /", outcome: "refused", refusalReason: "policy" });
    await ctx.store.audit.command({ ...ids, command: "whoami", outcome: "allowed", exitCode: 0 });
    expect((await ctx.store.audit.listCommands({ sessionId: ids.sessionId })).map((c) => c.command)).toEqual(["whoami", "rm -rf /", "ls -la"]);
    expect(await ctx.store.audit.listCommands({ technicianId: ids.technicianId, limit: 1 })).toHaveLength(1);
    expect(await ctx.store.audit.countFailedCommandsSince({ technicianId: ids.technicianId, sinceMs: 60_000 })).toBe(2);
    expect(await ctx.store.audit.countFailedCommandsSince({ agentId: ids.agentId, sinceMs: 60_000 })).toBe(2);
    await ctx.testDb.db.query("UPDATE command_audit SET at = now() - interval '2 hours' WHERE command = 'rm -rf /'");
    expect(await ctx.store.audit.countFailedCommandsSince({ agentId: ids.agentId, sinceMs: 60_000 })).toBe(1);
    await expect(ctx.store.audit.command({ ...ids, command: "x", outcome: "maybe" as never })).rejects.toMatchObject({ code: "23514" });
  });

  it("records file operations", async () => {
    const f = await ctx.store.audit.file({
      ...ids,
      operation: "upload",
      path: "/tmp/a",
      direction: "upload",
      bytes: 42,
      sha256: "ab",
      outcome: "allowed",
      durationMs: 7,
    });
    expect(f).toMatchObject({ operation: "upload", path: "/tmp/a", bytes: 42, error: null });
    await ctx.store.audit.file({ ...ids, operation: "read", path: "/etc/shadow", outcome: "refused", error: "outside allowlist" });
    expect((await ctx.store.audit.listFiles({ agentId: ids.agentId })).map((x) => x.operation)).toEqual(["read", "upload"]);
  });

  it("sweeps rows older than the retention, per table", async () => {
    await ctx.store.audit.tunnel({ event: "close", ...ids });
    for (const table of ["tunnel_audit", "command_audit", "file_audit"]) {
      await ctx.testDb.db.query(`UPDATE ${table} SET at = now() - interval '40 days' WHERE id IN (SELECT min(id) FROM ${table})`);
    }
    expect(await ctx.store.audit.sweep(30 * 24 * 3600_000)).toEqual({ tunnel: 1, commands: 1, files: 1 });
    expect(await ctx.store.audit.sweep(30 * 24 * 3600_000)).toEqual({ tunnel: 0, commands: 0, files: 0 });
    expect((await ctx.store.audit.listTunnel()).length).toBe(2);
  });
});
