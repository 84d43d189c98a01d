// PostgreSQL stopped and started again under load, with real processes: a
// server of its own on a private PostgreSQL (never the shared one), a real
// agent process, calls running all along. While the database is down /readyz
// fails, calls answer Unavailable promptly instead of hanging, and the agent's
// link stays up (heartbeats need no database); once it is back everything
// works again, and nothing ran without its audit row.
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiClients, type ApiClients } from "../../lib/api-client.ts";
import { privatePostgresUnavailable, startPrivatePostgres, type PrivatePostgres } from "../support/private-postgres.ts";
import { waitFor } from "../support/raw-agent.ts";
import { spawnGuru, type GuruProcess } from "../support/server-process.ts";

const unavailable = privatePostgresUnavailable();

describe.skipIf(unavailable !== undefined)(`database outage${unavailable ? ` (skipped: ${unavailable})` : ""}`, () => {
  let db: PrivatePostgres;
  let dir: string;
  let server: GuruProcess;
  let agent: GuruProcess;
  let url: string;
  let api: ApiClients;
  let agentId: string;

  beforeAll(async () => {
    db = await startPrivatePostgres();
    dir = await mkdtemp(join(tmpdir(), "guru-outage-"));
    server = spawnGuru(["server", "--port", "0", "--data-dir", dir], {
      DATABASE_URL: db.url,
      GURU_LOG_LEVEL: "info",
      // Several heartbeats and deadlines pass during the outage.
      GURU_HEARTBEAT_INTERVAL_MS: "200",
      GURU_HEARTBEAT_DEADLINE_MS: "1500",
    });
    [, url] = (await server.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/)) as unknown as [string, string];
    api = createApiClients({ url, token: (await readFile(join(dir, "admin-token"), "utf8")).trim() });
    const enrolled = await api.admin.enrollAgent({ name: "outage-1" });
    agentId = enrolled.agentId;
    agent = spawnGuru(["agent", "--server", url, "--state-dir", join(dir, "agent"), "--allow", dir], {
      GURU_AGENT_KEY: enrolled.agentKey,
      GURU_LOG_LEVEL: "info",
      GURU_BACKOFF_MAX_MS: "500",
    });
    await agent.waitFor(/connected to the server/);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop("SIGKILL");
    await server?.stop("SIGKILL");
    await db?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("fails /readyz and answers Unavailable while the database is down, keeps agent links, and recovers with nothing half-written", async () => {
    const { sessionId } = await api.sessions.openTunnel({ agentId });
    const outcomes: { ok: boolean; code?: Code; ms: number; during: boolean }[] = [];
    let commandsOk = 0;
    let down = false;
    let loadRunning = true;
    // Calls all along: commands on the tunnel and agent listings, four at a time.
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, worker) => {
        while (loadRunning) {
          const during = down;
          const started = performance.now();
          try {
            if (worker % 2 === 0) {
              const res = await api.exec.runCommand({ sessionId, command: "echo up" });
              expect(res.result?.exitCode).toBe(0);
              commandsOk++;
            } else await api.agents.listAgents({});
            outcomes.push({ ok: true, ms: performance.now() - started, during });
          } catch (err) {
            outcomes.push({ ok: false, code: ConnectError.from(err).code, ms: performance.now() - started, during });
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }),
    );
    await waitFor(() => commandsOk >= 3, 10_000, "commands before the outage");

    await db.stop();
    down = true;
    const readyz = async () => (await fetch(`${url}/readyz`)).status;
    await waitFor(async () => (await readyz()) === 503, 3_000, "/readyz to fail");
    // Calls that need the database answer Unavailable, quickly.
    for (const call of [
      () => api.agents.listAgents({}),
      () => api.sessions.openTunnel({ agentId }),
      () => api.exec.runCommand({ sessionId, command: "echo down" }),
    ]) {
      const started = performance.now();
      const err = await call().then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code, err?.message).toBe(Code.Unavailable);
      expect(err?.rawMessage).toContain("database is unavailable");
      expect(performance.now() - started).toBeLessThan(6_000);
    }
    // Outlast several heartbeat deadlines with the database gone.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await readyz()).toBe(503);

    await db.start();
    down = false;
    await waitFor(async () => (await readyz()) === 200, 15_000, "/readyz to recover");
    const okBefore = commandsOk;
    await waitFor(() => commandsOk >= okBefore + 3, 15_000, "commands after the outage");
    loadRunning = false;
    await load;

    // The link never dropped: the agent's first connection is its only one.
    expect(agent.output()).not.toMatch(/link to the server closed/);
    expect(agent.output().match(/connected to the server/g)).toHaveLength(1);
    const { agents } = await api.agents.listAgents({ nameContains: "outage-1" });
    expect(agents[0].online).toBe(true);
    // Every call during the outage failed as Unavailable (none hung, none was Internal); the rest succeeded.
    const failures = outcomes.filter((o) => !o.ok);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(f.code).toBe(Code.Unavailable);
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(8_000);

    // Nothing half-written: one active tunnel (ours), and every command that ran has its audit row.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const active = await client.query("SELECT id FROM tunnel_sessions WHERE agent_id = $1 AND status = 'active'", [agentId]);
      expect(active.rows.map((r) => r.id)).toEqual([sessionId]);
      // A result whose write met the outage is written once the database is back (retried write-behind).
      const audited = async () =>
        (
          await client.query(
            "SELECT count(*)::int AS n FROM command_audit WHERE session_id = $1 AND command = 'echo up' AND outcome = 'allowed' AND exit_code = 0",
            [sessionId],
          )
        ).rows[0].n;
      await waitFor(async () => (await audited()) === commandsOk, 5_000, "every command's audit row").catch(() => undefined);
      expect(await audited()).toBe(commandsOk);
      const unfinished = await client.query(
        "SELECT count(*)::int AS n FROM command_audit WHERE session_id = $1 AND outcome = 'allowed' AND exit_code IS NULL",
        [sessionId],
      );
      expect(unfinished.rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
    await api.sessions.closeTunnel({ sessionId });
  });
});
