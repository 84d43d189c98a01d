// A real `ws` server and client on 127.0.0.1 (port 0), configured as agent
// links are: subprotocol guru.wire.v1, no compression, maxPayload from the
// limits. For the wire engine's socket tests and bench/wire-throughput.ts.
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import WebSocket, { WebSocketServer } from "ws";
import { wireSubprotocol } from "../../lib/wire/frame-socket.ts";
import { wsMaxPayloadBytes, type WireLimits } from "../../lib/wire/limits.ts";

export interface WsPair {
  /** The server's end of the connection. */
  server: WebSocket;
  /** The client's (agent's) end. */
  client: WebSocket;
  /** The socket under the client's end, as the agent's dial hands it to wsFrameSocket. */
  clientSocket: Duplex;
  /** Every socket the server accepted, to check none is left open. */
  accepted: WebSocket[];
  /** Closes both ends (terminating what is left) and the listener. */
  close(): Promise<void>;
}

/** The `ws` options agent links use: compression off (with permessage-deflate a link measured 24-71 MB/s and kept ≈ 240 KiB of zlib state). */
export function wsLinkOptions(limits: WireLimits) {
  return { perMessageDeflate: false, maxPayload: wsMaxPayloadBytes(limits) } as const;
}

export async function openWsPair(limits: WireLimits): Promise<WsPair> {
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
  const client = new WebSocket(`ws://127.0.0.1:${port}/agent`, wireSubprotocol, wsLinkOptions(limits));
  let clientSocket: Duplex | undefined;
  client.once("upgrade", (res) => (clientSocket = res.socket));
  await new Promise<void>((resolve, reject) => {
    client.once("open", resolve);
    client.once("error", reject);
  });
  const server = await serverReady;
  let closing: Promise<void> | undefined;
  return {
    server,
    client,
    clientSocket: clientSocket as Duplex,
    accepted,
    close() {
      closing ??= closeAll();
      return closing;
    },
  };

  async function closeAll(): Promise<void> {
    for (const ws of [client, ...accepted]) {
      if (ws.readyState !== WebSocket.CLOSED) {
        const closed = new Promise((resolve) => ws.once("close", resolve));
        ws.terminate();
        await closed;
      }
    }
    await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
  }
}
