// Commands that name their agent instead of a tunnel (RunCommand and
// StreamCommand with agent_id): they run in the caller's active tunnel, or in
// one opened for them and closed when they end, with the tunnel's checks,
// refusals and audit rows; concurrent ones share a tunnel the last one closes.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ExitReason } from "../../gen/guru/api/v1/exec_pb.js";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
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
});
