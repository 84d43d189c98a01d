import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createWriteBehindSync } from "./write-behind-sync.ts";

describe("write-behind sync", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "guru-write-behind-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("asks a real file for a datasync every N bytes written, one at a time, and the bytes are all there", async () => {
    const file = await open(join(dir, "f.bin"), "w");
    let started = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const counted = {
      datasync: async () => {
        started++;
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          await file.datasync();
        } finally {
          inFlight--;
        }
      },
    };
    const sync = createWriteBehindSync(counted, 4096);
    const block = Buffer.alloc(1024, 1);
    for (let i = 0; i < 64; i++) {
      await file.write(block, 0, block.length, i * block.length);
      sync.wrote(block.length);
      if (i % 8 === 7) await sync.settle();
    }
    await sync.settle();
    await file.sync();
    await file.close();
    // Every 4 KiB: at most 16 over 64 KiB, fewer when one was still running.
    expect(started).toBeGreaterThanOrEqual(8);
    expect(started).toBeLessThanOrEqual(16);
    expect(maxInFlight).toBe(1);
    expect((await readFile(join(dir, "f.bin"))).equals(Buffer.alloc(64 * 1024, 1))).toBe(true);
  });

  it("does not sync below the threshold", async () => {
    let started = 0;
    const sync = createWriteBehindSync({ datasync: async () => void started++ }, 1000);
    sync.wrote(999);
    await sync.settle();
    expect(started).toBe(0);
    sync.wrote(1);
    await sync.settle();
    expect(started).toBe(1);
  });

  it("keeps a background failure for settle, since the final fsync may no longer see it", async () => {
    const eio = Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
    let calls = 0;
    const sync = createWriteBehindSync(
      {
        datasync: async () => {
          calls++;
          throw eio;
        },
      },
      10,
    );
    sync.wrote(10);
    await expect(sync.settle()).rejects.toBe(eio);
    // No more background syncs after a failure; settle keeps failing with the first error.
    sync.wrote(100);
    await expect(sync.settle()).rejects.toBe(eio);
    expect(calls).toBe(1);
  });
});
