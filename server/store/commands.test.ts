import { expect, it } from "vitest";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedAgent, seedTechnician } from "../../test/support/store-fixtures.ts";

describeDatabases("beginning a command", (kind) => {
  const ctx = useTestStore(kind);
  const rateLimit = { limit: 2, windowMs: 60_000 };
  const command = (sessionId: string, technicianId: string) => ({
    sessionId,
    technicianId,
    rateLimit,
    shell: "sh",
    workingDir: "/tmp",
    command: "true",
    env: null,
    touchAfterMs: 1000,
  });

  async function activeSession() {
    const tech = await seedTechnician(ctx.store);
    const agent = await seedAgent(ctx.store);
    const session = await ctx.store.sessions.open({ agentId: agent.id, technicianId: tech.id });
    return { tech, agent, session };
  }

  it("checks the session, takes the rate-limit hit and writes the audit row in one call", async () => {
    const { tech, agent, session } = await activeSession();
    await ctx.testDb.db.query("UPDATE tunnel_sessions SET last_activity_at = now() - interval '1 hour' WHERE id = $1", [session.id]);
    const began = await ctx.store.commands.begin(command(session.id, tech.id));
    expect(began).toMatchObject({ status: "started", agentId: agent.id });
    const rows = await ctx.store.audit.listCommands({ sessionId: session.id });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ technicianId: tech.id, agentId: agent.id, shell: "sh", workingDir: "/tmp", command: "true", outcome: "allowed" });
    expect(began.status === "started" && rows[0].id).toBe(began.status === "started" && began.auditId);
    expect(rows[0].env).toBeNull();
    const touched = await ctx.store.sessions.get(session.id);
    expect(Date.now() - touched!.lastActivityAt.getTime()).toBeLessThan(60_000);
  });

  it("moves the session's last activity only when it is older than touchAfterMs", async () => {
    const { tech, session } = await activeSession();
    const setActivity = (sql: string) => ctx.testDb.db.query(`UPDATE tunnel_sessions SET last_activity_at = ${sql} WHERE id = $1`, [session.id]);
    const lastActivity = async () => (await ctx.store.sessions.get(session.id))!.lastActivityAt.getTime();
    await setActivity("now() - interval '200 milliseconds'");
    const recent = await lastActivity();
    await ctx.store.commands.begin(command(session.id, tech.id));
    expect(await lastActivity()).toBe(recent);
    await setActivity("now() - interval '2 seconds'");
    const stale = await lastActivity();
    await ctx.store.commands.begin(command(session.id, tech.id));
    expect(await lastActivity()).toBeGreaterThan(stale + 1500);
  });

  it("starts commands racing on a stale session without them waiting on each other", async () => {
    const { tech, session } = await activeSession();
    await ctx.testDb.db.query("UPDATE tunnel_sessions SET last_activity_at = now() - interval '1 minute' WHERE id = $1", [session.id]);
    const many = { ...command(session.id, tech.id), rateLimit: { limit: 100, windowMs: 60_000 } };
    const began = await Promise.all(Array.from({ length: 20 }, () => ctx.store.commands.begin(many)));
    expect(began.filter((b) => b.status === "started")).toHaveLength(20);
    expect(Date.now() - (await ctx.store.sessions.get(session.id))!.lastActivityAt.getTime()).toBeLessThan(60_000);
  });

  it("writes the command's env into its audit row as given", async () => {
    const { tech, session } = await activeSession();
    const env = { APP_MODE: "blue", API_TOKEN: "[redacted]" };
    await ctx.store.commands.begin({ ...command(session.id, tech.id), env });
    const [row] = await ctx.store.audit.listCommands({ sessionId: session.id });
    expect(row.env).toEqual(env);
    const refused = await ctx.store.audit.command({ command: "x", outcome: "refused", sessionId: session.id, env: { LD_PRELOAD: "/tmp/x.so" } });
    expect(refused.env).toEqual({ LD_PRELOAD: "/tmp/x.so" });
  });

  it("refuses past the limit with the wait, writing no row and keeping the session", async () => {
    const { tech, agent, session } = await activeSession();
    await ctx.store.commands.begin(command(session.id, tech.id));
    await ctx.store.commands.begin(command(session.id, tech.id));
    const refused = await ctx.store.commands.begin(command(session.id, tech.id));
    expect(refused).toMatchObject({ status: "rate_limited", agentId: agent.id });
    expect(refused.status === "rate_limited" && refused.retryAfterMs).toBeGreaterThan(50_000);
    expect(await ctx.store.audit.listCommands({ sessionId: session.id })).toHaveLength(2);
    expect((await ctx.store.sessions.get(session.id))?.status).toBe("active");
  });

  it("says no_session for another technician's, a closed or an unknown session, and changes nothing", async () => {
    const { tech, session } = await activeSession();
    const other = await seedTechnician(ctx.store);
    const before = await ctx.store.sessions.get(session.id);
    expect(await ctx.store.commands.begin(command(session.id, other.id))).toEqual({ status: "no_session" });
    expect(await ctx.store.sessions.get(session.id)).toEqual(before);
    expect(await ctx.store.commands.begin(command("6f1c2b1e-2d3a-4c5b-8a9f-0123456789ab", tech.id))).toEqual({ status: "no_session" });
    await ctx.store.sessions.close(session.id, { status: "closed", reason: "done" });
    expect(await ctx.store.commands.begin(command(session.id, tech.id))).toEqual({ status: "no_session" });
    expect(await ctx.store.audit.listCommands({ sessionId: session.id })).toHaveLength(0);
    const events = await ctx.testDb.db.query("SELECT count(*)::int AS n FROM rate_limit_events WHERE key LIKE $1", [`exec:${other.id}:%`]);
    expect(events.rows[0]).toEqual({ n: 0 });
  });
});
