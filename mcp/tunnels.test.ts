import { describe, expect, it } from "vitest";
import { silentLogger } from "../lib/logging.ts";
import { createTunnelManager } from "./tunnels.ts";

function fakeApi() {
  const opened: string[] = [];
  const closed: string[] = [];
  let n = 0;
  return {
    opened,
    closed,
    api: {
      async openOrReuseTunnel(agentId: string) {
        const sessionId = `s${++n}-${agentId}`;
        opened.push(sessionId);
        return { sessionId, opened: true };
      },
      async closeTunnel(sessionId: string) {
        await new Promise((r) => setTimeout(r, 20));
        closed.push(sessionId);
      },
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const web = { id: "a1", name: "web-1" };

describe("tunnel manager", () => {
  it("opens once per agent, reuses it across leases, and closes it after the idle time", async () => {
    const f = fakeApi();
    const tunnels = createTunnelManager({ api: f.api, idleMs: 50, logger: silentLogger() });
    const [a, b] = await Promise.all([tunnels.acquire(web), tunnels.acquire(web)]);
    expect(a.sessionId).toBe(b.sessionId);
    expect(f.opened).toHaveLength(1);
    a.release();
    await sleep(80);
    // Still leased by b: not idle.
    expect(f.closed).toEqual([]);
    b.release();
    await sleep(120);
    expect(f.closed).toEqual([a.sessionId]);
    expect(tunnels.holds("a1")).toBe(false);
    const c = await tunnels.acquire(web);
    expect(c.sessionId).not.toBe(a.sessionId);
    c.release();
    await tunnels.closeAll();
  });

  it("a call within the idle time keeps it open", async () => {
    const f = fakeApi();
    const tunnels = createTunnelManager({ api: f.api, idleMs: 80, logger: silentLogger() });
    for (let i = 0; i < 4; i++) {
      (await tunnels.acquire(web)).release();
      await sleep(40);
    }
    expect(f.opened).toHaveLength(1);
    expect(f.closed).toHaveLength(0);
    await tunnels.closeAll();
    expect(f.closed).toHaveLength(1);
  });

  it("closeAll closes every tunnel, waits for the calls, and refuses new leases", async () => {
    const f = fakeApi();
    const tunnels = createTunnelManager({ api: f.api, idleMs: 60_000, logger: silentLogger() });
    (await tunnels.acquire(web)).release();
    const held = await tunnels.acquire({ id: "a2", name: "db-1" });
    await tunnels.closeAll();
    expect(f.closed.sort()).toEqual(f.opened.sort());
    held.release();
    await expect(tunnels.acquire(web)).rejects.toMatchObject({ kind: "unavailable" });
  });

  it("an invalidated lease makes the next one open a new tunnel", async () => {
    const f = fakeApi();
    const tunnels = createTunnelManager({ api: f.api, idleMs: 60_000, logger: silentLogger() });
    const stale = await tunnels.acquire(web);
    stale.invalidate();
    stale.release();
    const fresh = await tunnels.acquire(web);
    expect(fresh.sessionId).not.toBe(stale.sessionId);
    fresh.release();
    await tunnels.closeAll();
  });

  it("a failed open leaves nothing behind", async () => {
    let fail = true;
    const tunnels = createTunnelManager({
      api: {
        async openOrReuseTunnel() {
          if (fail) throw Object.assign(new Error("agent web-1 is offline"), { kind: "agent_offline" });
          return { sessionId: "s", opened: true };
        },
        async closeTunnel() {},
      },
      idleMs: 60_000,
      logger: silentLogger(),
    });
    await expect(tunnels.acquire(web)).rejects.toThrow(/offline/);
    expect(tunnels.active()).toEqual([]);
    fail = false;
    const lease = await tunnels.acquire(web);
    expect(lease.sessionId).toBe("s");
    lease.release();
    await tunnels.closeAll();
  });
});
