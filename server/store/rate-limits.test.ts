import { expect, it } from "vitest";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeDatabases("rate limits", (kind) => {
  const ctx = useTestStore(kind);

  // Moves a key's oldest event back in time, instead of sleeping (robust on a loaded machine).
  const ageOldest = (key: string, ms: number) =>
    ctx.testDb.db.query(
      `UPDATE rate_limit_events SET at = at - $2::float8 * interval '1 millisecond'
       WHERE key = $1 AND at = (SELECT min(at) FROM rate_limit_events WHERE key = $1)`,
      [key, ms],
    );

  it("allows up to the limit in a sliding window, then says when to retry", async () => {
    const opts = { limit: 3, windowMs: 10_000 };
    expect(await ctx.store.rateLimits.hit("k1", opts)).toEqual({ allowed: true, retryAfterMs: 0, count: 1 });
    expect(await ctx.store.rateLimits.hit("k1", opts)).toMatchObject({ allowed: true, count: 2 });
    expect(await ctx.store.rateLimits.hit("k1", opts)).toMatchObject({ allowed: true, count: 3 });
    const refused = await ctx.store.rateLimits.hit("k1", opts);
    expect(refused).toMatchObject({ allowed: false, count: 3 });
    expect(refused.retryAfterMs).toBeGreaterThan(5_000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect(await ctx.store.rateLimits.hit("other", opts)).toMatchObject({ allowed: true, count: 1 });

    // The oldest hit is now 9 s old: it leaves the window within about a second.
    await ageOldest("k1", 9_000);
    const soon = await ctx.store.rateLimits.hit("k1", opts);
    expect(soon.allowed).toBe(false);
    expect(soon.retryAfterMs).toBeLessThanOrEqual(1_000);
    // Once it has left, exactly one slot frees; the two later hits still count.
    await ageOldest("k1", 2_000);
    expect(await ctx.store.rateLimits.hit("k1", opts)).toMatchObject({ allowed: true, count: 3 });
    expect(await ctx.store.rateLimits.hit("k1", opts)).toMatchObject({ allowed: false, count: 3 });
  });

  it("frees the window after it passes (real clock)", async () => {
    const opts = { limit: 1, windowMs: 200 };
    expect((await ctx.store.rateLimits.hit("k2", opts)).allowed).toBe(true);
    const refused = await ctx.store.rateLimits.hit("k2", opts);
    expect(refused.allowed).toBe(false);
    await sleep(refused.retryAfterMs + 20);
    expect(await ctx.store.rateLimits.hit("k2", opts)).toMatchObject({ allowed: true, count: 1 });
  });

  it("is exact under concurrency: 120 racing hits with limit 100 → 100 allowed", async () => {
    const results = await Promise.all(Array.from({ length: 120 }, () => ctx.store.rateLimits.hit("burst", { limit: 100, windowMs: 60_000 })));
    expect(results.filter((r) => r.allowed)).toHaveLength(100);
    expect(results.filter((r) => !r.allowed).every((r) => r.retryAfterMs > 0 && r.count === 100)).toBe(true);
    expect((await ctx.testDb.db.query("SELECT count(*) AS n FROM rate_limit_events WHERE key = 'burst'")).rows[0].n).toBe(100);
  });

  it("sweeps old events of every key", async () => {
    await ctx.store.rateLimits.hit("sweep-me", { limit: 5, windowMs: 1000 });
    await ctx.testDb.db.query("UPDATE rate_limit_events SET at = at - interval '1 hour' WHERE key = 'sweep-me'");
    expect(await ctx.store.rateLimits.sweep(60_000)).toBe(1);
  });
});
