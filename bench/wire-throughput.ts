// Wire engine throughput: a bulk download (agent → server, the agent in a
// child process as in production) through Link, beside raw `ws` messages on
// the same loopback in the same run. While the bulk runs, the server sends
// small exec requests on the same link and records their round trip.
//
//   node bench/wire-throughput.ts [MiB] [rounds]    prints a table; measureWireThroughput() returns it.
import { fork } from "node:child_process";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import WebSocket, { WebSocketServer } from "ws";
import { silentLogger } from "../lib/logging.ts";
import { wireSubprotocol, wsFrameSocket } from "../lib/wire/frame-socket.ts";
import { createLink } from "../lib/wire/link.ts";
import { create } from "@bufbuild/protobuf";
import { ExecResultSchema } from "../gen/guru/wire/v1/exec_pb.js";
import { FileReadResultSchema } from "../gen/guru/wire/v1/files_pb.js";
import type { ChannelOpen } from "../gen/guru/wire/v1/wire_pb.js";
import type { Channel } from "../lib/wire/link.ts";
import { execOpen, fileReadOpen, percentile } from "../test/support/link-test-kit.ts";
import { defaultWireLimits, type WireLimits } from "../lib/wire/limits.ts";
import { wsLinkOptions } from "../test/support/ws-pair.ts";

export interface WireThroughputRow {
  name: string;
  mbPerSecond: number;
  /** Throughput divided by the raw `ws` figure of the same run. */
  ratioToRaw: number;
  pingP50Ms?: number;
  pingP99Ms?: number;
  pings?: number;
  serverRssGrowthMiB: number;
}

const MiB = 1024 * 1024;

export const defaultSettings: Partial<WireLimits>[] = [
  { chunkBytes: 64 * 1024, initialWindowBytes: 1 * MiB },
  { chunkBytes: 256 * 1024, initialWindowBytes: 2 * MiB },
  { chunkBytes: 256 * 1024, initialWindowBytes: 4 * MiB },
  { chunkBytes: 1 * MiB, initialWindowBytes: 8 * MiB },
];

/**
 * Runs raw and every setting `rounds` times, interleaved so a noisy neighbour
 * hits all alike, and reports each one's median round (by throughput).
 */
export async function measureWireThroughput(
  options: { totalBytes?: number; settings?: Partial<WireLimits>[]; rounds?: number } = {},
): Promise<WireThroughputRow[]> {
  const totalBytes = options.totalBytes ?? 1024 * MiB;
  const rounds = options.rounds ?? 3;
  const cases: { name: string; mode: "raw" | "link"; limits: WireLimits }[] = [
    { name: "raw ws, 256 KiB messages", mode: "raw", limits: { ...defaultWireLimits, chunkBytes: 256 * 1024 } },
  ];
  for (const setting of options.settings ?? defaultSettings) {
    const limits = { ...defaultWireLimits, ...setting, maxFrameBytes: Math.max(defaultWireLimits.maxFrameBytes, (setting.chunkBytes ?? 0) + 4096) };
    cases.push({ name: `link, ${limits.chunkBytes / 1024} KiB chunks, ${limits.initialWindowBytes / MiB} MiB window`, mode: "link", limits });
  }
  const results = cases.map(() => [] as Awaited<ReturnType<typeof run>>[]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, c] of cases.entries()) results[i].push(await run(c.mode, c.limits, totalBytes));
  }
  const medians = results.map((list) => [...list].sort((a, b) => a.mbPerSecond - b.mbPerSecond)[Math.floor(list.length / 2)]);
  return cases.map((c, i) => ({ name: c.name, ratioToRaw: medians[i].mbPerSecond / medians[0].mbPerSecond, ...medians[i] }));
}

async function run(mode: "raw" | "link", limits: WireLimits, totalBytes: number) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, ...wsLinkOptions(limits), handleProtocols: () => wireSubprotocol });
  await new Promise((resolve) => wss.once("listening", resolve));
  const { port } = wss.address() as AddressInfo;
  const child = fork(fileURLToPath(import.meta.url), ["--agent", mode, String(port), JSON.stringify(limits), String(totalBytes)], { stdio: "inherit" });
  const ws = await new Promise<WebSocket>((resolve) => wss.once("connection", resolve));
  const rssStart = process.memoryUsage().rss;
  let rssPeak = rssStart;
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);
  const started = performance.now();
  let pings: number[] = [];
  if (mode === "raw") {
    let received = 0;
    await new Promise<void>((resolve) =>
      ws.on("message", (data: Buffer) => {
        received += data.byteLength;
        if (received >= totalBytes) resolve();
      }),
    );
  } else {
    const link = createLink({ socket: wsFrameSocket(ws), role: "server", limits, logger: silentLogger(), onControl: () => {} });
    let bulkDone = false;
    const pinger = (async () => {
      const samples: number[] = [];
      while (!bulkDone) {
        const t0 = performance.now();
        await count(link.openChannel(execOpen("ping")));
        samples.push(performance.now() - t0);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return samples;
    })();
    const bytes = await count(link.openChannel(fileReadOpen(totalBytes)));
    bulkDone = true;
    pings = await pinger;
    if (bytes !== totalBytes) throw new Error(`bulk moved ${bytes} of ${totalBytes} bytes`);
    link.close(1000, "bench done");
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(rssTimer);
  ws.terminate();
  await new Promise((resolve) => child.once("exit", resolve));
  await new Promise((resolve) => wss.close(resolve));
  return {
    mbPerSecond: totalBytes / 1e6 / seconds,
    serverRssGrowthMiB: (rssPeak - rssStart) / MiB,
    ...(pings.length > 0 ? { pingP50Ms: percentile(pings, 50), pingP99Ms: percentile(pings, 99), pings: pings.length } : {}),
  };
}

/** Reads a channel to its end, counting data bytes; no hashing, so the figure is the wire's. */
async function count(channel: Channel): Promise<number> {
  let bytes = 0;
  for await (const message of channel.messages()) if (message.type === "data") bytes += message.data.byteLength;
  return bytes;
}

const pattern = Buffer.alloc(4 * MiB, 7);

/** Agent handler: exec answers at once; fileRead sends `length` bytes in 4 MiB calls. */
function benchHandler(channel: Channel, open: ChannelOpen): void {
  void (async () => {
    if (open.request.case === "fileRead") {
      const length = Number(open.request.value.length);
      for (let sent = 0; sent < length; sent += pattern.byteLength) {
        await channel.sendData(pattern.subarray(0, Math.min(pattern.byteLength, length - sent)));
      }
      channel.sendResult({ case: "fileRead", value: create(FileReadResultSchema, { bytesSent: BigInt(length) }) });
    } else {
      channel.sendResult({ case: "exec", value: create(ExecResultSchema, {}) });
    }
  })().catch(() => {});
}

/** The agent side, in the child process. */
async function agentMain(mode: string, port: number, limits: WireLimits, totalBytes: number): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/agent`, wireSubprotocol, wsLinkOptions(limits));
  await new Promise((resolve) => ws.once("open", resolve));
  const closed = new Promise((resolve) => ws.once("close", resolve));
  if (mode === "raw") {
    // The same backpressure a well-behaved raw sender would use: wait while ws holds a high-water mark.
    const message = Buffer.alloc(limits.chunkBytes, 7);
    let sent = 0;
    while (sent < totalBytes) {
      while (ws.bufferedAmount < limits.socketHighWaterBytes && sent < totalBytes) {
        const n = Math.min(message.byteLength, totalBytes - sent);
        sent += n;
        ws.send(message.subarray(0, n));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  } else {
    createLink({ socket: wsFrameSocket(ws), role: "agent", limits, logger: silentLogger(), onControl: () => {}, onChannelOpen: benchHandler });
  }
  await closed;
  process.exit(0);
}

if (process.argv[2] === "--agent") {
  const [, , , mode, port, limits, total] = process.argv;
  await agentMain(mode, Number(port), JSON.parse(limits) as WireLimits, Number(total));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await measureWireThroughput({ totalBytes: Number(process.argv[2] ?? 1024) * MiB, rounds: Number(process.argv[3] ?? 3) });
  for (const row of rows) {
    const ping = row.pingP99Ms === undefined ? "" : `  ping p50 ${row.pingP50Ms!.toFixed(2)} ms p99 ${row.pingP99Ms.toFixed(2)} ms (${row.pings})`;
    process.stdout.write(
      `${row.name.padEnd(44)} ${row.mbPerSecond.toFixed(0).padStart(6)} MB/s  ×${row.ratioToRaw.toFixed(2)}  rss +${row.serverRssGrowthMiB.toFixed(1)} MiB${ping}\n`,
    );
  }
}
