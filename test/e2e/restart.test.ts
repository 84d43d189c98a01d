// Across server processes: a crash leaves tunnels marked active in the
// database; the next server start closes them with a reason.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { createApiClients } from "../../lib/api-client.ts";
import { describeDatabases } from "../support/databases.ts";
import { openDb } from "../../server/store/db.ts";
import { freePort } from "../support/free-port.ts";
import { waitFor } from "../support/raw-agent.ts";
import { serverProcessDatabase } from "../support/server-process-fixture.ts";
import { spawnGuru, type GuruProcess } from "../support/server-process.ts";

describeDatabases("server restart", (kind) => {
  // A server process opens the database itself: an on-disk PGlite data dir, or a fresh pg database.
  let testDb: { dataDir: string; url?: string; cleanup(): Promise<void> };
  const processes: GuruProcess[] = [];
  beforeAll(async () => {
    testDb = await serverProcessDatabase(kind);
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    await testDb?.cleanup();
  });

  async function startServerProcess(port = 0) {
    const server = spawnGuru(["server", "--port", String(port), "--data-dir", testDb.dataDir], { DATABASE_URL: testDb.url, GURU_LOG_LEVEL: "info" });
    processes.push(server);
    const [, url] = await server.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
    return { server, url };
  }

  it("closes tunnels a crashed server left active, with a reason", async () => {
    const first = await startServerProcess();
    const token = (await readFile(join(testDb.dataDir, "admin-token"), "utf8")).trim();
    const api = createApiClients({ url: first.url, token });
    const { agentId, agentKey } = await api.admin.enrollAgent({ name: "survivor" });
    const agent = spawnGuru(["agent", "--server", first.url, "--state-dir", join(testDb.dataDir, "agent"), "--allow", testDb.dataDir], {
      GURU_AGENT_KEY: agentKey,
      GURU_LOG_LEVEL: "info",
    });
    processes.push(agent);
    await agent.waitFor(/connected to the server/);
    const { sessionId } = await api.sessions.openTunnel({ agentId });

    await first.server.stop("SIGKILL");
    const second = await startServerProcess();
    await second.server.waitFor(/closed tunnels left active by a previous server process/);
    const api2 = createApiClients({ url: second.url, token });
    const { session } = await api2.sessions.getTunnelStatus({ sessionId });
    expect(session?.status).toBe(SessionStatus.CLOSED);
    expect(session?.closeReason).toBe("server restarted");
    const { agents } = await api2.agents.listAgents({ nameContains: "survivor" });
    expect(agents[0].online).toBe(false);
    await second.server.stop();
    expect(second.server.child.exitCode).toBe(0);
  });

  it("after a SIGKILL mid-session: agents reconnect, the stale tunnel is closed with a reason, no audit row is lost, an upload resumes byte-identical", async () => {
    const port = await freePort();
    const first = await startServerProcess(port);
    const token = (await readFile(join(testDb.dataDir, "admin-token"), "utf8")).trim();
    const api = createApiClients({ url: first.url, token });
    const { agentId, agentKey } = await api.admin.enrollAgent({ name: "crash-survivor" });
    const work = join(testDb.dataDir, "work");
    await mkdir(work, { recursive: true });
    const agent = spawnGuru(["agent", "--server", first.url, "--state-dir", join(testDb.dataDir, "agent-2"), "--allow", work], {
      GURU_AGENT_KEY: agentKey,
      GURU_LOG_LEVEL: "info",
      GURU_BACKOFF_MAX_MS: "500",
    });
    processes.push(agent);
    await agent.waitFor(/connected to the server/);

    const { sessionId } = await api.sessions.openTunnel({ agentId });
    for (let i = 0; i < 3; i++) expect((await api.exec.runCommand({ sessionId, command: `echo ${i}` })).result?.exitCode).toBe(0);
    const content = randomBytes(3 * 1024 * 1024 + 123);
    const sha256 = createHash("sha256").update(content).digest("hex");
    const target = join(work, "resumed.bin");
    const { uploadId } = await api.files.startUpload({ sessionId, path: target, size: BigInt(content.length), sha256 });
    const firstPart = await api.files.uploadChunk({ uploadId, offset: 0n, data: content.subarray(0, 1024 * 1024) });
    expect(firstPart.receivedOffset).toBe(BigInt(1024 * 1024));
    // The write-behind completions of the commands' audit rows land first.
    await new Promise((r) => setTimeout(r, 500));

    await first.server.stop("SIGKILL");
    const second = await startServerProcess(port);
    await second.server.waitFor(/closed tunnels left active by a previous server process/);
    const api2 = createApiClients({ url: second.url, token });
    // The agent reconnects by itself to the new process.
    await waitFor(async () => (await api2.agents.listAgents({ nameContains: "crash-survivor" })).agents[0]?.online === true, 15_000, "the agent back online");
    // The server lists the agent online once its link is registered, just before the agent hears so and logs it.
    await waitFor(async () => (agent.output().match(/connected to the server/g)?.length ?? 0) >= 2, 5_000, "the agent's second connection logged");
    const stale = (await api2.sessions.getTunnelStatus({ sessionId })).session;
    expect([stale?.status, stale?.closeReason]).toEqual([SessionStatus.CLOSED, "server restarted"]);

    // The upload continues in a new tunnel from the agent's committed offset.
    const resumed = await api2.sessions.openTunnel({ agentId });
    const state = await api2.files.getUpload({ uploadId });
    expect(state.committedOffset).toBeLessThanOrEqual(BigInt(1024 * 1024));
    for (let offset = Number(state.committedOffset); offset < content.length; offset += 1024 * 1024) {
      await api2.files.uploadChunk({ uploadId, offset: BigInt(offset), data: content.subarray(offset, offset + 1024 * 1024) });
    }
    const finished = await api2.files.finishUpload({ uploadId });
    expect([finished.size, finished.sha256]).toEqual([BigInt(content.length), sha256]);
    expect(Buffer.compare(await readFile(target), content)).toBe(0);
    await api2.sessions.closeTunnel({ sessionId: resumed.sessionId });
    await agent.stop("SIGTERM");
    await second.server.stop();

    // Every audit row is there: three commands with their results, the tunnel's open and its close at restart, the upload.
    const db = await openDb({ dataDir: testDb.dataDir, databaseUrl: testDb.url });
    try {
      const commands = await db.query("SELECT command, outcome, exit_code FROM command_audit WHERE session_id = $1 ORDER BY id", [sessionId]);
      expect(commands.rows).toEqual([0, 1, 2].map((i) => ({ command: `echo ${i}`, outcome: "allowed", exit_code: 0 })));
      const tunnel = await db.query("SELECT event, outcome, reason FROM tunnel_audit WHERE session_id = $1 ORDER BY id", [sessionId]);
      expect(tunnel.rows.map((r) => [r.event, r.outcome])).toEqual([
        ["open", "ok"],
        ["close", "ok"],
      ]);
      expect(tunnel.rows[1].reason).toBe("server restarted");
      const files = await db.query("SELECT direction, outcome FROM file_audit WHERE agent_id = $1 AND path = $2", [agentId, target]);
      expect(files.rows).toContainEqual({ direction: "upload", outcome: "allowed" });
    } finally {
      await db.close();
    }
  });
});
