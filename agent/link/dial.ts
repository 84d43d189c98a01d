// Dials the server's agent endpoint. The key travels in the Authorization
// header, never in the URL. A refused upgrade comes back as an error whose
// message is the server's own explanation (401 unknown key, 400 protocol).
import type { FrameWritable } from "../../lib/wire/masked-frames.ts";
import WebSocket from "ws";
import { GuruError } from "../../lib/errors.ts";

const wireProtocol = "guru.wire.v1";

function agentEndpoint(serverUrl: string): string {
  const url = new URL(serverUrl);
  url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
  url.pathname = `${url.pathname.replace(/\/$/, "")}/agent`;
  return url.toString();
}

/** The server's Retry-After of a refused dial (503 busy, 429), in ms; undefined when it named none. */
export function retryAfterMsOf(err: unknown): number | undefined {
  const value = err instanceof GuruError ? err.details.retryAfterMs : undefined;
  return typeof value === "number" ? value : undefined;
}

export function dialServer(options: {
  serverUrl: string;
  key: string;
  maxPayloadBytes: number;
  timeoutMs: number;
  /** The local address to dial from (the load generator spreads its sockets over 127.0.0.0/8). */
  localAddress?: string;
}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(agentEndpoint(options.serverUrl), wireProtocol, {
      headers: { authorization: `Bearer ${options.key}` },
      perMessageDeflate: false,
      maxPayload: options.maxPayloadBytes,
      handshakeTimeout: options.timeoutMs,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    ws.binaryType = "nodebuffer";
    // The TCP (or TLS) socket under the WebSocket, for writing masked frames without a copy.
    ws.once("upgrade", (res) => dialedSockets.set(ws, res.socket));
    const fail = (err: Error) => {
      ws.removeAllListeners();
      ws.on("error", () => undefined);
      ws.terminate();
      reject(err);
    };
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk.slice(0, 1024)));
      res.on("end", () => {
        const kind = res.statusCode === 401 ? "unauthenticated" : res.statusCode === 503 ? "unavailable" : "invalid";
        // Retry-After in seconds (RFC 9110); a busy server staggers the values it hands out.
        const retryAfterS = Number(res.headers["retry-after"]);
        const details = { status: res.statusCode, ...(Number.isFinite(retryAfterS) && retryAfterS >= 0 ? { retryAfterMs: retryAfterS * 1000 } : {}) };
        fail(new GuruError(kind, `the server refused the connection (HTTP ${res.statusCode}): ${body.trim() || res.statusMessage}`, { details }));
      });
    });
    ws.once("error", (err) => fail(new GuruError("unavailable", describeDialError(err, options.serverUrl), { cause: err })));
    ws.once("open", () => {
      ws.removeAllListeners("error");
      ws.removeAllListeners("unexpected-response");
      resolve(ws);
    });
  });
}

const dialedSockets = new WeakMap<WebSocket, FrameWritable>();

/** The socket a dialled WebSocket runs on (see lib/wire/masked-frames.ts). */
export function dialedSocketOf(ws: WebSocket): FrameWritable | undefined {
  return dialedSockets.get(ws);
}

function describeDialError(err: Error & { code?: string }, serverUrl: string): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return `nothing listens at ${serverUrl} (connection refused): is the server running, and is the URL right?`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `the server's host name in ${serverUrl} does not resolve`;
    case "ETIMEDOUT":
      return `no answer from ${serverUrl} in time: check the network path and firewalls`;
    default:
      return `could not connect to ${serverUrl}: ${err.message}`;
  }
}
