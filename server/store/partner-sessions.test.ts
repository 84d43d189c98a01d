// The partner tables and the constraints migration 0007 adds: pending
// sessions hold their agent like active ones, only partner sessions may be
// pending, viewer tokens redeem once, partner audit is swept.
import { randomBytes } from "node:crypto";
import { beforeAll, expect, it } from "vitest";
import { isGuruError } from "../../lib/errors.ts";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedAgent, seedTechnician, uniqueName } from "../../test/support/store-fixtures.ts";
import { sqlState } from "./db.ts";

describeDatabases("partner store", (kind) => {
  const ctx = useTestStore(kind);
  let keyId: string;
  let techId: string;
  beforeAll(async () => {
    keyId = (await ctx.store.integrationKeys.create({ name: uniqueName("key"), keyHash: randomBytes(8).toString("hex"), allowedOrigins: [], createdBy: "" }))
      .id;
    techId = (await ctx.store.partnerAgents.ownedTechnician(keyId, uniqueName("alice"))).id;
  });

  const provision = () =>
    ctx.store.partnerAgents.provision({ keyId, externalId: uniqueName("dev"), name: uniqueName("agent"), keyHash: randomBytes(8).toString("hex") });
  const pending = (agentId: string) =>
    ctx.store.partnerSessions.create({ agentId, technicianId: techId, keyId, mode: "attended", capabilities: ["exec"], consentState: "waiting" });

  it("keeps one live session per agent, pending included, against technicians and partners alike", async () => {
    const agent = await provision();
    const s = await pending(agent.id);
    expect(s).toMatchObject({ status: "pending", mode: "attended", consentState: "waiting", externalId: agent.externalId, closedAt: null });
    const tech = await seedTechnician(ctx.store);
    const err = await ctx.store.sessions.open({ agentId: agent.id, technicianId: tech.id }).catch((e: unknown) => e);
    expect(isGuruError(err, "conflict")).toBe(true);
    expect((err as Error).message).toContain(s.id);
    const again = await pending(agent.id).catch((e: unknown) => e);
    expect(isGuruError(again, "conflict")).toBe(true);
    expect((await ctx.store.partnerSessions.list({ keyId, agentId: agent.id })).map((x) => x.id)).toEqual([s.id]);
    // Pending sessions outlive what closes active ones at a restart or a disconnect.
    expect(await ctx.store.sessions.closeAllActive("server restarted")).toEqual([]);
    expect(await ctx.store.sessions.closeActiveForAgent(agent.id, "gone")).toEqual([]);
    expect((await ctx.store.partnerSessions.activate(s.id))?.status).toBe("active");
    expect(await ctx.store.partnerSessions.activate(s.id)).toBeUndefined();
  });

  it("refuses in the database what must not be: a pending technician session that is not attended, a receipt without attended mode, an unknown consent mode", async () => {
    const agent = await seedAgent(ctx.store);
    const tech = await seedTechnician(ctx.store);
    const noKey = await ctx.testDb.db
      .query("INSERT INTO tunnel_sessions (agent_id, technician_id, status) VALUES ($1, $2, 'pending')", [agent.id, tech.id])
      .catch((e: unknown) => e);
    expect(sqlState(noKey)).toBe("23514");
    const receipt = await ctx.testDb.db
      .query("INSERT INTO tunnel_sessions (agent_id, technician_id, mode, consent_receipt) VALUES ($1, $2, 'unattended', '{}')", [agent.id, tech.id])
      .catch((e: unknown) => e);
    expect(sqlState(receipt)).toBe("23514");
    const mode = await ctx.testDb.db.query("UPDATE agents SET consent_mode = 'maybe' WHERE id = $1", [agent.id]).catch((e: unknown) => e);
    expect(sqlState(mode)).toBe("23514");
    expect(await ctx.store.sessions.list({ agentId: agent.id })).toEqual([]);
  });

  it("refuses a technician name another key or the server owns", async () => {
    const other = await ctx.store.integrationKeys.create({
      name: uniqueName("other"),
      keyHash: randomBytes(8).toString("hex"),
      allowedOrigins: [],
      createdBy: "",
    });
    const name = uniqueName("bob");
    await ctx.store.partnerAgents.ownedTechnician(other.id, name);
    const err = await ctx.store.partnerAgents.ownedTechnician(keyId, name).catch((e: unknown) => e);
    expect(isGuruError(err, "denied")).toBe(true);
    const serverTech = await seedTechnician(ctx.store);
    expect(isGuruError(await ctx.store.partnerAgents.ownedTechnician(keyId, serverTech.name).catch((e: unknown) => e), "denied")).toBe(true);
  });

  it("redeems a viewer token once; a revoked or expired one never", async () => {
    const s = await pending((await provision()).id);
    const record = (jti: string, ms: number) =>
      ctx.store.viewerTokens.record({ jti, sessionId: s.id, keyId, origin: "https://a.example.com", expiresAt: new Date(Date.now() + ms) });
    await record("once", 60_000);
    const racing = await Promise.all(Array.from({ length: 10 }, () => ctx.store.viewerTokens.redeem("once")));
    expect(racing.filter((r) => r !== undefined)).toHaveLength(1);
    await record("revoked", 60_000);
    expect(await ctx.store.viewerTokens.revokeForSessions([s.id])).toBe(1);
    expect(await ctx.store.viewerTokens.redeem("revoked")).toBeUndefined();
    await record("expired", -1);
    expect(await ctx.store.viewerTokens.redeem("expired")).toBeUndefined();
    expect((await ctx.store.viewerTokens.get("expired"))?.redeemedAt).toBeNull();
  });

  it("sweeps partner audit rows past retention only", async () => {
    await ctx.store.integrationKeys.audit({ keyId, method: "GetSession", outcome: "ok" });
    await ctx.testDb.db.query("INSERT INTO integration_audit (integration_key_id, method, outcome, at) VALUES ($1, 'Old', 'ok', now() - interval '100 days')", [
      keyId,
    ]);
    expect(await ctx.store.integrationKeys.sweepAudit(90 * 86_400_000)).toBe(1);
    expect((await ctx.store.integrationKeys.listAudit({ keyId })).map((r) => r.method)).toContain("GetSession");
  });
});
