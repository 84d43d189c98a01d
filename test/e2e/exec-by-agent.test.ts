// Commands that name their agent instead of a tunnel (RunCommand and
// StreamCommand with agent_id): they run in the caller's active tunnel, or in
// one opened for them and closed when they end, with the tunnel's checks,
// refusals and audit rows; concurrent ones share a tunnel the last one closes.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ExitReason } from "../../gen/guru/api/v1/exec_pb.js";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { silentLogger } from "../../lib/logging.ts";
import { createCommandTunnels } from "../../server/domain/command-tunnels.ts";
import { describeDatabases } from "../support/databases.ts";
import { collectStream, errorOf, techAndAgent } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { waitFor } from "../support/raw-agent.ts";

describeDatabases("commands by agent", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  const tunnelEvents = async (agentId: string) =>
    (
      await t.server.store.db.query<{ session_id: string; event: string; outcome: string }>(
        "SELECT session_id, event, outcome FROM tunnel_audit WHERE agent_id = $1 ORDER BY id",
        [agentId],
      )
    ).rows;

  const activeSessions = async (agentId: string) => (await t.server.store.sessions.list({ agentId, status: "active" })).length;

  it("opens a tunnel for the command, answers in it, and closes it before answering (both audited)", async () => {
    const { agent, tech } = await techAndAgent(t, "oneoff");
    const res = await tech.api.exec.runCommand({ agentId: agent.agentId, command: "echo hi; exit 3" });
    expect(Buffer.from(res.stdout).toString()).toBe("hi\n");
    expect(res.result).toMatchObject({ exitCode: 3, reason: ExitReason.EXITED });
    const sessionId = res.result?.sessionId ?? "";
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await activeSessions(agent.agentId)).toBe(0);
    expect((await t.server.store.sessions.get(sessionId))?.status).toBe("closed");
    expect(await tunnelEvents(agent.agentId)).toEqual([
      { session_id: sessionId, event: "open", outcome: "ok" },
      { session_id: sessionId, event: "close", outcome: "ok" },
    ]);
    await t.server.commands.drain();
    const [row] = await t.server.store.audit.listCommands({ sessionId });
    expect(row).toMatchObject({ agentId: agent.agentId, sessionId, technicianId: tech.technicianId, command: "echo hi; exit 3", exitCode: 3 });

    // Streamed the same way, and closed after a canceled command too.
    const streamed = await collectStream(tech.api.exec.streamCommand({ agentId: agent.agentId, command: "echo streamed" }));
    expect(streamed.stdout).toBe("streamed\n");
    expect(streamed.result?.sessionId).not.toBe(sessionId);
    const abort = new AbortController();
    const canceled = collectStream(tech.api.exec.streamCommand({ agentId: agent.agentId, command: "echo started; sleep 30" }, { signal: abort.signal }), () =>
      abort.abort(),
    );
    await canceled.catch(() => undefined);
    await waitFor(async () => (await activeSessions(agent.agentId)) === 0, 10_000);
  });

  it("runs in the caller's own active tunnel and leaves it open", async () => {
    const { agent, tech } = await techAndAgent(t, "kept");
    const { sessionId } = await tech.api.sessions.openTunnel({ agentId: agent.agentId });
    const res = await tech.api.exec.runCommand({ agentId: agent.agentId, command: "true" });
    expect(res.result?.sessionId).toBe(sessionId);
    expect((await tech.api.sessions.getTunnelStatus({ sessionId })).session?.status).toBe(SessionStatus.ACTIVE);
    expect((await tunnelEvents(agent.agentId)).map((e) => e.event)).toEqual(["open"]);
  });

  it("shares one tunnel between concurrent commands of the caller; the last one closes it", async () => {
    const { agent, tech } = await techAndAgent(t, "shared");
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, i) => tech.api.exec.runCommand({ agentId: agent.agentId, command: `sleep 0.${i % 3}; echo ${i}` })),
    );
    expect(runs.map((r) => Buffer.from(r.stdout).toString())).toEqual(["0\n", "1\n", "2\n", "3\n", "4\n", "5\n"]);
    expect(runs.every((r) => r.result?.exitCode === 0)).toBe(true);
    expect(await activeSessions(agent.agentId)).toBe(0);
    const events = await tunnelEvents(agent.agentId);
    // Every tunnel opened was closed, and none while a command still ran in it (all exited 0).
    const opened = events.filter((e) => e.event === "open" && e.outcome === "ok").map((e) => e.session_id);
    expect(opened.length).toBeGreaterThanOrEqual(1);
    expect(events.filter((e) => e.event === "close").map((e) => e.session_id)).toEqual(opened);
  });

  it("refuses what OpenTunnel refuses, and both or a malformed target, with audited refusals and no tunnel left", async () => {
    const { agent, tech } = await techAndAgent(t, "refused");
    const other = await t.createTech(`tech-holder-${process.pid}`);
    const { sessionId: held } = await other.api.sessions.openTunnel({ agentId: agent.agentId });

    const busy = await errorOf(tech.api.exec.runCommand({ agentId: agent.agentId, command: "true" }));
    expect(busy.code).toBe(Code.AlreadyExists);
    expect(busy.reason).toBe("TUNNEL_ACTIVE");
    const both = await errorOf(tech.api.exec.runCommand({ agentId: agent.agentId, sessionId: held, command: "true" }));
    expect(both.code).toBe(Code.InvalidArgument);
    expect(both.message).toMatch(/not both/);
    const unknown = await errorOf(tech.api.exec.runCommand({ agentId: "00000000-0000-4000-8000-000000000000", command: "true" }));
    expect(unknown.code).toBe(Code.NotFound);
    const malformed = await errorOf(tech.api.exec.runCommand({ agentId: "not-an-id", command: "true" }));
    expect(malformed.code).toBe(Code.InvalidArgument);

    // The holder's tunnel is untouched, and nothing else was opened.
    expect((await other.api.sessions.getTunnelStatus({ sessionId: held })).session?.status).toBe(SessionStatus.ACTIVE);
    expect(await activeSessions(agent.agentId)).toBe(1);
    const refusals = (await t.server.store.audit.listCommands({ technicianId: tech.technicianId })).map((r) => [r.outcome, r.command]);
    expect(refusals).toEqual([
      ["refused", "true"],
      ["refused", "true"],
      ["refused", "true"],
      ["refused", "true"],
    ]);
  });
  it("shares a tunnel opened for commands between servers on one database: whichever ends the last command closes it", async () => {
    const { agent, tech } = await techAndAgent(t, "two-nodes");
    const principal = await t.server.tokens.verify(tech.token);
    // Two servers of a cluster: each its own tunnel bookkeeping, one database.
    const [nodeA, nodeB] = [0, 1].map(() => createCommandTunnels(t.server.sessions, t.server.store.sessions, silentLogger()));

    const first = await nodeA.acquire(principal, agent.agentId); // opens it
    const second = await nodeB.acquire(principal, agent.agentId); // joins it
    expect(second.sessionId).toBe(first.sessionId);
    await first.release(); // node A's command ends first: the tunnel stays for node B's
    expect((await t.server.store.sessions.get(first.sessionId))?.status).toBe("active");
    await first.release(); // twice changes nothing
    expect((await t.server.store.sessions.get(first.sessionId))?.status).toBe("active");
    await second.release();
    expect((await t.server.store.sessions.get(first.sessionId))?.status).toBe("closed");

    // Many at once across both: one tunnel, closed by the last.
    const all = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? nodeA : nodeB).acquire(principal, agent.agentId)));
    expect(new Set(all.map((c) => c.sessionId)).size).toBe(1);
    for (const c of all.slice(0, -1)) await c.release();
    expect(await activeSessions(agent.agentId)).toBe(1);
    await all.at(-1)?.release();
    expect(await activeSessions(agent.agentId)).toBe(0);

    // A server that died after its last command ended but before closing the
    // tunnel (count 0, still active): the next command closes it and opens anew.
    const orphan = await nodeA.acquire(principal, agent.agentId);
    expect(await t.server.store.sessions.leaveCommands(orphan.sessionId)).toBe(0);
    const next = await nodeB.acquire(principal, agent.agentId);
    expect(next.sessionId).not.toBe(orphan.sessionId);
    expect((await t.server.store.sessions.get(orphan.sessionId))?.status).toBe("closed");
    await next.release();
    expect(await activeSessions(agent.agentId)).toBe(0);

    // A tunnel the technician opened is used and never closed by commands.
    const { sessionId } = await tech.api.sessions.openTunnel({ agentId: agent.agentId });
    const inOwn = await nodeB.acquire(principal, agent.agentId);
    expect(inOwn.sessionId).toBe(sessionId);
    await inOwn.release();
    expect((await t.server.store.sessions.get(sessionId))?.status).toBe("active");
    await tech.api.sessions.closeTunnel({ sessionId });
  });
});
