// A fleet of N agents (default 10,000) on one `guru server` on PostgreSQL,
// simulated by the load generator (bench/load/swarm.ts) with the real wire
// code and the real reconnect backoff of `guru agent`:
//
// 1. Commands under load: tunnels to 1,000 of them, then RunCommand at 200
//    per second (open loop: sent on schedule whatever the answers do) spread
//    over those 1,000, each through the API, the server, the wire and back;
//    the simulated agent answers exit 0 from memory, so this is the server's
//    and the wire's latency, not fork()'s. p50 and p99 beside a call that
//    touches no agent (ListTunnels? no: GetTunnelStatus, same auth and database
//    path) made at the same pace in the same run.
// 2. Reconnect storm: the server is restarted (SIGTERM, then a new process on
//    the same port and database) under all N. Printed: agents online each
//    second, the time until all are back, the 503s (GURU_MAX_CONCURRENT_HANDSHAKES
//    at work) and the agents' give-ups (none: they retry forever); the curve is
//    drawn to bench/storm.png.
//
//   npm run bench -- storm        (GURU_BENCH_STORM_AGENTS=500 for a quick run)
import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import { createApiClients } from "../lib/api-client.ts";
import { percentile } from "../test/support/link-test-kit.ts";
import {
  createBenchDatabase,
  enrollSimAgents,
  freePort,
  removeDir,
  simAgentIds,
  startBenchServer,
  startSwarm,
  type BenchServer,
  type SwarmSnapshot,
} from "./load/fleet.ts";
import { drawLineChart } from "./load/png-chart.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (line: string) => process.stdout.write(`${line}\n`);
const chartPath = fileURLToPath(new URL("./storm.png", import.meta.url));

export async function run(): Promise<void> {
  const count = Number(process.env.GURU_BENCH_STORM_AGENTS ?? 10_000);
  const busyAgents = Math.min(1_000, count);
  const commandsPerSecond = Number(process.env.GURU_BENCH_COMMANDS_PER_SECOND ?? 200);
  const commandSeconds = Number(process.env.GURU_BENCH_COMMAND_SECONDS ?? 30);
  const maxHandshakes = Number(process.env.GURU_MAX_CONCURRENT_HANDSHAKES ?? 128);
  const stormLimitS = 60;
  const db = await createBenchDatabase();
  const seed = `storm${Date.now().toString(36)}`;
  const port = await freePort();
  const serverEnv = {
    GURU_MAX_CONCURRENT_HANDSHAKES: String(maxHandshakes),
    // The bench is one technician driving 1,000 agents: people's limits would refuse it.
    GURU_TUNNEL_OPEN_RATE_LIMIT: "1000000",
    GURU_COMMAND_RATE_LIMIT: "1000000",
  };
  let server: BenchServer | undefined = await startBenchServer({ databaseUrl: db.url, port, env: serverEnv });
  const dataDir = server.dataDir;
  const swarm = startSwarm();
  try {
    await enrollSimAgents(db.url, seed, count);
    const ids = await simAgentIds(db.url, seed, count);
    const started = await swarm.request("start", { serverUrl: server.url, seed, count, dialConcurrency: 64 });
    if (started.failed) throw new Error(`${started.failed} of ${count} agents could not connect`);
    await swarm.request("reconnectForever");
    out(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}); server and load generator in separate processes; PostgreSQL`);
    out(`fleet: ${count} agents connected in ${(started.connectMs! / 1000).toFixed(1)} s (${Math.round(count / (started.connectMs! / 1000))}/s)`);

    // 1. Commands under load.
    const api = createApiClients({ url: server.url, token: await server.adminToken() });
    const sessions: string[] = [];
    for (let i = 0; i < busyAgents; i += 50) {
      const opened = await Promise.all(ids.slice(i, Math.min(busyAgents, i + 50)).map((agentId) => api.sessions.openTunnel({ agentId })));
      sessions.push(...opened.map((o) => o.sessionId));
    }
    const command: number[] = [];
    const status: number[] = [];
    let failures = 0;
    let firstFailure = "";
    const total = commandsPerSecond * commandSeconds;
    const begun = performance.now();
    const inFlight: Promise<void>[] = [];
    for (let k = 0; k < total; k++) {
      const due = begun + (k * 1000) / commandsPerSecond;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const sessionId = sessions[k % sessions.length];
      const t0 = performance.now();
      inFlight.push(
        api.exec
          .runCommand({ sessionId, command: "true" })
          .then((res) => {
            if (res.result?.exitCode !== 0) throw new Error(`exit ${res.result?.exitCode}`);
            command.push(performance.now() - t0);
          })
          .catch((err: Error) => {
            failures++;
            firstFailure ||= err.message;
          }),
      );
      // The same pace of calls that end in the database, not at an agent.
      if (k % 4 === 0) {
        const s0 = performance.now();
        inFlight.push(
          api.sessions.getTunnelStatus({ sessionId }).then(
            () => void status.push(performance.now() - s0),
            () => void failures++,
          ),
        );
      }
    }
    await Promise.all(inFlight);
    const achieved = total / ((performance.now() - begun) / 1000);
    out(
      `\ncommands under load: ${count} agents connected, ${total} RunCommand at ${commandsPerSecond}/s (achieved ${achieved.toFixed(0)}/s) over ${sessions.length} agents' tunnels`,
    );
    out(`                                   p50 ms   p99 ms`);
    out(`GetTunnelStatus (no agent)      ${percentile(status, 50).toFixed(2).padStart(8)} ${percentile(status, 99).toFixed(2).padStart(8)}`);
    out(
      `RunCommand (agent answers)      ${percentile(command, 50).toFixed(2).padStart(8)} ${percentile(command, 99).toFixed(2).padStart(8)}   failed ${failures}${firstFailure ? ` (first: ${firstFailure})` : ""}`,
    );
    out(
      `ratio to a call without agent   ${(percentile(command, 50) / percentile(status, 50)).toFixed(2).padStart(7)}× ${(percentile(command, 99) / percentile(status, 99)).toFixed(2).padStart(7)}×`,
    );
    if (failures > 0) throw new Error(`${failures} calls failed under load (first: ${firstFailure})`);
    for (let i = 0; i < sessions.length; i += 100) await Promise.all(sessions.slice(i, i + 100).map((sessionId) => api.sessions.closeTunnel({ sessionId })));

    // 2. Reconnect storm.
    const curve: { t: number; online: number }[] = [];
    let restartAt = 0;
    const before = await swarm.request("counters");
    swarm.onTick((s: SwarmSnapshot) => curve.push({ t: (s.atMs - restartAt) / 1000, online: s.online }));
    restartAt = Date.now();
    await swarm.request("ticks", { on: true });
    await server.stop("SIGTERM");
    const stoppedS = (Date.now() - restartAt) / 1000;
    server = undefined;
    server = await startBenchServer({ databaseUrl: db.url, port, dataDir, env: serverEnv });
    const readyS = (Date.now() - restartAt) / 1000;
    const deadline = Date.now() + 180_000;
    let last = await swarm.request("counters");
    while (last.online < count && Date.now() < deadline) {
      await sleep(250);
      last = await swarm.request("counters");
    }
    const allBackS = (last.atMs - restartAt) / 1000;
    await sleep(1_500);
    await swarm.request("ticks", { on: false });
    const inDb = await onlineInDatabase(db.url, seed);

    out(`\nreconnect storm: ${count} agents, server restarted (SIGTERM, new process on the same port); GURU_MAX_CONCURRENT_HANDSHAKES=${maxHandshakes}`);
    out(`old server gone after ${stoppedS.toFixed(1)} s (it closes every link and records them offline), new one ready at ${readyS.toFixed(1)} s`);
    out(`agents online each second since the restart began:`);
    const perSecond = new Map<number, number>();
    for (const p of curve) perSecond.set(Math.floor(p.t), p.online);
    out(
      [...perSecond]
        .map(([t, n]) => `${String(t).padStart(3)} s ${String(n).padStart(6)}`)
        .reduce((lines: string[], cell, i) => {
          if (i % 6 === 0) lines.push("");
          lines[lines.length - 1] += `  ${cell}`;
          return lines;
        }, [])
        .join("\n"),
    );
    const back = last.online === count;
    out(
      `all ${count} back: ${back ? `${allBackS.toFixed(1)} s after the restart began, ${(allBackS - readyS).toFixed(1)} s after the new server was ready` : `NO: ${last.online} after 180 s`}   target ≤ ${stormLimitS} s: ${back && allBackS <= stormLimitS ? "met" : "MISSED"}`,
    );
    out(
      `dials refused busy (503 + Retry-After): ${last.busyRefusals - before.busyRefusals}; other failed dials: ${last.dialFailures - before.dialFailures - (last.busyRefusals - before.busyRefusals)}; agents that gave up: 0 (they never stop); online in the database: ${inDb}`,
    );
    await writeFile(
      chartPath,
      drawLineChart({
        title: `Reconnect storm: ${count} agents, server restart`,
        xLabel: "seconds since the restart began",
        yLabel: "agents online",
        series: [{ color: [30, 100, 200], points: curve.map((p) => [Math.max(0, p.t), p.online]) }],
        markers: [
          { x: stoppedS, label: "old server gone", color: [200, 60, 40] },
          { x: readyS, label: "new server ready", color: [40, 150, 60] },
        ],
        levels: [{ y: count, label: `${count} agents`, color: [120, 120, 120] }],
        xMax: Math.max(stormLimitS, Math.ceil(curve.at(-1)?.t ?? 0)),
        yMax: Math.ceil((count * 1.1) / 1000) * 1000,
      }),
    );
    out(`curve drawn to bench/storm.png`);
    if (!back) throw new Error(`only ${last.online} of ${count} agents came back within 180 s`);
    if (inDb !== count) throw new Error(`the database says ${inDb} agents online, the load generator ${count}`);
  } finally {
    await swarm.stop();
    await server?.stop("SIGTERM");
    await removeDir(dataDir);
    await db.drop();
  }
}

async function onlineInDatabase(url: string, seed: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // The last marks may still be in their group write.
    await sleep(500);
    const r = await client.query<{ n: string }>("SELECT count(*) AS n FROM agents WHERE online AND name LIKE $1", [`sim-${seed}-%`]);
    return Number(r.rows[0].n);
  } finally {
    await client.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await run();
