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

export interface HttpTimeouts {
  /** Time a client has to send a request's headers (HTTP/1.1). */
  headersTimeoutMs: number;
  /**
   * Time a client has to send the whole request, body included (HTTP/1.1;
   * 0: no limit). Node stops this clock once the request body is complete,
   * so a server-streaming answer (StreamCommand, ReadFile) may run longer.
   */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (HTTP/1.1). */
  keepAliveTimeoutMs: number;
  /** An HTTP/2 session without frames for this long is closed (0: never). */
  http2IdleTimeoutMs: number;
}

const defaultHttpTimeouts: HttpTimeouts = {
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
  http2IdleTimeoutMs: 2 * 3600_000,
};

export interface ListenerOptions {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string };
  timeouts?: Partial<HttpTimeouts>;
  onRequest: RequestHandler;
  onUpgrade: UpgradeHandler;
}

export interface Listener {
  url: string;
  /** Stops accepting, waits for open requests, then drops idle keep-alive sockets. */
  close(): Promise<void>;
}

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const timeouts = { ...defaultHttpTimeouts, ...options.timeouts };
  // Node refuses a headers timeout above the request timeout.
  const headersTimeout = timeouts.requestTimeoutMs > 0 ? Math.min(timeouts.headersTimeoutMs, timeouts.requestTimeoutMs) : timeouts.headersTimeoutMs;
  const http1Timeouts = {
    headersTimeout,
    requestTimeout: timeouts.requestTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    // Node checks the two timeouts above on this interval (30 s by default); short limits need a finer check.
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(Math.min(headersTimeout, timeouts.requestTimeoutMs || Infinity) / 4))),
  };
  const server = options.tls
    ? http2.createSecureServer({ cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile), allowHTTP1: true }, options.onRequest)
    : http.createServer({ highWaterMark: socketHighWaterBytes, ...http1Timeouts }, options.onRequest);
  if (server instanceof http.Server) {
    // Also set as properties: some apply only that way (keepAliveTimeout).
    server.headersTimeout = http1Timeouts.headersTimeout;
    server.requestTimeout = http1Timeouts.requestTimeout;
    server.keepAliveTimeout = http1Timeouts.keepAliveTimeout;
  } else {
    // HTTP/2 sessions: idle ones close; HTTP/1.1 connections on the same port keep Node's own defaults.
    server.setTimeout(timeouts.http2IdleTimeoutMs);
  }
  server.on("upgrade", options.onUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // A deep accept queue (the kernel caps it at net.core.somaxconn): after a
    // restart thousands of agents connect within seconds, and Node's default
    // of 511 pending connections turns a burst into resets.
    server.listen({ port: options.port, host: options.host, backlog: 4_096 }, () => {
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
