// Two server nodes on one PostgreSQL database and the local NATS, one agent
// linked to node 1. The same calls made through node 1 (the owner) and node 2
// (relayed over NATS), interleaved in one run: a command round trip (p50/p99)
// and a download (MiB/s), with the cross-node figures as ratios of the
// same-node ones. GURU_BENCH_CLUSTER_MIB sets the transfer size (default 1024).
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { ApiClients } from "../lib/api-client.ts";
import { percentile } from "../test/support/link-test-kit.ts";
import { startTestCluster } from "../test/support/cluster.ts";

const MiB = 1024 * 1024;

async function download(api: ApiClients, sessionId: string, path: string): Promise<{ bytes: number; ms: number; sha: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const started = performance.now();
  for await (const m of api.files.readFile({ sessionId, path })) {
    if (m.event.case === "chunk") {
      hash.update(m.event.value.data);
      bytes += m.event.value.data.byteLength;
    }
  }
  return { bytes, ms: performance.now() - started, sha: hash.digest("hex") };
}

export async function run(): Promise<void> {
  const sizeMiB = Number(process.env.GURU_BENCH_CLUSTER_MIB ?? 1024);
  const rounds = Number(process.env.GURU_BENCH_CLUSTER_ROUNDS ?? 200);
  const cluster = await startTestCluster({ nodes: 2, env: { GURU_COMMAND_RATE_LIMIT: "100000" } });
  try {
    const agent = await cluster.startAgent("bench", cluster.nodes[0].url);
    const file = join(agent.dir, "big.bin");
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(file);
      const block = Buffer.alloc(MiB);
      for (let i = 0; i < MiB; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
      let left = sizeMiB;
      const write = () => {
        while (left > 0) {
          left--;
          if (!out.write(block)) return void out.once("drain", write);
        }
        out.end(() => resolve());
      };
      out.on("error", reject);
      write();
    });
    const owner = cluster.nodes[0].api;
    const relay = cluster.nodes[1].api;
    // Ownership reaches node 2 through a notice; wait for it.
    for (let i = 0; i < 100 && !(await relay.agents.listAgents({})).agents.find((a) => a.agentId === agent.agentId)?.online; i++)
      await new Promise((r) => setTimeout(r, 50));
    const { sessionId } = await owner.sessions.openTunnel({ agentId: agent.agentId });

    const same: number[] = [];
    const cross: number[] = [];
    for (let i = 0; i < 20; i++) {
      await owner.exec.runCommand({ sessionId, command: "true" });
      await relay.exec.runCommand({ sessionId, command: "true" });
    }
    for (let i = 0; i < rounds; i++) {
      for (const [api, into] of i % 2 === 0
        ? ([
            [owner, same],
            [relay, cross],
          ] as const)
        : ([
            [relay, cross],
            [owner, same],
          ] as const)) {
        const started = performance.now();
        await api.exec.runCommand({ sessionId, command: "true" });
        into.push(performance.now() - started);
      }
    }
    const s50 = percentile(same, 50);
    const c50 = percentile(cross, 50);
    process.stdout.write(`command round trip (${rounds} each, interleaved)\n`);
    process.stdout.write(`  same node   p50 ${s50.toFixed(2)} ms  p99 ${percentile(same, 99).toFixed(2)} ms\n`);
    process.stdout.write(
      `  cross node  p50 ${c50.toFixed(2)} ms  p99 ${percentile(cross, 99).toFixed(2)} ms  (p50 +${(c50 - s50).toFixed(2)} ms; target within 2 ms)\n`,
    );

    const rates: Record<"same" | "cross", number[]> = { same: [], cross: [] };
    let expectedSha: string | undefined;
    for (const [label, api] of [
      ["same", owner],
      ["cross", relay],
      ["same", owner],
      ["cross", relay],
    ] as const) {
      const d = await download(api, sessionId, file);
      if (d.bytes !== sizeMiB * MiB) throw new Error(`${label}: ${d.bytes} bytes, expected ${sizeMiB * MiB}`);
      expectedSha ??= d.sha;
      if (d.sha !== expectedSha) throw new Error(`${label}: the download's hash differs`);
      rates[label].push(d.bytes / MiB / (d.ms / 1000));
    }
    const best = (xs: number[]) => Math.max(...xs);
    const sr = best(rates.same);
    const cr = best(rates.cross);
    process.stdout.write(`download of ${sizeMiB} MiB (best of 2 each, alternating)\n`);
    process.stdout.write(`  same node   ${sr.toFixed(1)} MiB/s\n`);
    process.stdout.write(`  cross node  ${cr.toFixed(1)} MiB/s  (${((cr / sr) * 100).toFixed(0)} % of same node; target at least 70 %)\n`);
    await owner.sessions.closeTunnel({ sessionId });
  } finally {
    await cluster.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await run();
