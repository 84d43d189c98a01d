// Dials the server's agent endpoint. The key travels in the Authorization
// header, never in the URL. A refused upgrade comes back as an error whose
// message is the server's own explanation (401 unknown key, 400 protocol).
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import net, { isIP, type Socket } from "node:net";
import tls from "node:tls";
import { GuruError } from "../../lib/errors.ts";
import { sharedFramePool } from "../../lib/wire/frame-pool.ts";
import { WsClientSocket } from "../../lib/wire/ws-client-socket.ts";

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

/**
 * One buffer every link's socket reads into: each read is handled (copied into
 * the messages it belongs to) before the next read, so a process needs one,
 * however many links it holds (the load generator holds thousands).
 */
const sharedReadBuffer = Buffer.allocUnsafe(64 * 1024);

/** RFC 6455 4.2.2: the accept value a server derives from our key. */
function expectedAccept(key: string): string {
  return createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
}

/** What is wrong with a 101 answer, or undefined when it completes our handshake. */
function handshakeProblem(res: http.IncomingMessage, key: string): string | undefined {
  if (String(res.headers.upgrade).toLowerCase() !== "websocket") return `Upgrade is "${res.headers.upgrade}", not "websocket"`;
  if (res.headers["sec-websocket-accept"] !== expectedAccept(key)) return "Sec-WebSocket-Accept does not match our key";
  if (res.headers["sec-websocket-protocol"] !== wireProtocol) return `the subprotocol is "${res.headers["sec-websocket-protocol"] ?? ""}", not ${wireProtocol}`;
  if (res.headers["sec-websocket-extensions"] !== undefined) return "the server chose an extension, though none was offered";
  return undefined;
}

/**
 * Dials the server's agent endpoint and completes the WebSocket upgrade.
 * Node's HTTP client does the upgrade request and reads the answer; the
 * socket under it reads into a reused buffer from the start (a socket's read
 * mode is fixed when it is made), so until the upgrade each read is handed to
 * the HTTP client as a copy, and from then on straight to the frame reader.
 */
export function dialServer(options: {
  serverUrl: string;
  key: string;
  maxPayloadBytes: number;
  /** Messages this large are read into buffers of a process-wide pool: the link's maxFrameBytes. */
  pooledMessageBytes: number;
  timeoutMs: number;
  /** The local address to dial from (the load generator spreads its sockets over 127.0.0.0/8). */
  localAddress?: string;
}): Promise<WsClientSocket> {
  const url = new URL(agentEndpoint(options.serverUrl));
  const secure = url.protocol === "wss:";
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port) || (secure ? 443 : 80);
  const key = randomBytes(16).toString("base64");
  let upgraded: WsClientSocket | undefined;
  let socket: Socket | undefined;
  const onread = {
    buffer: sharedReadBuffer,
    callback: (bytesRead: number, buffer: Uint8Array) => {
      if (upgraded) upgraded.received(buffer, 0, bytesRead);
      else socket?.emit("data", Buffer.from(buffer.subarray(0, bytesRead)));
      return true;
    },
  };
  const connect = (): Socket => {
    const local = options.localAddress === undefined ? {} : { localAddress: options.localAddress };
    // tls.connect takes `onread` as net.connect does (Node 15+); its types do not say so.
    const tlsOptions: tls.ConnectionOptions & { onread: typeof onread } = { host, port, servername: isIP(host) ? undefined : host, onread, ...local };
    socket = secure ? tls.connect(tlsOptions) : net.connect({ host, port, onread, ...local });
    return socket;
  };
  return new Promise((resolve, reject) => {
    const req = http.request({
      protocol: "http:",
      host,
      port,
      path: `${url.pathname}${url.search}`,
      createConnection: connect,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": key,
        "sec-websocket-protocol": wireProtocol,
        authorization: `Bearer ${options.key}`,
      },
    });
    const timer = setTimeout(() => {
      req.destroy(Object.assign(new Error("the WebSocket handshake timed out"), { code: "ETIMEDOUT" }));
    }, options.timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      req.destroy();
      socket?.destroy();
      reject(err);
    };
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk.slice(0, 1024)));
      res.on("error", () => {});
      res.on("end", () => {
        const kind = res.statusCode === 401 ? "unauthenticated" : res.statusCode === 503 ? "unavailable" : "invalid";
        // Retry-After in seconds (RFC 9110); a busy server staggers the values it hands out.
        const retryAfterS = Number(res.headers["retry-after"]);
        const details = { status: res.statusCode, ...(Number.isFinite(retryAfterS) && retryAfterS >= 0 ? { retryAfterMs: retryAfterS * 1000 } : {}) };
        fail(new GuruError(kind, `the server refused the connection (HTTP ${res.statusCode}): ${body.trim() || res.statusMessage}`, { details }));
      });
    });
    req.once("error", (err) => fail(new GuruError("unavailable", describeDialError(err, options.serverUrl), { cause: err })));
    req.once("upgrade", (res, upgradedSocket: Socket, head: Buffer) => {
      const problem = handshakeProblem(res, key);
      if (problem !== undefined) {
        fail(new GuruError("invalid", `${options.serverUrl} answered the agent upgrade wrongly: ${problem}`));
        return;
      }
      clearTimeout(timer);
      upgraded = new WsClientSocket(upgradedSocket, { maxPayloadBytes: options.maxPayloadBytes, pool: sharedFramePool(options.pooledMessageBytes) });
      // Frames the server sent right behind its answer, in the same read.
      if (head.byteLength > 0) upgraded.received(head, 0, head.byteLength);
      resolve(upgraded);
    });
    req.end();
  });
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
