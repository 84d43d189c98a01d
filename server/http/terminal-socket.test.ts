// The terminal socket's own limits on a real listener and real WebSockets:
// sockets that have not opened a terminal are bounded, and the open message
// has a deadline.
import http from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { afterEach, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import { GuruError } from "../../lib/errors.ts";
import { createTerminalSocketServer } from "./terminal-socket.ts";

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function listen(options: { maxPendingOpens?: number; openTimeoutMs?: number }) {
  const sockets = createTerminalSocketServer({
    terminals: { open: async () => Promise.reject(new GuruError("internal", "not in this test")) },
    authenticate: async () => Promise.reject(new GuruError("unauthenticated", "no token accepted here")),
    logger: silentLogger(),
    ...options,
  });
  const server = http.createServer();
  server.on("upgrade", (req, socket, head) => sockets.handleUpgrade(req, socket, head));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  close = async () => {
    await sockets.close();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/terminal`;
}

function connect(url: string): Promise<{ ws: WebSocket; texts: string[]; closed: Promise<number> } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, "guru.terminal.v1");
    const texts: string[] = [];
    const closed = new Promise<number>((r) => ws.on("close", (code) => r(code)));
    ws.on("message", (d: Buffer) => void texts.push(d.toString()));
    ws.on("unexpected-response", (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.on("open", () => resolve({ ws, texts, closed }));
    ws.on("error", reject);
  });
}

it("answers 503 past maxPendingOpens, and takes sockets again once one has sent its open", async () => {
  const url = await listen({ maxPendingOpens: 1 });
  const first = await connect(url);
  expect("ws" in first).toBe(true);
  expect(await connect(url)).toEqual({ status: 503 });
  if (!("ws" in first)) return;
  first.ws.send(JSON.stringify({ open: { token: "x", sessionId: "y" } }));
  expect(await first.closed).toBe(1000);
  expect(JSON.parse(first.texts[0])).toEqual({ error: { code: "unauthenticated", message: "no token accepted here" } });
  const third = await connect(url);
  expect("ws" in third).toBe(true);
  if ("ws" in third) third.ws.close();
});

it("closes a socket that sends no open message in time, with the reason", async () => {
  const url = await listen({ openTimeoutMs: 200 });
  const quiet = await connect(url);
  if (!("ws" in quiet)) throw new Error("refused");
  expect(await quiet.closed).toBe(1000);
  expect(JSON.parse(quiet.texts[0]).error).toMatchObject({ code: "unauthenticated", message: "no open message within 200 ms" });
});
