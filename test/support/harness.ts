// e2e harness: a real server (real listener on 127.0.0.1:0, real database),
// real agent processes (`guru agent` as children), real Connect clients.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createApiClients, type ApiClients } from "../../lib/api-client.ts";
import { silentLogger, createLogger } from "../../lib/logging.ts";
import type { WireLimits } from "../../lib/wire/limits.ts";
import { loadServerConfig, type ServerConfig } from "../../server/config.ts";
import { startServer, type GuruServer } from "../../server/server.ts";
import type { Db } from "../../server/store/db.ts";
import { createTestDb, type TestDbKind } from "./databases.ts";

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

export interface AgentProcess {
  child: ChildProcess;
  agentId: string;
  /** Everything the agent wrote to stderr/stdout, for failure messages. */
  output(): string;
  waitOnline(timeoutMs?: number): Promise<void>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
}

export interface TestServer {
  server: GuruServer;
  url: string;
  kind: TestDbKind;
  /** Clients with the bootstrap admin's token. */
  admin: ApiClients;
  adminToken: string;
  /** A technician (role tech) and clients with their token. */
  createTech(name: string, role?: "admin" | "tech"): Promise<{ technicianId: string; token: string; api: ApiClients }>;
  enrollAgent(name: string): Promise<{ agentId: string; agentKey: string }>;
  spawnAgent(options: { agentId: string; agentKey: string; allow?: string[]; env?: Record<string, string>; stateDir?: string }): Promise<AgentProcess>;
  /** Enrols and starts an agent, waits until it is online. */
  startAgent(name: string, options?: { allow?: string[]; env?: Record<string, string> }): Promise<AgentProcess>;
  /** Stops agents and the server, keeps the database (for restart tests). */
  stopServer(): Promise<void>;
  /** A new server on the same database. */
  restart(): Promise<void>;
  close(): Promise<void>;
  dataDir: string;
  tempDir: string;
}

/** The same Db, calling onQuery with every statement the server sends (transactions' statements included). */
function observedDb(db: Db, onQuery: (sql: string) => void): Db {
  return {
    kind: db.kind,
    query(sql, params) {
      onQuery(sql);
      return db.query(sql, params);
    },
    exec(sql) {
      onQuery(sql);
      return db.exec(sql);
    },
    transaction: (fn) => db.transaction((tx) => fn(observedDb(tx, onQuery))),
    close: () => db.close(),
  };
}

export async function startTestServer(options: {
  kind: TestDbKind;
  config?: Partial<ServerConfig>;
  wireLimits?: Partial<WireLimits>;
  /** Sees every SQL statement the server runs (to prove a path does not touch the database). */
  onQuery?: (sql: string) => void;
}): Promise<TestServer> {
  const created = await createTestDb(options.kind);
  const testDb = options.onQuery ? { ...created, db: observedDb(created.db, options.onQuery) } : created;
  const tempDir = await mkdtemp(join(tmpdir(), "guru-e2e-"));
  const logger = process.env.GURU_TEST_LOGS ? createLogger({ level: "debug" }) : silentLogger();
  const config: ServerConfig = loadServerConfig(
    { env: {} },
    {
      host: "127.0.0.1",
      port: 0,
      dataDir: testDb.dataDir,
      databaseUrl: testDb.url,
      // Suites open tunnels, touch files and present bad tokens far faster than
      // people do; the limits themselves are tested with their own settings.
      tunnelOpenRateLimit: 100_000,
      fileOpRateLimit: 1_000_000,
      authFailureLimit: 100_000,
      ...options.config,
    },
  );
  let server = await startServer({ config, logger, wireLimits: options.wireLimits, db: testDb.db });
  const agents = new Set<AgentProcess>();

  async function adminSetup() {
    const { token } = await server.tokens.issue(server.bootstrapAdmin.id);
    return { token, api: createApiClients({ url: server.url, token }) };
  }
  let adminCtx = await adminSetup();

  const harness: TestServer = {
    get server() {
      return server;
    },
    get url() {
      return server.url;
    },
    kind: options.kind,
    get admin() {
      return adminCtx.api;
    },
    get adminToken() {
      return adminCtx.token;
    },
    dataDir: testDb.dataDir,
    tempDir,
    async createTech(name, role = "tech") {
      const tech = await server.store.technicians.create({ name, role });
      const { token } = await server.tokens.issue(tech.id);
      return { technicianId: tech.id, token, api: createApiClients({ url: server.url, token }) };
    },
    async enrollAgent(name) {
      // In-process, so it works whatever the transport (TLS tests); AdminService itself is tested over HTTP.
      const admin = { technicianId: server.bootstrapAdmin.id, name: server.bootstrapAdmin.name, role: "admin" as const, tokenId: "test" };
      return server.admin.enrollAgent(admin, name);
    },
    async spawnAgent({ agentId, agentKey, allow, env, stateDir }) {
      const dir = stateDir ?? (await mkdtemp(join(tempDir, "agent-state-")));
      const args = [guruBin, "agent", "--server", server.url, "--state-dir", dir, ...(allow ?? [tempDir]).flatMap((p) => ["--allow", p])];
      const child = spawn(process.execPath, args, {
        env: { ...process.env, GURU_AGENT_KEY: agentKey, GURU_LOG_LEVEL: process.env.GURU_TEST_LOGS ? "debug" : "warn", GURU_BACKOFF_MAX_MS: "500", ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout?.on("data", (d) => (output += d));
      child.stderr?.on("data", (d) => (output += d));
      const proc: AgentProcess = {
        child,
        agentId,
        output: () => output,
        async waitOnline(timeoutMs = 15_000) {
          const deadline = Date.now() + timeoutMs;
          while (!server.router.isOnline(agentId)) {
            if (child.exitCode !== null || child.signalCode !== null) throw new Error(`agent exited (${child.exitCode ?? child.signalCode}):\n${output}`);
            if (Date.now() > deadline) throw new Error(`agent ${agentId} not online after ${timeoutMs} ms:\n${output}`);
            await new Promise((r) => setTimeout(r, 20));
          }
        },
        async stop() {
          agents.delete(proc);
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((r) => child.once("exit", r));
          child.kill("SIGCONT");
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(timer);
        },
      };
      agents.add(proc);
      return proc;
    },
    async startAgent(name, opts = {}) {
      const { agentId, agentKey } = await harness.enrollAgent(name);
      const proc = await harness.spawnAgent({ agentId, agentKey, ...opts });
      await proc.waitOnline();
      return proc;
    },
    async stopServer() {
      await server.close();
    },
    async restart() {
      server = await startServer({ config, logger, wireLimits: options.wireLimits, db: testDb.db });
      adminCtx = await adminSetup();
    },
    async close() {
      await Promise.all([...agents].map((a) => a.stop()));
      await server.close();
      await testDb.cleanup();
      await rm(tempDir, { recursive: true, force: true });
    },
  };
  return harness;
}
