import { expect, it } from "vitest";
import { createFramePool } from "./frame-pool.ts";

// Sizes above Node's small-buffer slab, so every buffer owns its ArrayBuffer.
it("frame pool: reuses a buffer only after release, keeps at most maxFree, and leaves odd sizes alone", () => {
  const pool = createFramePool(64 * 1024, 1);
  const a = pool.take(60_000);
  const b = pool.take(60_000);
  expect(a.bytes.byteLength).toBe(60_000);
  expect(a.bytes.buffer).not.toBe(b.bytes.buffer); // both in use: two buffers
  a.release?.();
  a.release?.(); // a second release changes nothing
  b.release?.(); // beyond maxFree: dropped
  const c = pool.take(50_000);
  expect(c.bytes.buffer).toBe(a.bytes.buffer);
  expect(pool.take(50_000).bytes.buffer).not.toBe(a.bytes.buffer); // the pool held one only
  // Too big or too small for the pool's buffers: plain allocations, nothing to release.
  expect(pool.take(128 * 1024)).toMatchObject({ release: undefined });
  expect(pool.take(100)).toMatchObject({ release: undefined });
});
