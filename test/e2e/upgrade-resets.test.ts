// A peer that resets its connection right after the server refused its
// WebSocket upgrade (HAProxy does, after a draining node's 503) must not crash
// the server: Node hands an upgrade's socket over with no 'error' listener.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { useServerProcess } from "../support/server-process-fixture.ts";

/** Sends an upgrade request, waits for the start of the answer, then resets the connection; resolves with the status line. */
function upgradeThenReset(url: string, path: string, headers: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.from("0123456789abcdef").toString("base64")}\r\n${headers}\r\n`,
      );
    });
    socket.once("data", (d: Buffer) => {
      socket.resetAndDestroy();
      resolve(d.toString().split("\r\n")[0]);
    });
    socket.once("error", reject);
  });
}

describe("upgrade sockets reset by the peer [pglite]", () => {
  const s = useServerProcess("pglite");

  it("refused upgrades (bad agent key, wrong subprotocol, unknown path) reset by the client leave the server serving", async () => {
    const refusals = [
      ["/agent", "Sec-WebSocket-Protocol: guru.wire.v1\r\nAuthorization: Bearer nope\r\n", "401"],
      ["/agent", "Sec-WebSocket-Protocol: other\r\n", "400"],
      ["/nowhere", "", "404"],
    ];
    for (let round = 0; round < 5; round++) {
      for (const [path, headers, status] of refusals) expect(await upgradeThenReset(s.url, path, headers)).toContain(` ${status} `);
    }
    // The resets reach the server after its answer; give them a moment to be noticed.
    await new Promise((r) => setTimeout(r, 200));
    expect(s.server.child.exitCode).toBeNull();
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    await s.runThroughHealthyAgent("after-resets");
  });
});
