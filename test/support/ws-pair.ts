// A real `ws` server on 127.0.0.1 (port 0), configured as agent links are:
// subprotocol guru.wire.v1, no compression, maxPayload from the limits; the
// client end is either a `ws` client (to send what an agent never would) or
// the agent's own dial. For the wire engine's socket tests and
// bench/wire-throughput.ts.
import type { AddressInfo } from "node:net";
import { dialServer } from "../../agent/link/dial.ts";
import type { WsClientSocket } from "../../lib/wire/ws-client-socket.ts";
import WebSocket, { WebSocketServer } from "ws";
import { wireSubprotocol } from "../../lib/wire/frame-socket.ts";
import { wsMaxPayloadBytes, type WireLimits } from "../../lib/wire/limits.ts";

export interface WsPair {
  /** The server's end of the connection. */
  server: WebSocket;
  /** The client's (agent's) end. */
  client: WebSocket;
  /** Every socket the server accepted, to check none is left open. */
  accepted: WebSocket[];
  /** Closes both ends (terminating what is left) and the listener. */
  close(): Promise<void>;
}

/** The `ws` options agent links use: compression off (with permessage-deflate a link measured 24-71 MB/s and kept ≈ 240 KiB of zlib state). */
export function wsLinkOptions(limits: WireLimits) {
  return { perMessageDeflate: false, maxPayload: wsMaxPayloadBytes(limits) } as const;
}

async function listen(limits: WireLimits) {
  const accepted: WebSocket[] = [];
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    ...wsLinkOptions(limits),
    handleProtocols: (protocols) => (protocols.has(wireSubprotocol) ? wireSubprotocol : false),
  });
  await new Promise<void>((resolve, reject) => {
    wss.once("listening", resolve);
    wss.once("error", reject);
  });
  const serverReady = new Promise<WebSocket>((resolve) =>
    wss.on("connection", (ws) => {
      accepted.push(ws);
      resolve(ws);
    }),
  );
  const { port } = wss.address() as AddressInfo;
  const closeServer = async (clientClosed: Promise<unknown>) => {
    await clientClosed;
    for (const ws of accepted) {
      if (ws.readyState !== WebSocket.CLOSED) {
        const closed = new Promise((resolve) => ws.once("close", resolve));
        ws.terminate();
        await closed;
      }
    }
    await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
  };
  return { accepted, serverReady, port, closeServer };
}

export async function openWsPair(limits: WireLimits): Promise<WsPair> {
  const { accepted, serverReady, port, closeServer } = await listen(limits);
  const client = new WebSocket(`ws://127.0.0.1:${port}/agent`, wireSubprotocol, wsLinkOptions(limits));
  await new Promise<void>((resolve, reject) => {
    client.once("open", resolve);
    client.once("error", reject);
  });
  const server = await serverReady;
  let closing: Promise<void> | undefined;
  return {
    server,
    client,
    accepted,
    close() {
      closing ??= closeAll();
      return closing;
    },
  };

  async function closeAll(): Promise<void> {
    await closeServer(
      client.readyState === WebSocket.CLOSED
        ? Promise.resolve()
        : new Promise((resolve) => {
            client.once("close", resolve);
            client.terminate();
          }),
    );
  }
}

/** A `ws` server's end and the agent's own client end (agent/link/dial.ts), as agent links run. */
export interface AgentPair {
  server: WebSocket;
  agent: WsClientSocket;
  accepted: WebSocket[];
  close(): Promise<void>;
}

export async function openAgentPair(limits: WireLimits): Promise<AgentPair> {
  const { accepted, serverReady, port, closeServer } = await listen(limits);
  const agent = await dialServer({
    serverUrl: `http://127.0.0.1:${port}`,
    key: "test-key",
    maxPayloadBytes: wsMaxPayloadBytes(limits),
    pooledMessageBytes: limits.maxFrameBytes,
    timeoutMs: 5000,
  });
  const server = await serverReady;
  let closing: Promise<void> | undefined;
  return {
    server,
    agent,
    accepted,
    close() {
      closing ??= closeServer(
        agent.isClosed
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              agent.onClose(() => resolve());
              agent.terminate();
            }),
      );
      return closing;
    },
  };
}
