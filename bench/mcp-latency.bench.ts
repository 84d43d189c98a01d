// What `guru mcp` adds to a remote command: run_command("true") from the
// SDK's Client over stdio, through a `guru mcp` child process, beside
// RunCommand("true") called directly from this process on the same tunnel, in
// the same run, interleaved so both see the same load. Server and agent are
// the quick start's (`guru start`, embedded PGlite), each its own process.
//
//   node bench/mcp-latency.bench.ts [runs]      (or: npm run bench -- mcp)
// Target: added p50 ≤ 5 ms.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createApiClients } from "../lib/api-client.ts";
import { percentile } from "../test/support/link-test-kit.ts";
import { startGuruMcp } from "../test/support/mcp-stdio-client.ts";
import { spawnGuru } from "../test/support/server-process.ts";

const warmupRuns = 50;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

const fmt = (ms: number) => ms.toFixed(2).padStart(8);

export async function run(runs = Number(process.argv[3] ?? process.argv[2]) || 300): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "guru-bench-mcp-"));
  const quick = spawnGuru(["start", "--port", "0", "--data-dir", dataDir, "--allow", dataDir], {
    DATABASE_URL: undefined,
    GURU_LOG_LEVEL: "warn",
    // The bench's own runs would trip the per-minute limit meant for people.
    GURU_COMMAND_RATE_LIMIT: "1000000000",
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
    // Opened here; guru mcp reuses this technician's active tunnel, so both
    // paths run on the same session.
    const { sessionId } = await api.sessions.openTunnel({ agentId: env.GURU_AGENT_ID });
    const mcp = await startGuruMcp({ url: env.GURU_URL, token: env.GURU_TOKEN, env: { GURU_LOG_LEVEL: "warn" } });
    try {
      await mcp.client.listTools();
      const direct = async () => {
        const res = await api.exec.runCommand({ sessionId, command: "true" });
        if (res.result?.exitCode !== 0) throw new Error(`true failed: ${JSON.stringify(res.result)}`);
      };
      const viaMcp = async () => {
        const res = await mcp.client.callTool({ name: "run_command", arguments: { agent: env.GURU_AGENT_ID, command: "true" } });
        const exitCode = (res.structuredContent as { exitCode?: number } | undefined)?.exitCode;
        if (res.isError || exitCode !== 0) throw new Error(`run_command true failed: ${JSON.stringify(res)}`);
      };

      for (let i = 0; i < warmupRuns; i++) {
        await direct();
        await viaMcp();
      }
      const baseline: number[] = [];
      const guru: number[] = [];
      for (let i = 0; i < runs; i++) {
        baseline.push(await timed(direct));
        guru.push(await timed(viaMcp));
      }

      const b50 = percentile(baseline, 50);
      const b99 = percentile(baseline, 99);
      const m50 = percentile(guru, 50);
      const m99 = percentile(guru, 99);
      const out = (line: string) => process.stdout.write(`${line}\n`);
      out(`runs: ${runs} each, interleaved, after ${warmupRuns} warm-up runs; server + agent: quick start on embedded PGlite`);
      out(`                                          p50 ms   p99 ms`);
      out(`RunCommand('true') direct (Connect)     ${fmt(b50)} ${fmt(b99)}`);
      out(`run_command via guru mcp (MCP, stdio)   ${fmt(m50)} ${fmt(m99)}`);
      out(`added                                  ${fmt(m50 - b50)} ${fmt(m99 - b99)}   target p50 ≤ 5 ms: ${m50 - b50 <= 5 ? "met" : "MISSED"}`);
      out(`ratio to direct                         ${(m50 / b50).toFixed(2).padStart(7)}× ${(m99 / b99).toFixed(2).padStart(7)}×`);
    } finally {
      await mcp.close();
    }
  } finally {
    await quick.stop("SIGINT");
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await run();
