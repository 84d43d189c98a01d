// Capacity: N idle agents (default 19,000) on one `guru server` process on
// PostgreSQL, each a real WebSocket with a real Hello and heartbeats at the
// production interval (30 s), from the load generator in a process of its own
// (bench/load/swarm.ts). Beside it, the same N plain `ws` sockets on a bare
// `ws` echo server exchanging one 6-byte message per interval: the floor of
// what a socket and a message cost here.
//
// Reported: the server's RSS per agent (growth over the same server before the
// agents connected) and its CPU time over a window minus the
// same server's CPU time without agents: everything idle agents cost it
// (heartbeats, acks, liveness), charged to the heartbeats. The window is one
// interval, so every agent sends one heartbeat in it. On loopback a
// write's system time includes delivering the bytes to the other process, so
// the kernel share is printed apart.
//
// This machine caps a process at `ulimit -n` open files (20,000 here): the
// server and the load generator each hold one socket per agent, hence 19,000.
//
//   npm run bench -- capacity      (GURU_BENCH_AGENTS=500 GURU_BENCH_WINDOW_MS=10000 for a quick look)
import { cpus } from "node:os";
import { pathToFileURL } from "node:url";
import {
  createBenchDatabase,
  enrollSimAgents,
  freePort,
  procUsage,
  removeDir,
  startBenchServer,
  startRawWsServer,
  startSwarm,
  type Swarm,
  type SwarmSnapshot,
} from "./load/fleet.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const productionIntervalMs = 30_000;
const out = (line: string) => process.stdout.write(`${line}\n`);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

interface Measured {
  connectMs: number;
  rssPerAgentKiB: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  beats: number;
  windowS: number;
  /** CPU seconds over the window beyond the same process without agents. */
  extraCpuS: number;
  extraUserS: number;
  extraSystemS: number;
}

/** Baseline CPU rate of an empty server, N sockets connected, then one window of heartbeats. */
async function measure(
  pid: number,
  swarm: Swarm,
  connect: () => Promise<SwarmSnapshot>,
  count: number,
  intervalMs: number,
  windowMs: number,
): Promise<Measured> {
  await sleep(2_000);
  const emptyA = await procUsage(pid);
  await sleep(10_000);
  const emptyB = await procUsage(pid);
  const started = await connect();
  if (started.failed) throw new Error(`${started.failed} of ${count} sockets could not connect`);
  // Every socket's first heartbeat comes one interval after it connected.
  await sleep(intervalMs + 3_000);
  const a = await procUsage(pid);
  const beatsA = await swarm.request("counters");
  await sleep(windowMs);
  const b = await procUsage(pid);
  const beatsB = await swarm.request("counters");
  if (beatsB.online !== count) throw new Error(`only ${beatsB.online} of ${count} online at the end of the window`);
  const windowS = (beatsB.atMs - beatsA.atMs) / 1000;
  const emptyS = 10;
  const rate = (x: number, y: number) => (y - x) / emptyS;
  return {
    connectMs: started.connectMs ?? 0,
    rssPerAgentKiB: (a.rssBytes - emptyB.rssBytes) / 1024 / count,
    rssBeforeBytes: emptyB.rssBytes,
    rssAfterBytes: a.rssBytes,
    beats: beatsB.heartbeatAcks - beatsA.heartbeatAcks,
    windowS,
    extraCpuS: b.cpuSeconds - a.cpuSeconds - rate(emptyA.cpuSeconds, emptyB.cpuSeconds) * windowS,
    extraUserS: b.userSeconds - a.userSeconds - rate(emptyA.userSeconds, emptyB.userSeconds) * windowS,
    extraSystemS: b.systemSeconds - a.systemSeconds - rate(emptyA.systemSeconds, emptyB.systemSeconds) * windowS,
  };
}

export async function run(): Promise<void> {
  const count = Number(process.env.GURU_BENCH_AGENTS ?? 19_000);
  const intervalMs = Number(process.env.GURU_BENCH_HEARTBEAT_MS ?? productionIntervalMs);
  // One interval: every agent beats once in the window.
  const windowMs = Number(process.env.GURU_BENCH_WINDOW_MS ?? intervalMs);

  // Baseline: bare ws.
  const raw = await startRawWsServer();
  const rawSwarm = startSwarm();
  let rawFigures: Measured;
  try {
    rawFigures = await measure(raw.pid, rawSwarm, () => rawSwarm.request("startRaw", { url: raw.url, count, intervalMs }), count, intervalMs, windowMs);
  } finally {
    await rawSwarm.stop();
    await raw.stop();
  }

  const db = await createBenchDatabase();
  const seed = `cap${Date.now().toString(36)}`;
  const server = await startBenchServer({ databaseUrl: db.url, port: await freePort(), env: { GURU_HEARTBEAT_INTERVAL_MS: String(intervalMs) } });
  const swarm = startSwarm();
  let guru: Measured;
  let generatorRss = 0;
  try {
    await enrollSimAgents(db.url, seed, count);
    guru = await measure(
      server.pid,
      swarm,
      () => swarm.request("start", { serverUrl: server.url, seed, count, dialConcurrency: 64 }),
      count,
      intervalMs,
      windowMs,
    );
    generatorRss = (await swarm.request("counters")).rssBytes;
  } finally {
    await swarm.stop();
    await server.stop("SIGTERM");
    await removeDir(server.dataDir);
    await db.drop();
  }

  const perBeatUs = (m: Measured) => (m.extraCpuS * 1e6) / m.beats;
  const coreShareAt = (m: Measured, agents: number) => (perBeatUs(m) * agents) / (productionIntervalMs * 1000);
  const guruShare = coreShareAt(guru, count);
  const row = (label: string, m: Measured) =>
    out(
      `${label.padEnd(22)} ${m.rssPerAgentKiB.toFixed(1).padStart(7)} KiB ${perBeatUs(m).toFixed(1).padStart(8)} µs  (user ${((m.extraUserS * 1e6) / m.beats).toFixed(1)}, system ${((m.extraSystemS * 1e6) / m.beats).toFixed(1)})  ${(coreShareAt(m, count) * 100).toFixed(2).padStart(6)} %   ${(count / (m.connectMs / 1000)).toFixed(0).padStart(5)}/s`,
    );
  out(
    `machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}); ${count} sockets per run; heartbeat every ${intervalMs / 1000} s; windows of ${(windowMs / 1000).toFixed(0)} s`,
  );
  out(`server and load generator in separate processes (each holds ${count} sockets; ulimit -n caps a process here); guru on PostgreSQL`);
  out(`                          RSS/agent   CPU per heartbeat (+ack)                 % of a core at 30 s   connects`);
  row("bare ws echo", rawFigures);
  row("guru server", guru);
  out(
    `ratio guru / bare ws      ${(guru.rssPerAgentKiB / rawFigures.rssPerAgentKiB).toFixed(2)}× memory, ${(perBeatUs(guru) / perBeatUs(rawFigures)).toFixed(2)}× CPU per heartbeat`,
  );
  out(`guru server RSS: ${mib(guru.rssBeforeBytes)} MiB without agents, ${mib(guru.rssAfterBytes)} MiB with ${count}; load generator ${mib(generatorRss)} MiB`);
  out(`RSS per agent:        ${guru.rssPerAgentKiB.toFixed(1)} KiB   target ≤ 16 KiB: ${guru.rssPerAgentKiB <= 16 ? "met" : "MISSED"}`);
  out(
    `heartbeats:           ${(guruShare * 100).toFixed(2)} % of one core for ${count} agents at 30 s (${guru.beats} heartbeats in ${guru.windowS.toFixed(0)} s)   target ≤ 5 %: ${guruShare <= 0.05 ? "met" : "MISSED"}`,
  );
  out(
    `extrapolated to 50,000 agents (a host without the open-file cap): ${((guru.rssBeforeBytes + guru.rssPerAgentKiB * 1024 * 50_000) / 2 ** 30).toFixed(2)} GiB RSS, heartbeats ${(coreShareAt(guru, 50_000) * 100).toFixed(1)} % of one core`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await run();
