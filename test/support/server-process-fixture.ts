// A `guru server` child process on a fresh database for the current describe
// block, with admin API clients and a helper that proves the server still
// serves: a real `guru agent` process connects and runs a command.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { createApiClients, type ApiClients } from "../../lib/api-client.ts";
import { createTestDataDir, createTestDb, type TestDbKind } from "./databases.ts";
import { spawnGuru, type GuruProcess } from "./server-process.ts";

export interface ServerProcessFixture {
  readonly server: GuruProcess;
  readonly url: string;
  readonly api: ApiClients;
  readonly dataDir: string;
  /** Enrols an agent, starts `guru agent`, runs `echo` through a tunnel, stops the agent. */
  runThroughHealthyAgent(name: string): Promise<void>;
  /** The server's resident memory, from /proc. */
  rssBytes(): Promise<number>;
}

/** A database a server process opens itself: an on-disk PGlite data dir, or a fresh pg database (closed here). */
export async function serverProcessDatabase(kind: TestDbKind): Promise<{ dataDir: string; url?: string; cleanup(): Promise<void> }> {
  if (kind === "pglite") return createTestDataDir();
  const pg = await createTestDb(kind);
  await pg.db.close();
  return pg;
}

export function useServerProcess(kind: TestDbKind, env: Record<string, string> = {}): ServerProcessFixture {
  let testDb: { dataDir: string; url?: string; cleanup(): Promise<void> } | undefined;
  let server: GuruProcess | undefined;
  let url = "";
  let api: ApiClients | undefined;
  const processes: GuruProcess[] = [];

  beforeAll(async () => {
    testDb = await serverProcessDatabase(kind);
    server = spawnGuru(["server", "--port", "0", "--data-dir", testDb.dataDir], { DATABASE_URL: testDb.url, GURU_LOG_LEVEL: "info", ...env });
    processes.push(server);
    [, url] = await server.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
    api = createApiClients({ url, token: (await readFile(join(testDb.dataDir, "admin-token"), "utf8")).trim() });
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    await testDb?.cleanup();
  });

  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("useServerProcess: the server is ready only inside hooks and tests");
    return value;
  };

  return {
    get server() {
      return ready(server);
    },
    get url() {
      return url;
    },
    get api() {
      return ready(api);
    },
    get dataDir() {
      return ready(testDb).dataDir;
    },
    async runThroughHealthyAgent(name) {
      const clients = ready(api);
      const dataDir = ready(testDb).dataDir;
      const { agentId, agentKey } = await clients.admin.enrollAgent({ name });
      const agent = spawnGuru(["agent", "--server", url, "--state-dir", join(dataDir, name), "--allow", dataDir], {
        GURU_AGENT_KEY: agentKey,
        GURU_LOG_LEVEL: "info",
      });
      processes.push(agent);
      await agent.waitFor(/connected to the server/);
      const { sessionId } = await clients.sessions.openTunnel({ agentId });
      const ran = await clients.exec.runCommand({ sessionId, command: "echo still-serving" });
      expect([Buffer.from(ran.stdout).toString(), ran.result?.exitCode]).toEqual(["still-serving\n", 0]);
      await clients.sessions.closeTunnel({ sessionId });
      await agent.stop();
    },
    async rssBytes() {
      const status = await readFile(`/proc/${ready(server).child.pid}/status`, "utf8");
      const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
      if (kib === undefined) throw new Error("no VmRSS in /proc/<pid>/status");
      return Number(kib) * 1024;
    },
  };
}
