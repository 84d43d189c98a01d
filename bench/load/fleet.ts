// What the capacity, storm and load benches share: a fresh PostgreSQL
// database, a `guru server` process on it, simulated agents enrolled in bulk
// through the agents table (not thousands of RPC calls), the load generator
// process, and the server's RSS and CPU time read from /proc.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { hashAgentKey } from "../../server/auth/agent-keys.ts";
import { freePort } from "../../test/support/free-port.ts";
import { testPgUrl } from "../../test/support/pg-url.ts";

export { freePort };
import { spawnGuru, type GuruProcess } from "../../test/support/server-process.ts";
import { simAgentKey } from "./agent-keys.ts";
import type { SwarmCounters } from "./sim-agent.ts";

const swarmScript = fileURLToPath(new URL("./swarm.ts", import.meta.url));
const rawServerScript = fileURLToPath(new URL("./raw-ws-server.ts", import.meta.url));

/** The bare `ws` echo server of the baseline, in its own process. */
export async function startRawWsServer(): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [rawServerScript], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once("exit", (code) => reject(new Error(`raw ws server exited (${code})`)));
  });
  return {
    url: `ws://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A fresh database on TEST_DATABASE_URL's server (else the local one); dropped by drop(). */
export async function createBenchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `guru_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: testPgUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(testPgUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: testPgUrl() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await c.end();
    },
  };
}

export interface BenchServer {
  process: GuruProcess;
  url: string;
  pid: number;
  dataDir: string;
  adminToken(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `guru server` on databaseUrl at a fixed port (a restart must come back where the agents dial). */
export async function startBenchServer(options: {
  databaseUrl: string;
  port: number;
  dataDir?: string;
  env?: Record<string, string>;
  nodeArgs?: string[];
}): Promise<BenchServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "guru-bench-server-")));
  const proc = spawnGuru(
    ["server", "--port", String(options.port), "--data-dir", dataDir],
    {
      DATABASE_URL: options.databaseUrl,
      GURU_LOG_LEVEL: "warn",
      ...options.env,
    },
    { nodeArgs: options.nodeArgs },
  );
  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`guru server exited (${proc.child.exitCode}):\n${proc.output()}`);
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`guru server not ready after 120 s:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    process: proc,
    url,
    pid: proc.child.pid!,
    dataDir,
    adminToken: async () => (await readFile(join(dataDir, "admin-token"), "utf8")).trim(),
    async stop(signal = "SIGTERM") {
      await proc.stop(signal);
    },
  };
}

/** Enrols `count` simulated agents (keys from seed) with one INSERT per 5,000. */
export async function enrollSimAgents(databaseUrl: string, seed: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (let from = 0; from < count; from += 5_000) {
      const names: string[] = [];
      const hashes: string[] = [];
      for (let i = from; i < Math.min(count, from + 5_000); i++) {
        names.push(`sim-${seed}-${i}`);
        hashes.push(hashAgentKey(simAgentKey(seed, i)));
      }
      await client.query("INSERT INTO agents (name, key_hash) SELECT * FROM unnest($1::text[], $2::text[])", [names, hashes]);
    }
  } finally {
    await client.end();
  }
}

/** The ids of the simulated agents, in index order. */
export async function simAgentIds(databaseUrl: string, seed: string, count: number): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const r = await client.query<{ id: string; name: string }>("SELECT id, name FROM agents WHERE name LIKE $1", [`sim-${seed}-%`]);
    const byIndex = new Map(r.rows.map((row) => [Number(row.name.slice(`sim-${seed}-`.length)), row.id]));
    return Array.from({ length: count }, (_, i) => byIndex.get(i)!);
  } finally {
    await client.end();
  }
}

/** Resident memory and CPU time (user + system, and each) of a process, from /proc. */
export async function procUsage(pid: number): Promise<{ rssBytes: number; cpuSeconds: number; userSeconds: number; systemSeconds: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces): utime is the 14th field, stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticksPerSecond = 100;
  const userSeconds = Number(fields[11]) / ticksPerSecond;
  const systemSeconds = Number(fields[12]) / ticksPerSecond;
  return { rssBytes: rssKiB * 1024, cpuSeconds: userSeconds + systemSeconds, userSeconds, systemSeconds };
}

export interface SwarmSnapshot extends SwarmCounters {
  total: number;
  rssBytes: number;
  atMs: number;
  failed?: number;
  connectMs?: number;
}

export interface Swarm {
  child: ChildProcess;
  request(type: string, body?: Record<string, unknown>): Promise<SwarmSnapshot>;
  onTick(listener: (s: SwarmSnapshot) => void): void;
  stop(): Promise<void>;
}

/** The load generator in its own process (bench/load/swarm.ts). */
export function startSwarm(): Swarm {
  const child = spawn(process.execPath, [swarmScript], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let nextId = 1;
  const pending = new Map<number, { resolve(v: SwarmSnapshot): void; reject(e: Error): void }>();
  const tickListeners: ((s: SwarmSnapshot) => void)[] = [];
  child.on("message", (m: { reply?: number; result?: SwarmSnapshot; error?: string; tick?: SwarmSnapshot }) => {
    if (m.tick) for (const l of tickListeners) l(m.tick);
    if (m.reply === undefined) return;
    const p = pending.get(m.reply);
    pending.delete(m.reply);
    if (m.error !== undefined) p?.reject(new Error(`load generator: ${m.error}`));
    else p?.resolve(m.result!);
  });
  child.on("exit", (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`load generator exited (${code ?? signal})`));
    pending.clear();
  });
  return {
    child,
    request(type, body = {}) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, type, ...body });
      });
    },
    onTick(listener) {
      tickListeners.push(listener);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      await this.request("stop").catch(() => undefined);
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
