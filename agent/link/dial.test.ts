// The agent's WebSocket client against real servers on 127.0.0.1: a `ws`
// server as the product runs it, and raw HTTP servers that answer the upgrade
// wrongly, refuse it, or never answer.
import { createServer, type Server } from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type WebSocket from "ws";
import { WebSocketServer } from "ws";
import { GuruError } from "../../lib/errors.ts";
import { wireSubprotocol } from "../../lib/wire/frame-socket.ts";
import { defaultWireLimits, wsMaxPayloadBytes } from "../../lib/wire/limits.ts";
import type { WsClientSocket } from "../../lib/wire/ws-client-socket.ts";
import { dialServer, retryAfterMsOf } from "./dial.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const dial = (port: number, timeoutMs = 5000) =>
  dialServer({
    serverUrl: `http://127.0.0.1:${port}`,
    key: "agent-key-secret",
    maxPayloadBytes: wsMaxPayloadBytes(defaultWireLimits),
    pooledMessageBytes: defaultWireLimits.maxFrameBytes,
    timeoutMs,
  });

async function wsServer(): Promise<{ port: number; connection: Promise<{ ws: WebSocket; headers: Record<string, unknown>; url: string }> }> {
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(wireSubprotocol) ? wireSubprotocol : false),
  });
  await new Promise((resolve) => wss.once("listening", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  );
  const connection = new Promise<{ ws: WebSocket; headers: Record<string, unknown>; url: string }>((resolve) =>
    wss.once("connection", (ws, req) => resolve({ ws, headers: req.headers, url: req.url ?? "" })),
  );
  return { port: (wss.address() as AddressInfo).port, connection };
}

async function rawServer(onUpgrade: (socket: net.Socket, key: string) => void, onRequest?: Server["emit"]): Promise<number> {
  const server = createServer((req, res) => (onRequest ? onRequest("request", req, res) : res.end()));
  server.on("upgrade", (req, socket: net.Socket) => onUpgrade(socket, String(req.headers["sec-websocket-key"])));
  // Upgraded sockets are no longer the HTTP server's to close.
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

function closedWith(socket: WsClientSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => socket.onClose((code, reason) => resolve({ code, reason })));
}

async function failureOf(p: Promise<unknown>): Promise<GuruError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof GuruError)) throw new Error(`expected a GuruError, got ${String(err)}`);
  return err;
}

describe("dialServer", () => {
  it("upgrades with the key in the Authorization header (never the URL) and the wire subprotocol", async () => {
    const { port, connection } = await wsServer();
    const socket = await dial(port);
    const { ws, headers, url } = await connection;
    expect(url).toBe("/agent");
    expect(headers.authorization).toBe("Bearer agent-key-secret");
    expect(ws.protocol).toBe(wireSubprotocol);
    const received = new Promise<Buffer>((resolve) => ws.once("message", resolve));
    socket.send(Buffer.from("hello"), () => {});
    expect((await received).toString()).toBe("hello");
    socket.terminate();
  });

  it("reports the server's close code and reason, and answers its close frame", async () => {
    const { port, connection } = await wsServer();
    const socket = await dial(port);
    const { ws } = await connection;
    const serverSaw = new Promise<number>((resolve) => ws.once("close", resolve));
    const closed = closedWith(socket);
    ws.close(4003, "the agent key was revoked");
    expect(await closed).toEqual({ code: 4003, reason: "the agent key was revoked" });
    // The server got our answering close frame (else `ws` would report 1006 after its timeout).
    expect(await serverSaw).toBe(4003);
    expect(socket.isClosed).toBe(true);
  });

  it("closes with its own code: the server sees it and the close completes", async () => {
    const { port, connection } = await wsServer();
    const socket = await dial(port);
    const { ws } = await connection;
    const serverSaw = new Promise<[number, string]>((resolve) => ws.once("close", (code, reason) => resolve([code, reason.toString()])));
    const closed = closedWith(socket);
    socket.close(1001, "agent shutting down");
    expect(await serverSaw).toEqual([1001, "agent shutting down"]);
    expect((await closed).code).toBe(1001);
    // Nothing may be sent after the close frame.
    const err = await new Promise<Error | undefined>((resolve) => socket.send(Buffer.from("late"), resolve));
    expect(err?.message).toMatch(/closed|closing/);
  });

  it("answers pings, and reads 1 MiB messages byte-identical", async () => {
    const { port, connection } = await wsServer();
    const socket = await dial(port);
    const { ws } = await connection;
    const pong = new Promise<Buffer>((resolve) => ws.once("pong", resolve));
    ws.ping(Buffer.from("are you there"));
    expect((await pong).toString()).toBe("are you there");
    const payloads = [1, 2, 3].map((n) => Buffer.alloc(1024 * 1024, n).fill(n + 10, 100, 200));
    const got: Buffer[] = [];
    const all = new Promise<void>((resolve) =>
      socket.onMessage((bytes, _binary, release) => {
        got.push(Buffer.from(bytes));
        release?.();
        if (got.length === payloads.length) resolve();
      }),
    );
    for (const p of payloads) ws.send(p);
    await all;
    expect(got.map((b, i) => b.equals(payloads[i]))).toEqual([true, true, true]);
    socket.terminate();
  });

  it("closes with 1002 when the server masks a frame, and with 1009 past maxPayload", async () => {
    for (const [send, code] of [
      [(ws: WebSocket) => ws.send(Buffer.from("masked"), { mask: true }), 1002],
      [(ws: WebSocket) => ws.send(Buffer.alloc(wsMaxPayloadBytes(defaultWireLimits) + 1)), 1009],
    ] as const) {
      const { port, connection } = await wsServer();
      const socket = await dial(port);
      const { ws } = await connection;
      const serverSaw = new Promise<number>((resolve) => ws.once("close", resolve));
      const closed = closedWith(socket);
      send(ws);
      const result = await closed;
      expect(result.code).toBe(code);
      expect(result.reason).not.toBe("");
      expect(await serverSaw).toBe(code);
    }
  });

  it("reads frames the server sent in the same write as its 101 answer", async () => {
    const { createHash } = await import("node:crypto");
    const port = await rawServer((socket, key) => {
      const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
      const head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${wireSubprotocol}\r\n\r\n`;
      socket.write(Buffer.concat([Buffer.from(head), Buffer.from([0x82, 5]), Buffer.from("early")]));
    });
    const socket = await dial(port);
    const got = await new Promise<string>((resolve) => socket.onMessage((bytes) => resolve(Buffer.from(bytes).toString())));
    expect(got).toBe("early");
    socket.terminate();
  });

  it("refuses a 101 whose accept value or subprotocol is wrong", async () => {
    for (const [accept, protocol, problem] of [
      ["d3Jvbmc=", wireSubprotocol, /Sec-WebSocket-Accept/],
      [undefined, "guru.wire.v0", /subprotocol/],
    ] as const) {
      const { createHash } = await import("node:crypto");
      const port = await rawServer((socket, key) => {
        const right = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept ?? right}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
        );
      });
      const err = await failureOf(dial(port));
      expect(err.kind).toBe("invalid");
      expect(err.message).toMatch(problem);
    }
  });

  it("turns a refused upgrade into the server's own explanation, with its Retry-After", async () => {
    const port = await rawServer((socket) =>
      socket.end("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 18\r\nConnection: close\r\n\r\nserver is draining"),
    );
    const busy = await failureOf(dial(port));
    expect(busy.kind).toBe("unavailable");
    expect(busy.message).toContain("server is draining");
    expect(retryAfterMsOf(busy)).toBe(3000);
    const port401 = await rawServer((socket) => socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 11\r\nConnection: close\r\n\r\nunknown key"));
    const refused = await failureOf(dial(port401));
    expect(refused.kind).toBe("unauthenticated");
    expect(refused.message).toContain("unknown key");
    expect(refused.message).not.toContain("agent-key-secret");
  });

  it("fails as unavailable when nothing listens, and when the server never answers in time", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const refused = await failureOf(dial(closedPort));
    expect(refused.kind).toBe("unavailable");
    expect(refused.message).toMatch(/nothing listens/);
    const silent = await rawServer(() => {});
    const started = Date.now();
    const timedOut = await failureOf(dial(silent, 300));
    expect(timedOut.kind).toBe("unavailable");
    expect(timedOut.message).toMatch(/in time/);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
