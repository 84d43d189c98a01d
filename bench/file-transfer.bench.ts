// File transfers through GuruTunnel: 1 GiB uploaded to and downloaded from a
// real agent through a real server (three processes: this client, `guru
// server`, `guru agent`), beside baselines measured in the same run: raw `ws`
// moving the same bytes in the same chunk size between two processes (each
// direction), and the disk's own copy. Also: peak RSS growth of server and
// agent during each transfer, and the latency of `RunCommand true` (or a Stat
// round trip) on the same agent while a `guru cp` process moves the same
// file, against idle.
//
//   node bench/file-transfer.bench.ts [MiB]     (npm run bench -- file)
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import http from "node:http";
import { create } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import WebSocket, { WebSocketServer } from "ws";
import { FileService, ReadFileResponseSchema } from "../gen/guru/api/v1/files_pb.js";
import { createApiClients, type ApiClients } from "../lib/api-client.ts";
import { downloadFile, sha256OfFile, uploadFile } from "../lib/file-transfer.ts";
import { defaultWireLimits } from "../lib/wire/limits.ts";
import { spawnGuru as spawnGuruProcess } from "../test/support/server-process.ts";

const MiB = 1024 * 1024;
const chunkBytes = defaultWireLimits.chunkBytes;

const mibPerS = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);
const pct = (samples: number[], p: number) => {
  const s = [...samples].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const print = (line: string) => process.stdout.write(`${line}\n`);

async function makeFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, "w");
  const piece = randomBytes(4 * MiB);
  for (let done = 0; done < bytes; done += piece.length) {
    piece.writeUInt32BE(done / piece.length, 0);
    await handle.write(piece, 0, Math.min(piece.length, bytes - done));
  }
  await handle.close();
}

/** The disk's own copy: read and write in 1 MiB pieces, then fsync (what the agent does, minus the network). */
async function diskCopy(src: string, dst: string): Promise<number> {
  const t0 = performance.now();
  await pipeline(createReadStream(src, { highWaterMark: MiB }), createWriteStream(dst, { highWaterMark: MiB }));
  const h = await open(dst, "r+");
  await h.sync();
  await h.close();
  return performance.now() - t0;
}

/** Raw ws between this process and a child: "up" = we send (server → client), "down" = the child sends. */
async function rawWs(direction: "up" | "down", totalBytes: number): Promise<number> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false, maxPayload: 64 * MiB });
  await new Promise((r) => wss.once("listening", r));
  const { port } = wss.address() as AddressInfo;
  const child = fork(fileURLToPath(import.meta.url), ["--raw", direction, String(port), String(totalBytes)], { stdio: "inherit" });
  const ws = await new Promise<WebSocket>((r) => wss.once("connection", r));
  const t0 = performance.now();
  if (direction === "down") {
    let received = 0;
    await new Promise<void>((resolve) =>
      ws.on("message", (d: Buffer) => {
        received += d.byteLength;
        if (received >= totalBytes) resolve();
      }),
    );
  } else {
    const done = new Promise((r) => ws.once("message", r));
    await sendRaw(ws, totalBytes);
    await done;
  }
  const ms = performance.now() - t0;
  ws.terminate();
  await new Promise((r) => child.once("exit", r));
  await new Promise((r) => wss.close(r));
  return ms;
}

/**
 * Raw ws through a relay process, the same shape as GuruTunnel's path (three
 * processes, two hops, the middle one forwarding), with no protocol, no
 * hashing and no disk: what two hops cost on this machine. "up": this
 * process → relay → a sink process (the agent's place); "down" the reverse.
 */
async function rawRelay(direction: "up" | "down", totalBytes: number): Promise<number> {
  const relay = fork(fileURLToPath(import.meta.url), ["--relay"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise<number>((r) => relay.once("message", (m) => r(m as number)));
  const sink = fork(fileURLToPath(import.meta.url), ["--relay-end", direction === "up" ? "receive" : "send", String(port), String(totalBytes)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  await new Promise((r) => sink.once("message", r)); // connected
  const ws = new WebSocket(`ws://127.0.0.1:${port}/${direction === "up" ? "in" : "out"}`, { perMessageDeflate: false, maxPayload: 64 * MiB });
  await new Promise((r) => ws.once("open", r));
  const t0 = performance.now();
  if (direction === "up") {
    const done = new Promise((r) => sink.once("message", r));
    await sendRaw(ws, totalBytes);
    await done;
  } else {
    sink.send("go");
    let received = 0;
    await new Promise<void>((resolve) =>
      ws.on("message", (d: Buffer) => {
        received += d.byteLength;
        if (received >= totalBytes) resolve();
      }),
    );
  }
  const ms = performance.now() - t0;
  ws.terminate();
  for (const child of [sink, relay]) {
    child.kill();
    await new Promise((r) => child.once("exit", r));
  }
  return ms;
}

/** The relay: forwards every message from the /in connection to the /out one, within the same high-water mark as the wire. */
async function relayChild(): Promise<void> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false, maxPayload: 64 * MiB });
  await new Promise((r) => wss.once("listening", r));
  const ends: { in?: WebSocket; out?: WebSocket } = {};
  wss.on("connection", (ws, req) => {
    const end = req.url === "/in" ? "in" : "out";
    ends[end] = ws;
    if (end === "in") ws.pause();
    if (ends.in && ends.out) {
      const [from, to] = [ends.in, ends.out];
      from.resume();
      from.on("message", (data: Buffer) => {
        to.send(data, () => {
          if (to.bufferedAmount < defaultWireLimits.socketHighWaterBytes && from.isPaused) from.resume();
        });
        if (to.bufferedAmount >= defaultWireLimits.socketHighWaterBytes) from.pause();
      });
    }
  });
  process.send?.((wss.address() as AddressInfo).port);
}

/** The relay's far end: receives everything (and says so), or sends everything once told to. */
async function relayEndChild(role: string, port: number, totalBytes: number): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/${role === "receive" ? "out" : "in"}`, { perMessageDeflate: false, maxPayload: 64 * MiB });
  await new Promise((r) => ws.once("open", r));
  if (role === "receive") {
    let received = 0;
    ws.on("message", (d: Buffer) => {
      received += d.byteLength;
      if (received >= totalBytes) process.send?.("done");
    });
    process.send?.("connected");
  } else {
    process.once("message", () => void sendRaw(ws, totalBytes));
    process.send?.("connected");
  }
}

async function sendRaw(ws: WebSocket, totalBytes: number): Promise<void> {
  const message = randomBytes(chunkBytes);
  for (let sent = 0; sent < totalBytes; ) {
    while (ws.bufferedAmount < defaultWireLimits.socketHighWaterBytes && sent < totalBytes) {
      const n = Math.min(chunkBytes, totalBytes - sent);
      ws.send(message.subarray(0, n));
      sent += n;
    }
    await new Promise((r) => setImmediate(r));
  }
}

async function rawChild(direction: string, port: number, totalBytes: number): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, maxPayload: 64 * MiB });
  await new Promise((r) => ws.once("open", r));
  const closed = new Promise((r) => ws.once("close", r));
  if (direction === "down") await sendRaw(ws, totalBytes);
  else {
    let received = 0;
    ws.on("message", (d: Buffer) => {
      received += d.byteLength;
      if (received >= totalBytes) ws.send("done");
    });
  }
  await closed;
  process.exit(0);
}

/**
 * The API layer's own ceiling: a Connect server streaming ReadFile chunks
 * of the same size from memory to a client in another process, with no
 * agent and no disk. What GuruTunnel's download adds is the difference.
 */
async function connectCeiling(totalBytes: number): Promise<number> {
  const payload = randomBytes(chunkBytes);
  const handler = connectNodeAdapter({
    routes(r) {
      r.service(FileService, {
        async *readFile() {
          for (let offset = 0; offset < totalBytes; offset += chunkBytes) {
            yield create(ReadFileResponseSchema, { event: { case: "chunk", value: { offset: BigInt(offset), data: payload } } });
          }
        },
      });
    },
  });
  const server = http.createServer({ highWaterMark: MiB }, handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const child = fork(fileURLToPath(import.meta.url), ["--connect-client", `http://127.0.0.1:${port}`], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ms = await new Promise<number>((resolve) => child.once("message", (m) => resolve(m as number)));
  await new Promise((r) => child.once("exit", r));
  await new Promise((r) => server.close(r));
  return ms;
}

async function connectClientChild(url: string): Promise<void> {
  const api = createApiClients({ url });
  const t0 = performance.now();
  for await (const _ of api.files.readFile({})) void _;
  process.send?.(performance.now() - t0);
  process.exit(0);
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** utime + stime of a process, in seconds (Linux: clock ticks of 10 ms). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak RSS growth and CPU seconds of each process while `run` runs, sampled every 20 ms. */
async function watchRss<T>(
  pids: Record<string, number>,
  run: () => Promise<T>,
): Promise<{ result: T; growthMiB: Record<string, number>; cpuS: Record<string, number> }> {
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuOf(pid)]));
  const start = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, rssOf(pid)]));
  const peak = { ...start };
  const timer = setInterval(() => {
    for (const [k, pid] of Object.entries(pids)) peak[k] = Math.max(peak[k], rssOf(pid));
  }, 20);
  try {
    const result = await run();
    return {
      result,
      growthMiB: Object.fromEntries(Object.keys(pids).map((k) => [k, (peak[k] - start[k]) / MiB])),
      cpuS: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuOf(pid) - cpu0[k]])),
    };
  } finally {
    clearInterval(timer);
  }
}

// GURU_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the server and the agent.
const benchNodeArgs = process.env.GURU_BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
const spawnGuru = (args: string[], env: Record<string, string>) => spawnGuruProcess(args, env, { nodeArgs: benchNodeArgs });

/** Round trips of a small operation on the agent, until `until` resolves (or `count` samples when idle). */
async function probeLatency(probe: () => Promise<unknown>, until: Promise<unknown> | number): Promise<number[]> {
  const samples: number[] = [];
  // GURU_BENCH_NO_PROBE=1: the transfer alone, for its CPU and throughput without the probe's load.
  if (typeof until !== "number" && process.env.GURU_BENCH_NO_PROBE) return samples;
  let stop = false;
  if (typeof until !== "number") void until.finally(() => (stop = true));
  while (typeof until === "number" ? samples.length < until : !stop) {
    const t0 = performance.now();
    await probe();
    samples.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 10));
  }
  return samples;
}

export async function run(totalMiB = Number(process.env.GURU_BENCH_FILE_MIB ?? 1024)): Promise<void> {
  const totalBytes = totalMiB * MiB;
  const dir = await mkdtemp(join(tmpdir(), "guru-bench-files-"));
  const procs: ChildProcess[] = [];
  try {
    const src = join(dir, "source.bin");
    await makeFile(src, totalBytes);
    const diskMs = await diskCopy(src, join(dir, "disk-copy.bin"));
    await rm(join(dir, "disk-copy.bin"));
    const rawUpMs = await rawWs("up", totalBytes);
    const rawDownMs = await rawWs("down", totalBytes);
    const connectMs = await connectCeiling(totalBytes);
    const relayUpMs = await rawRelay("up", totalBytes);
    const relayDownMs = await rawRelay("down", totalBytes);

    const server = spawnGuru(["server", "--port", "0", "--data-dir", join(dir, "server")], { GURU_LOG_LEVEL: "info", GURU_COMMAND_RATE_LIMIT: "1000000" });
    procs.push(server.child);
    const [, url] = await server.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
    const token = (await readFile(join(dir, "server", "admin-token"), "utf8")).trim();
    const api: ApiClients = createApiClients({ url, token });
    const { agentId, agentKey } = await api.admin.enrollAgent({ name: "bench" });
    const agentRoot = join(dir, "agent-root");
    const agent = spawnGuru(["agent", "--server", url, "--state-dir", join(dir, "agent-state"), "--allow", agentRoot], {
      GURU_AGENT_KEY: agentKey,
      GURU_LOG_LEVEL: "warn",
    });
    procs.push(agent.child);
    await import("node:fs/promises").then((fs) => fs.mkdir(agentRoot, { recursive: true }));
    while (!(await api.agents.listAgents({})).agents.find((a) => a.agentId === agentId)?.online) await new Promise((r) => setTimeout(r, 50));
    const { sessionId } = await api.sessions.openTunnel({ agentId });
    const session = async () => sessionId;

    // The latency probe: RunCommand true when the exec service answers, else a Stat round trip.
    let probeName = "RunCommand true";
    let probe: () => Promise<unknown> = () => api.exec.runCommand({ sessionId, command: "true" });
    try {
      await probe();
    } catch (err) {
      probeName = `Stat (RunCommand unavailable: ${(err as Error).message.slice(0, 60)})`;
      probe = () => api.files.stat({ sessionId, path: "." });
    }
    const idle = await probeLatency(probe, 100);

    const hashT0 = performance.now();
    const sha256 = await sha256OfFile(src);
    const hashMs = performance.now() - hashT0;
    const pids = { server: server.child.pid!, agent: agent.child.pid!, client: process.pid };

    // Throughput and memory first, each transfer alone; then the same
    // transfers again with the latency probe running beside them.
    let t0 = performance.now();
    const upRun = await watchRss(pids, () => uploadFile({ api, session, localPath: src, remotePath: "bench.bin", sha256, overwrite: true }));
    const upMs = performance.now() - t0;
    if (upRun.result.sha256 !== sha256) throw new Error("upload SHA-256 differs");

    const back = join(dir, "back.bin");
    t0 = performance.now();
    const downRun = await watchRss(pids, () => downloadFile({ api, session, remotePath: "bench.bin", localPath: back }));
    const downMs = performance.now() - t0;
    if (downRun.result.rangeSha256 !== sha256) throw new Error("download SHA-256 differs");
    await rm(back);

    // As a technician would see it: the transfer is `guru cp` in its own
    // process, the command comes from another client (this one).
    const guruCp = async (from: string, to: string) => {
      const started = performance.now();
      const cp = spawnGuru(["cp", from, to], { GURU_URL: url, GURU_TOKEN: token, GURU_CLI_STATE_DIR: join(dir, "cli-state") });
      const code = await new Promise<number | null>((resolve) => cp.child.once("exit", resolve));
      if (code !== 0) throw new Error(`guru cp ${from} ${to} exited with ${code}:\n${cp.output()}`);
      return performance.now() - started;
    };
    const upAgain = guruCp(src, `bench:${join(agentRoot, "bench-2.bin")}`);
    const upLatency = await probeLatency(probe, upAgain);
    const cpUpMs = await upAgain;
    const downAgain = guruCp(`bench:${join(agentRoot, "bench.bin")}`, back);
    const downLatency = await probeLatency(probe, downAgain);
    const cpDownMs = await downAgain;

    const rawUp = mibPerS(totalBytes, rawUpMs);
    const rawDown = mibPerS(totalBytes, rawDownMs);
    const disk = mibPerS(totalBytes, diskMs);
    const relayUp = mibPerS(totalBytes, relayUpMs);
    const relayDown = mibPerS(totalBytes, relayDownMs);
    const row = (name: string, rate: number, raw: number, relayed: number) =>
      print(
        `${name.padEnd(34)} ${rate.toFixed(0).padStart(6)} MiB/s   ×${(rate / raw).toFixed(2)} of raw ws   ×${(rate / relayed).toFixed(2)} of raw ws via a relay   ×${(rate / disk).toFixed(2)} of disk copy`,
      );
    print(`${totalMiB} MiB, ${chunkBytes / 1024} KiB wire chunks, 8 MiB UploadChunk calls (2 in flight)`);
    print(`${"disk copy (read+write+fsync)".padEnd(34)} ${disk.toFixed(0).padStart(6)} MiB/s`);
    print(`${"raw ws server→client (upload dir)".padEnd(34)} ${rawUp.toFixed(0).padStart(6)} MiB/s`);
    print(`${"raw ws client→server (download dir)".padEnd(34)} ${rawDown.toFixed(0).padStart(6)} MiB/s`);
    print(
      `${"Connect stream from memory".padEnd(34)} ${mibPerS(totalBytes, connectMs).toFixed(0).padStart(6)} MiB/s   ×${(mibPerS(totalBytes, connectMs) / rawDown).toFixed(2)} of raw ws (the API layer alone, no agent, no disk)`,
    );
    print(
      `${"raw ws via a relay, up".padEnd(34)} ${relayUp.toFixed(0).padStart(6)} MiB/s   (3 processes, 2 hops, like GuruTunnel's path; no protocol, hashing or disk)`,
    );
    print(`${"raw ws via a relay, down".padEnd(34)} ${relayDown.toFixed(0).padStart(6)} MiB/s`);
    row("guru upload (to agent disk)", mibPerS(totalBytes, upMs), rawUp, relayUp);
    row("guru download (to local disk)", mibPerS(totalBytes, downMs), rawDown, relayDown);
    print(`local SHA-256 before the upload: ${(hashMs / 1000).toFixed(2)} s (${mibPerS(totalBytes, hashMs).toFixed(0)} MiB/s; not in the upload figure)`);
    print(
      `peak RSS growth: upload server +${upRun.growthMiB.server.toFixed(1)} MiB, agent +${upRun.growthMiB.agent.toFixed(1)} MiB; download server +${downRun.growthMiB.server.toFixed(1)} MiB, agent +${downRun.growthMiB.agent.toFixed(1)} MiB (target < 64)`,
    );
    const cpu = (r: { cpuS: Record<string, number> }) =>
      Object.entries(r.cpuS)
        .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
        .join(", ");
    print(`CPU during upload: ${cpu(upRun)}; during download: ${cpu(downRun)}`);
    const lat = (name: string, s: number[]) =>
      print(`${probeName} ${name.padEnd(16)} p50 ${pct(s, 50).toFixed(1)} ms  p99 ${pct(s, 99).toFixed(1)} ms  (${s.length})`);
    lat("idle", idle);
    lat("during upload", upLatency);
    lat("during download", downLatency);
    print(
      `(during: the transfer is \`guru cp\` in its own process, ${mibPerS(totalBytes, cpUpMs).toFixed(0)} MiB/s up and ${mibPerS(totalBytes, cpDownMs).toFixed(0)} MiB/s down with the probe beside it incl. its start; the probe is this process's client, as a second technician tool would be)`,
    );
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => (p.exitCode === null ? new Promise((r) => p.once("exit", r)) : undefined)));
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--relay") {
  await relayChild();
} else if (process.argv[2] === "--relay-end") {
  await relayEndChild(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
} else if (process.argv[2] === "--connect-client") {
  await connectClientChild(process.argv[3]);
} else if (process.argv[2] === "--raw") {
  await rawChild(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await run(Number(process.argv[2] ?? 1024));
}
