// One listener for everything: Connect-RPC routes, the agent WebSocket,
// /healthz, /readyz and /metrics. Plain HTTP/1.1 by default; with TLS,
// HTTP/2 through ALPN (so gRPC clients work) with HTTP/1.1 kept for
// Connect, gRPC-Web and the WebSocket upgrade.
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Per-socket write buffer. Connect waits for 'drain' whenever a write
 * returns false; at Node's default of 16 KiB that is after every file chunk
 * of a download, which serialised streaming on the client's reads and cost
 * two thirds of the throughput.
 */
const socketHighWaterBytes = 1024 * 1024;

export interface ListenerOptions {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string };
  onRequest: RequestHandler;
  onUpgrade: UpgradeHandler;
}

export interface Listener {
  url: string;
  /** Stops accepting, waits for open requests, then drops idle keep-alive sockets. */
  close(): Promise<void>;
}

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const server = options.tls
    ? http2.createSecureServer(
        { cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile), allowHTTP1: true },
        options.onRequest,
      )
    : http.createServer({ highWaterMark: socketHighWaterBytes }, options.onRequest);
  server.on("upgrade", options.onUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host === "0.0.0.0" ? "127.0.0.1" : options.host;
  return {
    url: `${options.tls ? "https" : "http"}://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeIdleConnections" in server) server.closeIdleConnections();
      }),
  };
}
