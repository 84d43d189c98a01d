// The cluster tests' front door: a real HAProxy configured from
// deploy/haproxy.cfg (haproxy.ts) or, where HAProxy cannot run, a plain TCP
// balancer standing in for it, so agents still spread over the nodes and move
// when one dies or drains.
import net from "node:net";
import { haproxyMissing, startHaproxy, type HaproxyBackend, type TestHaproxy } from "./haproxy.ts";

export interface FrontDoor {
  url: string;
  /** The real HAProxy, when it runs here: its log tells when it takes a node out of the rotation or back. */
  haproxy?: TestHaproxy;
  close(): Promise<void>;
}

const missing = haproxyMissing();

/** What the tests run behind, for their titles. */
export const frontDoorName = missing ? `a TCP balancer standing in for HAProxy (${missing})` : "HAProxy (deploy/haproxy.cfg)";

export async function startFrontDoor(backends: HaproxyBackend[], options: { checkInterMs?: number } = {}): Promise<FrontDoor> {
  if (missing) return startTcpBalancer(() => backends.map((b) => b.url));
  const haproxy = await startHaproxy({ backends, checkInterMs: options.checkInterMs });
  return { url: haproxy.url, haproxy, close: haproxy.close };
}

/**
 * A plain TCP load balancer on loopback: each connection goes to the first
 * backend (in turn) that accepts it, so a dead backend is skipped, as a real
 * balancer's health check would.
 */
async function startTcpBalancer(backends: () => string[]): Promise<{ url: string; close(): Promise<void> }> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.pause();
    const list = backends();
    const tryBackend = (attempt: number) => {
      if (attempt >= list.length) return client.destroy();
      const target = new URL(list[(next + attempt) % list.length]);
      const upstream = net.connect(Number(target.port), target.hostname);
      upstream.once("error", () => tryBackend(attempt + 1));
      upstream.once("connect", () => {
        next = (next + attempt + 1) % list.length;
        upstream.removeAllListeners("error");
        sockets.add(upstream);
        upstream.on("close", () => sockets.delete(upstream));
        upstream.on("error", () => client.destroy());
        client.on("error", () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      });
    };
    tryBackend(0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
