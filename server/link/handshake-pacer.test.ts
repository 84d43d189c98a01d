import { describe, expect, it } from "vitest";
import { createHandshakePacer } from "./handshake-pacer.ts";

describe("handshake pacer", () => {
  it("hands refused agents staggered Retry-After seconds at the pace handshakes complete", async () => {
    const now = 1_000;
    const pacer = createHandshakePacer(100, () => now);
    // 100 slots, 200 ms per handshake: about 500 agents a second.
    for (let i = 0; i < 100; i++) pacer.handshakeDone(200);
    const retryAfter = Array.from({ length: 2_000 }, () => pacer.retryAfterSeconds());
    expect(retryAfter[0]).toBe(1);
    expect(retryAfter.filter((s) => s === 1).length).toBeGreaterThan(400);
    expect(retryAfter.filter((s) => s === 1).length).toBeLessThan(600);
    expect(retryAfter.at(-1)).toBe(4);
    for (let i = 1; i < retryAfter.length; i++) expect(retryAfter[i]).toBeGreaterThanOrEqual(retryAfter[i - 1]);
  });
});
