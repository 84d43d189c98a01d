import { beforeAll, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedSession } from "../../test/support/store-fixtures.ts";
import { createAuditRetention } from "../domain/audit-retention.ts";

describeDatabases("system audit", (kind) => {
  const ctx = useTestStore(kind);
  let ids: { agentId: string; technicianId: string; sessionId: string };
  beforeAll(async () => {
    ids = await seedSession(ctx.store);
  });

  it("records before and after values, the dry-run flag and the outcome, newest first", async () => {
    const row = await ctx.store.systemAudit.record({
      ...ids,
      operation: "service_control",
      target: "nginx",
      action: "restart",
      dryRun: true,
      outcome: "allowed",
      before: { state: "running", pid: 10 },
      after: { state: "running", pid: 0 },
      durationMs: 12,
    });
    expect(row).toMatchObject({
      operation: "service_control",
      target: "nginx",
      action: "restart",
      dryRun: true,
      outcome: "allowed",
      before: { state: "running", pid: 10 },
      after: { state: "running", pid: 0 },
      error: null,
    });
    const refused = await ctx.store.systemAudit.record({
      technicianId: ids.technicianId,
      operation: "registry_write",
      target: "HKLM\\SOFTWARE\\V\\x",
      dryRun: false,
      outcome: "refused",
      error: "denied",
    });
    expect(refused).toMatchObject({ sessionId: null, before: null, after: null, outcome: "refused" });
    expect((await ctx.store.systemAudit.list({ technicianId: ids.technicianId })).map((r) => r.operation)).toEqual(["registry_write", "service_control"]);
    expect(await ctx.store.systemAudit.list({ sessionId: "not-a-uuid" })).toEqual([]);
  });

  it("refuses an outcome outside the vocabulary, and keeps what was there", async () => {
    const before = (await ctx.store.systemAudit.list({ technicianId: ids.technicianId })).length;
    await expect(ctx.store.systemAudit.record({ ...ids, operation: "service_list", dryRun: false, outcome: "maybe" as "allowed" })).rejects.toThrow();
    expect(await ctx.store.systemAudit.list({ technicianId: ids.technicianId })).toHaveLength(before);
  });

  it("leaves with the other audit rows in the retention sweep", async () => {
    const old = await ctx.store.systemAudit.record({ ...ids, operation: "service_list", dryRun: false, outcome: "allowed" });
    const fresh = await ctx.store.systemAudit.record({ ...ids, operation: "service_list", dryRun: false, outcome: "allowed" });
    await ctx.store.db.query("UPDATE system_audit SET at = now() - interval '91 days' WHERE id = $1", [old.id]);
    const removed = await createAuditRetention({ store: ctx.store, logger: silentLogger(), retentionDays: 90, rateWindowMs: 60_000 }).sweep();
    expect(removed.system).toBe(1);
    const left = (await ctx.store.systemAudit.list({ limit: 10_000 })).map((r) => r.id);
    expect(left).toContain(fresh.id);
    expect(left).not.toContain(old.id);
  });
});
