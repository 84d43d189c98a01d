// Remote command latency: RunCommand("true") from a Connect client (this
// process) through `guru server` to a real `guru agent` process and back,
// against child_process.spawn of the same command from this process, in the
// same run, interleaved so both see the same machine load. Server and agent
// are the quick start's (`guru start`, embedded PGlite), each its own process,
// so this process stays about as small as the agent and the spawn baseline is
// comparable (fork cost grows with the parent's memory: a parent holding 1 GiB
// more took 3.35× longer to spawn `sh -c true`).
//
//   node bench/exec-latency.bench.ts [runs]      (or: npm run bench -- exec)
// Targets: added p50 ≤ 3 ms, added p99 ≤ 10 ms; 20 at once: all complete and
// p99 within 3× the single-command p99.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createApiClients } from "../lib/api-client.ts";
import { percentile } from "../test/support/link-test-kit.ts";
import pg from "pg";
import { testPgUrl } from "../test/support/pg-url.ts";
import { spawnGuru } from "../test/support/server-process.ts";

const warmupRuns = 50;
const concurrentCommands = 20;

/** What the agent does for `true`: sh -c, pipes for stdout and stderr, its own process group; done when the pipes close. */
function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", "true"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    child.on("error", reject);
    child.on("close", () => resolve());
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

const fmt = (ms: number) => ms.toFixed(2).padStart(8);

/**
 * Once on the quick start's embedded PGlite, then on PostgreSQL (production's
 * database): GURU_BENCH_DATABASE_URL, else a fresh database on the local
 * server the tests use, when one answers.
 */
export async function run(runs = Number(process.argv[3] ?? process.argv[2]) || 500): Promise<void> {
  await runOn(undefined, runs);
  if (process.env.GURU_BENCH_DATABASE_URL) {
    await runOn(process.env.GURU_BENCH_DATABASE_URL, runs);
    return;
  }
  const admin = new pg.Client({ connectionString: testPgUrl() });
  try {
    await admin.connect();
  } catch (err) {
    process.stdout.write(`\nPostgreSQL: not measured (${testPgUrl()} did not answer: ${(err as Error).message})\n`);
    return;
  }
  const name = `guru_bench_${randomBytes(4).toString("hex")}`;
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(testPgUrl());
    url.pathname = `/${name}`;
    process.stdout.write("\n");
    await runOn(url.toString(), runs);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

async function runOn(databaseUrl: string | undefined, runs: number): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "guru-bench-exec-"));
  const quick = spawnGuru(["start", "--port", "0", "--data-dir", dataDir, "--allow", dataDir], {
    DATABASE_URL: databaseUrl,
    GURU_LOG_LEVEL: "warn",
    // The bench's own runs would trip the 100-per-minute limit meant for people.
    // A 1 s window keeps the events counted per hit near production's (at
    // most 100 per key), so the limiter's cost is measured, not inflated.
    GURU_COMMAND_RATE_LIMIT: "1000000000",
    GURU_COMMAND_RATE_WINDOW_MS: "1000",
  });
  try {
    await quick.waitFor(/GuruTunnel is ready/, 120_000);
    const env = Object.fromEntries(
      (await readFile(join(dataDir, "env"), "utf8"))
        .trim()
        .split("\n")
        .map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    const api = createApiClients({ url: env.GURU_URL, token: env.GURU_TOKEN });
    const { sessionId } = await api.sessions.openTunnel({ agentId: env.GURU_AGENT_ID });
    const runTrue = async () => {
      const res = await api.exec.runCommand({ sessionId, command: "true" });
      if (res.result?.exitCode !== 0) throw new Error(`true failed: ${JSON.stringify(res.result)}`);
    };

    for (let i = 0; i < warmupRuns; i++) {
      await spawnTrue();
      await runTrue();
    }
    const baseline: number[] = [];
    const guru: number[] = [];
    for (let i = 0; i < runs; i++) {
      baseline.push(await timed(spawnTrue));
      guru.push(await timed(runTrue));
    }

    // 20 at once on one agent, in rounds, until as many samples as the single runs.
    const concurrent: number[] = [];
    let completed = 0;
    const rounds = Math.ceil(runs / concurrentCommands);
    for (let r = 0; r < rounds; r++) {
      const round = await Promise.allSettled(Array.from({ length: concurrentCommands }, () => timed(runTrue)));
      for (const s of round) {
        if (s.status === "fulfilled") {
          concurrent.push(s.value);
          completed++;
        }
      }
    }
    const attempted = rounds * concurrentCommands;

    const b50 = percentile(baseline, 50);
    const b99 = percentile(baseline, 99);
    const g50 = percentile(guru, 50);
    const g99 = percentile(guru, 99);
    const c50 = percentile(concurrent, 50);
    const c99 = percentile(concurrent, 99);
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`runs: ${runs} each, interleaved, after ${warmupRuns} warm-up runs; server + agent: quick start on ${databaseUrl ? "PostgreSQL" : "embedded PGlite"}`);
    out(`                                    p50 ms   p99 ms`);
    out(`spawn('/bin/sh -c true') here    ${fmt(b50)} ${fmt(b99)}`);
    out(`RunCommand('true') via Guru      ${fmt(g50)} ${fmt(g99)}`);
    out(`added                            ${fmt(g50 - b50)} ${fmt(g99 - b99)}   target ≤ 3 / ≤ 10 ms: ${g50 - b50 <= 3 && g99 - b99 <= 10 ? "met" : "MISSED"}`);
    out(`ratio to spawn                   ${(g50 / b50).toFixed(2).padStart(7)}× ${(g99 / b99).toFixed(2).padStart(7)}×`);
    out(
      `${concurrentCommands} at once on one agent         ${fmt(c50)} ${fmt(c99)}   completed ${completed}/${attempted}; p99 ${(c99 / g99).toFixed(2)}× single (target ≤ 3×: ${completed === attempted && c99 <= 3 * g99 ? "met" : "MISSED"})`,
    );
    await api.sessions.closeTunnel({ sessionId });
  } finally {
    await quick.stop("SIGINT");
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await run();
