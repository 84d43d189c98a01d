// The load generator's process: thousands of simulated agents (sim-agent.ts)
// in one Node process, driven over IPC by a bench. Its own process, so the
// server's RSS and CPU are measured without it (and each process stays under
// the machine's open-file limit). Sockets are spread over loopback addresses
// 127.0.0.2, 127.0.0.3, … (all of 127/8 reaches lo on Linux), a few thousand
// each, so ephemeral ports never run out, TIME_WAIT included.
//
// Messages in: start {serverUrl, seed, count, perAddress, dialConcurrency,
// backoffMaxMs}, reconnectForever, heartbeats {send}, counters, ticks {on},
// stop. Out: {reply: <request id>, ...} and, with ticks on, {tick: {...}} each second.
import WebSocket from "ws";
import { silentLogger } from "../../lib/logging.ts";
import { simAgentKey } from "./agent-keys.ts";
import { SimAgent, type SwarmCounters } from "./sim-agent.ts";

interface Request {
  id: number;
  type: "start" | "startRaw" | "reconnectForever" | "heartbeats" | "counters" | "ticks" | "stop";
  [key: string]: unknown;
}

const counters: SwarmCounters = { online: 0, connects: 0, dialFailures: 0, busyRefusals: 0, linkCloses: 0, heartbeatAcks: 0, execs: 0 };
const agents: SimAgent[] = [];
const logger = silentLogger();
let tickTimer: NodeJS.Timeout | undefined;
const rawSockets: WebSocket[] = [];

const send = (message: unknown) => process.send?.(message);
const snapshot = () => ({ ...counters, total: agents.length, rssBytes: process.memoryUsage.rss(), atMs: Date.now() });

async function start(req: Request): Promise<unknown> {
  const count = Number(req.count);
  const perAddress = Number(req.perAddress ?? 2_000);
  const concurrency = Number(req.dialConcurrency ?? 64);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const octet = 2 + Math.floor(i / perAddress);
    agents.push(
      new SimAgent({
        serverUrl: String(req.serverUrl),
        key: simAgentKey(String(req.seed), i),
        localAddress: `127.0.${Math.floor(octet / 250)}.${2 + (octet % 250)}`,
        logger,
        counters,
        backoffMaxMs: Number(req.backoffMaxMs ?? 60_000),
      }),
    );
  }
  // The first connection of each, at a bounded number of dials in flight; a refused one is retried a few times.
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < agents.length) {
      const agent = agents[next++];
      let result: "connected" | "failed" | "closed" = "failed";
      for (let attempt = 0; attempt < 5 && result !== "connected"; attempt++) {
        result = await agent.connectOnce();
        if (result !== "connected") await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
      if (result !== "connected") failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ...snapshot(), failed, connectMs: performance.now() - started };
}

/** Plain `ws` clients for the baseline: a 6-byte message every intervalMs, the echo counted as an ack. */
async function startRaw(req: Request): Promise<unknown> {
  const count = Number(req.count);
  const intervalMs = Number(req.intervalMs);
  const perAddress = Number(req.perAddress ?? 2_000);
  const started = performance.now();
  let next = 0;
  const payload = Buffer.from([0x62, 0x04, 0x08, 0x01, 0x00, 0x00]);
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const octet = 2 + Math.floor(i / perAddress);
      const ws = new WebSocket(String(req.url), { perMessageDeflate: false, localAddress: `127.0.${Math.floor(octet / 250)}.${2 + (octet % 250)}` });
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      ws.on("error", () => undefined);
      ws.on("message", () => counters.heartbeatAcks++);
      ws.on("close", () => counters.online--);
      counters.online++;
      rawSockets.push(ws);
      setTimeout(() => {
        const timer = setInterval(() => ws.readyState === ws.OPEN && ws.send(payload), intervalMs);
        ws.on("close", () => clearInterval(timer));
      }, Math.random() * intervalMs);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return { ...snapshot(), total: count, failed: count - counters.online, connectMs: performance.now() - started };
}

async function handle(req: Request): Promise<unknown> {
  switch (req.type) {
    case "start":
      return start(req);
    case "startRaw":
      return startRaw(req);
    case "reconnectForever":
      for (const a of agents) a.runForever();
      return snapshot();
    case "heartbeats":
      // Restarted at random points of an interval, as links that came up at different times would be.
      for (const a of agents) {
        if (req.send === true) setTimeout(() => a.setHeartbeatSending(true), Math.random() * Number(req.spreadMs ?? 0));
        else a.setHeartbeatSending(false);
      }
      return snapshot();
    case "counters":
      return snapshot();
    case "ticks":
      clearInterval(tickTimer);
      if (req.on === true) tickTimer = setInterval(() => send({ tick: snapshot() }), 1000);
      return snapshot();
    case "stop":
      clearInterval(tickTimer);
      for (const a of agents) a.stop();
      for (const ws of rawSockets) ws.terminate();
      setTimeout(() => process.exit(0), 500).unref();
      return snapshot();
  }
}

process.on("message", (req: Request) => {
  handle(req).then(
    (result) => send({ reply: req.id, result }),
    (err: unknown) => send({ reply: req.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
// The bench that started us is gone: so are we.
process.on("disconnect", () => process.exit(0));
