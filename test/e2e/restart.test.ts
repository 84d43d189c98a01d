// Across server processes: a crash leaves tunnels marked active in the
// database; the next server start closes them with a reason.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { createApiClients } from "../../lib/api-client.ts";
import { describeDatabases } from "../support/databases.ts";
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

  async function startServerProcess() {
    const server = spawnGuru(["server", "--port", "0", "--data-dir", testDb.dataDir], { DATABASE_URL: testDb.url, GURU_LOG_LEVEL: "info" });
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
});
