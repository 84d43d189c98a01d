import { describe, expect, it } from "vitest";
import { createReconnectBackoff } from "./backoff.ts";

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("reconnect backoff", () => {
  it("redials at once on start, then within the spread after a link that was up ends", () => {
    const c = clock();
    const backoff = createReconnectBackoff({ maxMs: 60_000, random: () => 0.999999, now: c.now });
    expect(backoff.nextDelayMs()).toBe(0);
    backoff.connected();
    c.advance(3_600_000);
    backoff.linkLost();
    // Not up to the 60 s cap: at most the 5 s spread, whatever the attempt history.
    expect(backoff.nextDelayMs()).toBe(4_999);
  });

  it("spreads the first redial over [0, spreadMs) (full jitter), never above maxMs", () => {
    const draws = [0, 0.25, 0.5, 0.999];
    const delays = draws.map((r) => {
      const backoff = createReconnectBackoff({ maxMs: 60_000, random: () => r });
      backoff.connected();
      backoff.linkLost();
      return backoff.nextDelayMs();
    });
    expect(delays).toEqual([0, 1250, 2500, 4995]);
    const small = createReconnectBackoff({ maxMs: 500, random: () => 0.999 });
    small.linkLost();
    expect(small.nextDelayMs()).toBeLessThan(500);
  });

  it("while unreachable, the ceiling is half the time offline, capped at maxMs", () => {
    const c = clock();
    const backoff = createReconnectBackoff({ maxMs: 60_000, random: () => 0.999999, now: c.now });
    backoff.linkLost();
    backoff.nextDelayMs();
    const ceilings: number[] = [];
    let offlineMs = 0;
    for (const at of [2_000, 20_000, 60_000, 200_000]) {
      c.advance(at - offlineMs);
      offlineMs = at;
      backoff.failed();
      ceilings.push(backoff.nextDelayMs());
    }
    // 2 s offline: the 5 s spread still applies; 20 s: 10 s; 60 s: 30 s; 200 s: the cap.
    expect(ceilings).toEqual([4_999, 9_999, 29_999, 59_999]);
  });

  it("follows the server's Retry-After with up to a second of jitter, capped at maxMs", () => {
    const backoff = createReconnectBackoff({ maxMs: 60_000, random: () => 0.5 });
    backoff.failed(7_000);
    expect(backoff.nextDelayMs()).toBe(7_500);
    backoff.failed(300_000);
    expect(backoff.nextDelayMs()).toBe(60_000);
    // A plain failure afterwards goes back to the time-based ceiling.
    backoff.failed();
    expect(backoff.nextDelayMs()).toBeLessThan(5_000);
  });

  it("10,000 agents dropped together come back spread over the window, not in one burst", () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const perSecond = new Array(5).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const backoff = createReconnectBackoff({ maxMs: 60_000, random });
      backoff.connected();
      backoff.linkLost();
      perSecond[Math.floor(backoff.nextDelayMs() / 1000)]++;
    }
    for (const n of perSecond) expect(n).toBeGreaterThan(1_700);
    for (const n of perSecond) expect(n).toBeLessThan(2_300);
  });
});
