import { describe, expect, it } from "vitest";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { createReconnectDelay } from "./reconnect-delay.ts";

describe("reconnect delay", () => {
  it("after `replaced` waits at least replacedMinMs, jittered up to twice it, doubling while it repeats, capped", () => {
    const low = createReconnectDelay({ backoff: { maxMs: 60_000 }, replacedMinMs: 60_000, replacedMaxMs: 240_000, random: () => 0 });
    expect([1, 2, 3, 4, 5].map(() => low.next(closeCodes.replaced))).toEqual([
      { delayMs: 60_000, replaced: true },
      { delayMs: 120_000, replaced: true },
      { delayMs: 240_000, replaced: true },
      { delayMs: 240_000, replaced: true },
      { delayMs: 240_000, replaced: true },
    ]);
    const high = createReconnectDelay({ backoff: { maxMs: 60_000 }, replacedMinMs: 60_000, random: () => 0.999 });
    expect(high.next(closeCodes.replaced).delayMs).toBe(119_940);
  });

  it("a connection in between does not shorten the replaced pause; another close code goes back to the ordinary backoff", () => {
    const delay = createReconnectDelay({ backoff: { maxMs: 60_000 }, replacedMinMs: 1000, random: () => 0 });
    delay.next(closeCodes.replaced);
    delay.connected();
    expect(delay.next(closeCodes.replaced)).toEqual({ delayMs: 2000, replaced: true });
    expect(delay.next(closeCodes.heartbeatTimeout)).toEqual({ delayMs: 0, replaced: false });
    expect(delay.next(closeCodes.replaced)).toEqual({ delayMs: 1000, replaced: true });
  });

  it("ordinary losses use the reconnect backoff: at once at start, quick and spread after a lost link", () => {
    const delay = createReconnectDelay({ backoff: { maxMs: 60_000, spreadMs: 5000, now: () => 0 }, replacedMinMs: 60_000, random: () => 0.5 });
    expect(delay.next(undefined).delayMs).toBe(0);
    delay.connected();
    delay.linkLost();
    expect(delay.next(closeCodes.goingAway).delayMs).toBe(2500);
    delay.failed(3000);
    expect(delay.next(undefined).delayMs).toBe(3500);
  });
});
