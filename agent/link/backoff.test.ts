import { describe, expect, it } from "vitest";
import { createBackoff } from "./backoff.ts";

describe("backoff", () => {
  it("grows exponentially under a cap, with full jitter", () => {
    const ceilings: number[] = [];
    const backoff = createBackoff({ baseMs: 100, maxMs: 60_000, random: () => 0.999999 });
    for (let i = 0; i < 12; i++) ceilings.push(backoff.next());
    expect(ceilings.slice(0, 4)).toEqual([99, 199, 399, 799]);
    expect(Math.max(...ceilings)).toBeLessThan(60_000);
    expect(ceilings.at(-1)).toBe(59_999);
  });

  it("draws from the whole range and starts small after reset", () => {
    const backoff = createBackoff({ baseMs: 100, maxMs: 60_000, random: () => 0 });
    for (let i = 0; i < 5; i++) expect(backoff.next()).toBe(0);
    const high = createBackoff({ baseMs: 100, maxMs: 60_000, random: () => 0.5 });
    high.next();
    high.next();
    high.reset();
    expect(high.next()).toBe(50);
  });
});
