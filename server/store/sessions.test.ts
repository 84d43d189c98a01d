import { beforeAll, expect, it } from "vitest";
import { isGuruError } from "../../lib/errors.ts";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedAgent, seedTechnician } from "../../test/support/store-fixtures.ts";

const missing = "6f1c2b1e-2d3a-4c5b-8a9f-0123456789ab";

describeDatabases("sessions", (kind) => {
  const ctx = useTestStore(kind);
  let techId: string;
  beforeAll(async () => {
    techId = (await seedTechnician(ctx.store)).id;
  });

  const ageSession = (id: string, ms: number) =>
    ctx.testDb.db.query("UPDATE tunnel_sessions SET last_activity_at = now() - $2::float8 * interval '1 millisecond' WHERE id = $1", [id, ms]);

  it("opens an active session", async () => {
    const agent = await seedAgent(ctx.store);
    const s = await ctx.store.sessions.open({ agentId: agent.id, technicianId: techId });
    expect(s).toMatchObject({ agentId: agent.id, technicianId: techId, status: "active", closedAt: null, closeReason: null });
    expect(s.openedAt).toBeInstanceOf(Date);
    expect(await ctx.store.sessions.get(s.id)).toEqual(s);
    expect(await ctx.store.sessions.getActiveForAgent(agent.id)).toEqual(s);
  });

  it("lets exactly one of 50 racing opens win; the rest are conflicts naming the holder", async () => {
    const agent = await seedAgent(ctx.store);
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => ctx.store.sessions.open({ agentId: agent.id, technicianId: techId })));
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(49);
    const holder = won[0].value;
    for (const r of lost) {
      expect(isGuruError(r.reason, "conflict")).toBe(true);
      expect(r.reason.details.holderSessionId).toBe(holder.id);
      expect(r.reason.message).toContain(holder.id);
    }
    expect(await ctx.store.sessions.list({ agentId: agent.id })).toEqual([holder]);
  });

  it("refuses unknown agents and technicians as not_found", async () => {
    const agent = await seedAgent(ctx.store);
    await expect(ctx.store.sessions.open({ agentId: missing, technicianId: techId })).rejects.toMatchObject({ kind: "not_found" });
    await expect(ctx.store.sessions.open({ agentId: agent.id, technicianId: missing })).rejects.toMatchObject({ kind: "not_found" });
    await expect(ctx.store.sessions.open({ agentId: "garbage", technicianId: techId })).rejects.toMatchObject({ kind: "not_found" });
    expect(await ctx.store.sessions.list({ agentId: agent.id })).toEqual([]);
  });

  it("closes once: a second close returns undefined and the tunnel is free again", async () => {
    const agent = await seedAgent(ctx.store);
    const s = await ctx.store.sessions.open({ agentId: agent.id, technicianId: techId });
    const closed = await ctx.store.sessions.close(s.id, { status: "closed", reason: "technician closed it" });
    expect(closed).toMatchObject({ id: s.id, status: "closed", closeReason: "technician closed it" });
    expect(closed!.closedAt).toBeInstanceOf(Date);
    expect(await ctx.store.sessions.close(s.id, { status: "expired", reason: "again" })).toBeUndefined();
    expect((await ctx.store.sessions.get(s.id))!.closeReason).toBe("technician closed it");
    expect(await ctx.store.sessions.touch(s.id)).toBe(false);
    const next = await ctx.store.sessions.open({ agentId: agent.id, technicianId: techId });
    expect(next.id).not.toBe(s.id);
    expect(await ctx.store.sessions.close(missing, { status: "closed", reason: "x" })).toBeUndefined();
  });

  it("closes the active session of one agent only", async () => {
    const a = await seedAgent(ctx.store);
    const b = await seedAgent(ctx.store);
    const sa = await ctx.store.sessions.open({ agentId: a.id, technicianId: techId });
    const sb = await ctx.store.sessions.open({ agentId: b.id, technicianId: techId });
    const closed = await ctx.store.sessions.closeActiveForAgent(a.id, "agent disconnected");
    expect(closed.map((s) => [s.id, s.status, s.closeReason])).toEqual([[sa.id, "closed", "agent disconnected"]]);
    expect(await ctx.store.sessions.closeActiveForAgent(a.id, "again")).toEqual([]);
    expect((await ctx.store.sessions.get(sb.id))!.status).toBe("active");
  });

  it("expires idle sessions and keeps touched ones", async () => {
    const a = await seedAgent(ctx.store);
    const b = await seedAgent(ctx.store);
    const idle = await ctx.store.sessions.open({ agentId: a.id, technicianId: techId });
    const busy = await ctx.store.sessions.open({ agentId: b.id, technicianId: techId });
    await ageSession(idle.id, 120_000);
    await ageSession(busy.id, 120_000);
    expect(await ctx.store.sessions.touch(busy.id)).toBe(true);
    const expired = await ctx.store.sessions.expireIdle(60_000);
    expect(expired.map((s) => s.id)).toEqual([idle.id]);
    expect(expired[0]).toMatchObject({ status: "expired", closeReason: "idle" });
    expect((await ctx.store.sessions.get(busy.id))!.status).toBe("active");
    expect(await ctx.store.sessions.expireIdle(60_000)).toEqual([]);
  });

  it("lists newest first with filters, and closes everything at server start", async () => {
    const a = await seedAgent(ctx.store);
    const other = await seedTechnician(ctx.store);
    const s1 = await ctx.store.sessions.open({ agentId: a.id, technicianId: techId });
    await ctx.store.sessions.close(s1.id, { status: "closed", reason: "done" });
    const s2 = await ctx.store.sessions.open({ agentId: a.id, technicianId: other.id });
    expect((await ctx.store.sessions.list({ agentId: a.id })).map((s) => s.id)).toEqual([s2.id, s1.id]);
    expect((await ctx.store.sessions.list({ agentId: a.id, status: "closed" })).map((s) => s.id)).toEqual([s1.id]);
    expect((await ctx.store.sessions.list({ technicianId: other.id })).map((s) => s.id)).toEqual([s2.id]);
    expect(await ctx.store.sessions.list({ agentId: "garbage" })).toEqual([]);

    const closed = await ctx.store.sessions.closeAllActive("server restarted");
    expect(closed.map((s) => s.id)).toContain(s2.id);
    expect(closed.every((s) => s.status === "closed" && s.closeReason === "server restarted")).toBe(true);
    expect(await ctx.store.sessions.list({ status: "active" })).toEqual([]);
  });
  it("counts the commands in a tunnel opened for commands, and none in one the technician opened", async () => {
    const forCommands = await ctx.store.sessions.open({ agentId: (await seedAgent(ctx.store)).id, technicianId: techId, forCommands: true });
    expect(await ctx.store.sessions.joinCommands(forCommands.id)).toBe("joined");
    expect(await ctx.store.sessions.leaveCommands(forCommands.id)).toBe(1);
    expect(await ctx.store.sessions.leaveCommands(forCommands.id)).toBe(0);
    // At 0 it is being closed: nothing joins, and the count stays 0.
    expect(await ctx.store.sessions.joinCommands(forCommands.id)).toBe("ended");
    expect(await ctx.store.sessions.leaveCommands(forCommands.id)).toBeUndefined();
    expect((await ctx.store.sessions.get(forCommands.id))?.status).toBe("active");
    await ctx.store.sessions.close(forCommands.id, { status: "closed", reason: "done" });
    expect(await ctx.store.sessions.joinCommands(forCommands.id)).toBe("ended");

    const own = await ctx.store.sessions.open({ agentId: (await seedAgent(ctx.store)).id, technicianId: techId });
    expect(await ctx.store.sessions.joinCommands(own.id)).toBe("not_for_commands");
    expect(await ctx.store.sessions.leaveCommands(own.id)).toBeUndefined();
    expect(await ctx.store.sessions.joinCommands("not-an-id")).toBe("ended");
    expect(await ctx.store.sessions.joinCommands("6f1c2b1e-2d3a-4c5b-8a9f-0123456789ab")).toBe("ended");
  });
  it("holds the agent with a pending attended tunnel, records the answer, and activates or closes only what is pending", async () => {
    const agentId = (await seedAgent(ctx.store)).id;
    const pending = await ctx.store.sessions.open({ agentId, technicianId: techId, attended: { capabilities: ["exec"] } });
    expect(pending.status).toBe("pending");
    await expect(ctx.store.sessions.open({ agentId, technicianId: techId })).rejects.toMatchObject({ kind: "conflict" });
    const receipt = { technician: "t", partner: "", capabilities: ["exec"], approved: true, responder: "r", reason: "", askedAt: "a", answeredAt: "b" };
    expect(await ctx.store.sessions.recordConsent(pending.id, "approved", receipt)).toBe(true);
    expect((await ctx.store.sessions.activate(pending.id))?.status).toBe("active");
    expect(await ctx.store.sessions.activate(pending.id)).toBeUndefined();
    expect(await ctx.store.sessions.recordConsent(pending.id, "denied", receipt)).toBe(false);
    expect(await ctx.store.sessions.closePending(pending.id, "no")).toBe(false);
    await ctx.store.sessions.close(pending.id, { status: "closed", reason: "done" });

    const denied = await ctx.store.sessions.open({ agentId, technicianId: techId, attended: { capabilities: ["exec", "files"] } });
    expect(await ctx.store.sessions.closePending(denied.id, "consent denied")).toBe(true);
    expect(await ctx.store.sessions.get(denied.id)).toMatchObject({ status: "closed", closeReason: "consent denied" });
    expect(await ctx.store.sessions.activate(denied.id)).toBeUndefined();
  });
});
