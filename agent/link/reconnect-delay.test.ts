import { describe, expect, it } from "vitest";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { createReconnectDelay } from "./reconnect-delay.ts";

describe("reconnect delay", () => {
  it("after `replaced` waits at least replacedMinMs, jittered up to twice it, doubling while it repeats, capped", () => {
    const low = createReconnectDelay({ backoff: { baseMs: 500, maxMs: 60_000 }, replacedMinMs: 60_000, replacedMaxMs: 240_000, random: () => 0 });
    expect([1, 2, 3, 4, 5].map(() => low.next(closeCodes.replaced))).toEqual([
      { delayMs: 60_000, replaced: true },
      { delayMs: 120_000, replaced: true },
      { delayMs: 240_000, replaced: true },
      { delayMs: 240_000, replaced: true },
      { delayMs: 240_000, replaced: true },
    ]);
    const high = createReconnectDelay({ backoff: { baseMs: 500, maxMs: 60_000 }, replacedMinMs: 60_000, random: () => 0.999 });
    expect(high.next(closeCodes.replaced).delayMs).toBe(119_940);
  });

  it("a connection in between does not shorten the replaced pause; another close code goes back to the ordinary backoff", () => {
    const delay = createReconnectDelay({ backoff: { baseMs: 500, maxMs: 60_000 }, replacedMinMs: 1000, random: () => 0 });
    delay.next(closeCodes.replaced);
    delay.connected();
    expect(delay.next(closeCodes.replaced)).toEqual({ delayMs: 2000, replaced: true });
    expect(delay.next(closeCodes.heartbeatTimeout)).toEqual({ delayMs: 0, replaced: false });
    expect(delay.next(closeCodes.replaced)).toEqual({ delayMs: 1000, replaced: true });
  });

  it("ordinary losses use the capped, jittered backoff, reset by a connection", () => {
    const delay = createReconnectDelay({ backoff: { baseMs: 100, maxMs: 1000 }, replacedMinMs: 60_000, random: () => 0.5 });
    expect([undefined, closeCodes.goingAway, undefined, undefined, undefined].map((c) => delay.next(c).delayMs)).toEqual([50, 100, 200, 400, 500]);
    delay.connected();
    expect(delay.next(undefined).delayMs).toBe(50);
  });
});
