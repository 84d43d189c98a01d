// A cluster of real `guru server` processes on one fresh PostgreSQL database
// and a NATS server (the machine's, or a private one), each under its own node
// id and a subject prefix unique to the test, plus real agent processes
// connected to the node of the test's choice (directly or through HAProxy:
// haproxy.ts).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiClients, type ApiClients } from "../../lib/api-client.ts";
import { createTestDb } from "./databases.ts";
import { canConnect, freePort } from "./free-port.ts";
import { spawnGuru, type GuruProcess } from "./server-process.ts";

const sharedNatsUrl = process.env.TEST_NATS_URL || "nats://127.0.0.1:4222";

export interface ClusterNodeProcess {
  nodeId: string;
  url: string;
  process: GuruProcess;
  api: ApiClients;
}

export interface TestCluster {
  nodes: ClusterNodeProcess[];
  adminToken: string;
  dbUrl: string;
  tempDir: string;
  prefix: string;
  /** Starts (or restarts, on the same port) node i. */
  startNode(i: number, env?: Record<string, string>): Promise<ClusterNodeProcess>;
  apiFor(i: number, token: string): ApiClients;
  /** Enrols an agent through node 0 and runs it against `serverUrl`; resolves once its link is up. */
  startAgent(name: string, serverUrl: string): Promise<{ agentId: string; agentKey: string; process: GuruProcess; dir: string }>;
  /** Runs an agent process with a known key; resolves once its link is up. */
  runAgent(agentKey: string, serverUrl: string, dir: string): Promise<GuruProcess>;
  close(): Promise<void>;
}

export async function startTestCluster(options: { nodes: number; natsUrl?: string; env?: Record<string, string> }): Promise<TestCluster> {
  const pg = await createTestDb("pg");
  await pg.db.close();
  const dbUrl = pg.url as string;
  const tempDir = await mkdtemp(join(tmpdir(), "guru-cluster-"));
  const prefix = `guru-test-${randomBytes(5).toString("hex")}`;
  const processes: GuruProcess[] = [];
  const nodes: ClusterNodeProcess[] = [];
  let adminToken = "";

  async function startNode(i: number, env: Record<string, string> = {}): Promise<ClusterNodeProcess> {
    const nodeId = `node${i + 1}`;
    const dataDir = join(tempDir, nodeId);
    const proc = spawnGuru(["server", "--port", String(nodes[i] ? new URL(nodes[i].url).port : 0), "--data-dir", dataDir, "--node-id", nodeId], {
      DATABASE_URL: dbUrl,
      GURU_NATS_URL: options.natsUrl ?? sharedNatsUrl,
      GURU_NATS_SUBJECT_PREFIX: prefix,
      GURU_LOG_LEVEL: process.env.GURU_TEST_LOGS ? "debug" : "info",
      GURU_TUNNEL_OPEN_RATE_LIMIT: "100000",
      GURU_FILE_OP_RATE_LIMIT: "1000000",
      GURU_NODE_TTL_MS: "3000",
      GURU_NATS_REQUEST_TIMEOUT_MS: "2000",
      ...options.env,
      ...env,
    });
    processes.push(proc);
    const [, url] = await proc.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
    if (adminToken === "") adminToken = (await readFile(join(dataDir, "admin-token"), "utf8")).trim();
    const node = { nodeId, url, process: proc, api: createApiClients({ url, token: adminToken }) };
    nodes[i] = node;
    return node;
  }

  for (let i = 0; i < options.nodes; i++) await startNode(i);

  return {
    nodes,
    get adminToken() {
      return adminToken;
    },
    dbUrl,
    tempDir,
    prefix,
    startNode,
    apiFor: (i, token) => createApiClients({ url: nodes[i].url, token }),
    async startAgent(name, serverUrl) {
      const { agentId, agentKey } = await nodes[0].api.admin.enrollAgent({ name });
      const dir = await mkdtemp(join(tempDir, `agent-${name}-`));
      return { agentId, agentKey, dir, process: await runAgent(agentKey, serverUrl, dir) };
    },
    runAgent,
    async close() {
      await Promise.all(processes.map((p) => p.stop("SIGKILL")));
      await pg.cleanup();
      await rm(tempDir, { recursive: true, force: true });
    },
  };

  async function runAgent(agentKey: string, serverUrl: string, dir: string): Promise<GuruProcess> {
    const proc = spawnGuru(["agent", "--server", serverUrl, "--state-dir", join(dir, ".state"), "--allow", dir], {
      GURU_AGENT_KEY: agentKey,
      GURU_LOG_LEVEL: "info",
      GURU_BACKOFF_MAX_MS: "500",
    });
    processes.push(proc);
    await proc.waitFor(/connected to the server/, 20_000);
    return proc;
  }
}

/** Waits until every running node lists the agent as online (ownership has spread). */
export async function waitOnlineEverywhere(cluster: TestCluster, agentId: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const running = cluster.nodes.filter((n) => n.process.child.exitCode === null && n.process.child.signalCode === null);
  for (const node of running) {
    for (;;) {
      const { agents } = await node.api.agents.listAgents({});
      if (agents.find((a) => a.agentId === agentId)?.online) break;
      if (Date.now() > deadline) throw new Error(`agent ${agentId} not online on ${node.nodeId} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * The index of the running node holding the agent's link, from the nodes' logs
 * (each link's "agent connected" and "agent disconnected"); -1 if none does.
 */
export function ownerOf(cluster: TestCluster, agentId: string): number {
  return cluster.nodes.findIndex((node) => {
    if (node.process.child.exitCode !== null || node.process.child.signalCode !== null) return false;
    let links = 0;
    for (const line of node.process.output().split("\n")) {
      if (!line.includes(`"agentId":"${agentId}"`)) continue;
      if (line.includes('"msg":"agent connected"')) links++;
      else if (line.includes('"msg":"agent disconnected"')) links--;
    }
    return links > 0;
  });
}

/** Agent links per node, from a node's /metrics (`guru_cluster_agents{node}`: the cluster as that node sees it). */
export async function agentsPerNode(nodeUrl: string): Promise<Record<string, number>> {
  const metrics = await (await fetch(`${nodeUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of metrics.matchAll(/^guru_cluster_agents\{node="([^"]+)"\} (\d+)$/gm)) counts[m[1]] = Number(m[2]);
  return counts;
}

/** A private nats-server on a free port (for tests that stop and start NATS). */
export async function startPrivateNats(): Promise<{ url: string; start(): Promise<void>; stop(): Promise<void>; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "guru-nats-"));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const bin = process.env.NATS_SERVER_BIN || "/usr/sbin/nats-server";
  async function start() {
    child = spawn(bin, ["-a", "127.0.0.1", "-p", String(port)], { cwd: dir, stdio: "ignore" });
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(port))) {
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async function stop() {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise((r) => {
      c.once("exit", r);
      c.kill("SIGKILL");
    });
  }
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    start,
    stop,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
