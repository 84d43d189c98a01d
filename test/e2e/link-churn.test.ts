// Two processes with one agent key: each connection replaces the other. The
// server raises a link churn alert (warn log, audit row, metric); an agent
// whose link is replaced waits a long, jittered pause instead of fighting.
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { rawUpgrade, waitFor, type RawAgent } from "../support/raw-agent.ts";

describeDatabases("link churn", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { linkChurnThreshold: 3, linkChurnWindowMs: 60_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const churnAlerts = async (agentId: string) =>
    (await t.server.store.audit.listTunnel({ agentId })).filter((r) => r.event === "alert" && (r.detail as { kind?: string } | null)?.kind === "link_churn");

  it('two agents fighting over one key (short replaced pause) raise one link_churn alert: audit row and guru_security_alerts_total{kind="link_churn"}', async () => {
    const { agentId, agentKey } = await t.enrollAgent("cloned");
    const env = { GURU_REPLACED_BACKOFF_MS: "100" };
    const first = await t.spawnAgent({ agentId, agentKey, env });
    await first.waitOnline();
    const second = await t.spawnAgent({ agentId, agentKey, env });
    await waitFor(async () => (await churnAlerts(agentId)).length > 0, 20_000, "a link churn alert");
    const [alert] = await churnAlerts(agentId);
    expect(alert).toMatchObject({
      outcome: "raised",
      agentId,
      reason: expect.stringMatching(/replaced 3 times within 60 s: two processes may be using the same agent key/),
    });
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/^guru_security_alerts_total\{kind="link_churn"\} 1$/m);
    // Once per window, however long they keep fighting.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await churnAlerts(agentId)).toHaveLength(1);
    // Both agents back off on every replacement: their logs say so.
    for (const agent of [first, second]) expect(agent.output()).toMatch(/another process connected with this agent's key/);
    await Promise.all([first.stop(), second.stop()]);
    await waitFor(() => !t.server.router.isOnline(agentId), 5000, "agent offline");
  });

  it("an agent whose link is replaced waits at least GURU_REPLACED_BACKOFF_MS (default 60 s) instead of taking it back; no alert for one replacement", async () => {
    const { agentId, agentKey } = await t.enrollAgent("replaced-once");
    const real = await t.spawnAgent({ agentId, agentKey });
    await real.waitOnline();
    const raw = (await rawUpgrade(t.url, { key: agentKey })) as RawAgent;
    raw.sendHello();
    await waitFor(() => raw.frames.some((f) => f.kind.case === "helloAck"), 5000, "HelloAck");
    await waitFor(() => /another process connected with this agent's key/.test(real.output()), 5000, "the agent's backoff line");
    const delayMs = Number(/"delayMs":(\d+)[^\n]*another process connected/.exec(real.output())?.[1]);
    expect(delayMs).toBeGreaterThanOrEqual(60_000);
    expect(delayMs).toBeLessThan(120_000);
    // Three seconds on, the raw link still holds the agent: the real one did not dial back.
    await new Promise((r) => setTimeout(r, 3000));
    expect(raw.ws.readyState).toBe(raw.ws.OPEN);
    expect(t.server.router.isOnline(agentId)).toBe(true);
    expect(await churnAlerts(agentId)).toHaveLength(0);
    raw.ws.close(closeCodes.normal);
    await real.stop();
  });
});
