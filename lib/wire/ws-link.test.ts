// The core scenarios through a real `ws` WebSocketServer on 127.0.0.1
// (subprotocol guru.wire.v1, no compression) and the agent's own WebSocket
// client (or a `ws` client, to send what an agent never would), with every
// socket checked closed at the end.
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { LinkErrorCode } from "../../gen/guru/wire/v1/wire_pb.js";
import { closeCodes } from "./close-codes.ts";
import { decodeFrame, encodeDataFrame } from "./codec.ts";
import { wireSubprotocol, wsFrameSocket } from "./frame-socket.ts";
import { capturingLogger, demoAgentHandler, drain, execOpen, fileReadOpen, percentile, waitFor } from "../../test/support/link-test-kit.ts";
import { createLink, type Link } from "./link.ts";
import { defaultWireLimits } from "./limits.ts";
import { openAgentPair, openWsPair, type AgentPair, type WsPair } from "../../test/support/ws-pair.ts";

let pairs: (WsPair | AgentPair)[] = [];

const clientEndClosed = (pair: WsPair | AgentPair) => ("agent" in pair ? pair.agent.isClosed : pair.client.readyState === WebSocket.CLOSED);

afterEach(async () => {
  for (const pair of pairs) {
    // The test itself must have closed everything (a close handshake may still
    // be finishing); pair.close() would terminate leftovers, so check first.
    const allClosed = () => clientEndClosed(pair) && pair.accepted.every((ws) => ws.readyState === WebSocket.CLOSED);
    await waitFor(allClosed, 2000).catch(() => {});
    const leftOpen = !allClosed();
    await pair.close();
    expect(leftOpen, "sockets left open by the test").toBe(false);
  }
  pairs = [];
});

async function linkedOverWs(options: { heartbeat?: boolean } = {}) {
  const pair = await openAgentPair(defaultWireLimits);
  pairs.push(pair);
  expect(pair.server.protocol).toBe(wireSubprotocol);
  const fast = { intervalMs: 20, deadlineMs: 200 };
  const server = createLink({
    socket: wsFrameSocket(pair.server),
    role: "server",
    limits: defaultWireLimits,
    logger: capturingLogger().logger,
    onControl: () => {},
    heartbeat: options.heartbeat ? { ...fast, send: false } : undefined,
  });
  const agent = createLink({
    // As the agent runs: its own WebSocket client.
    socket: pair.agent,
    role: "agent",
    limits: defaultWireLimits,
    logger: capturingLogger().logger,
    onControl: () => {},
    onChannelOpen: demoAgentHandler,
    heartbeat: options.heartbeat ? { ...fast, send: true } : undefined,
  });
  return { pair, server, agent };
}

async function closeBoth(server: Link, agent: Link): Promise<void> {
  server.close(closeCodes.normal, "test over");
  await Promise.all([server.closed, agent.closed]);
}

describe("link over real ws", () => {
  it("moves 64 MiB (SHA-256 checked) while small requests on the same link stay fast", async () => {
    const { pair, server, agent } = await linkedOverWs();
    const size = 64 * 1024 * 1024;
    let bulkDone = false;
    const bulk = drain(server.openChannel(fileReadOpen(size))).then((out) => {
      bulkDone = true;
      return out;
    });
    const rtts: number[] = [];
    const pingers = [0, 1, 2].map(async () => {
      while (!bulkDone) {
        const started = performance.now();
        const out = await drain(server.openChannel(execOpen("echo:ping")));
        expect(out.bytes).toBe(4);
        rtts.push(performance.now() - started);
      }
    });
    const out = await bulk;
    await Promise.all(pingers);
    expect(out.bytes).toBe(size);
    if (out.last?.type !== "result" || out.last.result.case !== "fileRead") throw new Error("expected a file read result");
    expect(out.last.result.value.sha256).toBe(out.sha256);
    expect(
      rtts.length,
      `${rtts.length} requests during 64 MiB bulk, p50 ${percentile(rtts, 50).toFixed(2)} ms, p99 ${percentile(rtts, 99).toFixed(2)} ms`,
    ).toBeGreaterThan(3);
    await closeBoth(server, agent);
    await waitFor(() => pair.agent.isClosed && pair.server.readyState === WebSocket.CLOSED);
  });

  it("closing the link reaches the peer with its code and ends channels on both sides", async () => {
    const { pair, server, agent } = await linkedOverWs();
    const channel = server.openChannel(execOpen("wait"));
    await waitFor(() => agent.channelCount === 1);
    agent.close(closeCodes.goingAway, "agent shutting down");
    expect(await server.closed).toEqual({ code: closeCodes.goingAway, reason: "agent shutting down" });
    expect((await drain(channel)).last).toMatchObject({ type: "error", error: { kind: "agent_offline" } });
    await waitFor(() => pair.agent.isClosed && pair.server.readyState === WebSocket.CLOSED);
  });

  it("terminates a half-open link at the heartbeat deadline", async () => {
    const { pair, server, agent } = await linkedOverWs({ heartbeat: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    pair.agent.socket.pause(); // the agent stops reading: to the server it looks alive, to the agent the server went silent
    expect((await agent.closed).code).toBe(closeCodes.heartbeatTimeout);
    // The agent terminated its socket; the server sees the TCP close (1006).
    expect((await server.closed).code).toBe(closeCodes.abnormal);
    await waitFor(() => pair.agent.isClosed && pair.server.readyState === WebSocket.CLOSED);
  });

  it("answers garbage from a raw client with a LinkError frame and close 1002", async () => {
    const pair = await openWsPair(defaultWireLimits);
    pairs.push(pair);
    const { logger, lines } = capturingLogger();
    const server = createLink({ socket: wsFrameSocket(pair.server), role: "server", limits: defaultWireLimits, logger, onControl: () => {} });
    const received: Uint8Array[] = [];
    pair.client.on("message", (data: Buffer) => received.push(data));
    const clientClosed = new Promise<number>((resolve) => pair.client.once("close", resolve));
    pair.client.send(encodeDataFrame(7, new Uint8Array(3), 0n, 0));
    expect(await clientClosed).toBe(closeCodes.protocolError);
    expect((await server.closed).code).toBe(closeCodes.protocolError);
    const frame = decodeFrame(received[0], Infinity);
    expect(frame.kind.case === "linkError" && frame.kind.value.code).toBe(LinkErrorCode.UNKNOWN_CHANNEL);
    expect(lines.some((l) => l.level === 40)).toBe(true);
  });

  it("answers text with close 1003 and an oversized frame with FRAME_TOO_LARGE and 1009", async () => {
    for (const [send, code] of [
      [(ws: WebSocket) => ws.send("hello", { binary: false }), closeCodes.unsupportedData],
      [(ws: WebSocket) => ws.send(new Uint8Array(defaultWireLimits.maxFrameBytes + 1)), closeCodes.frameTooLarge],
    ] as const) {
      const pair = await openWsPair(defaultWireLimits);
      pairs.push(pair);
      const server = createLink({
        socket: wsFrameSocket(pair.server),
        role: "server",
        limits: defaultWireLimits,
        logger: capturingLogger().logger,
        onControl: () => {},
      });
      const clientClosed = new Promise<number>((resolve) => pair.client.once("close", resolve));
      send(pair.client);
      expect(await clientClosed).toBe(code);
      expect((await server.closed).code).toBe(code);
    }
  });
});
