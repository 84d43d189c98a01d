import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createPooledFileWriter } from "./pooled-file-writer.ts";

const KiB = 1024;

/** A file in memory whose writes complete only when the test lets them. */
function slowFile(size: number) {
  const bytes = Buffer.alloc(size);
  const queued: { data: Uint8Array; position: number; done: () => void; fail: (err: unknown) => void }[] = [];
  const buffersSeen = new Set<ArrayBufferLike>();
  const positions: number[] = [];
  let maxQueued = 0;
  return {
    bytes,
    queued,
    buffersSeen,
    positions,
    get maxQueued() {
      return maxQueued;
    },
    write(data: Uint8Array, position: number) {
      buffersSeen.add(data.buffer);
      positions.push(position);
      return new Promise<void>((done, fail) => {
        queued.push({ data, position, done, fail });
        maxQueued = Math.max(maxQueued, queued.length);
      });
    },
    /** Completes the oldest write, copying its bytes only now: the buffer must not have been reused meanwhile. */
    completeOne() {
      const w = queued.shift();
      if (w === undefined) return false;
      bytes.set(w.data, w.position);
      w.done();
      return true;
    },
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("pooled file writer", () => {
  it("writes every piece in place, one write at a time and in order, through a bounded set of buffers, asking for a wait while they are all taken", async () => {
    const data = randomBytes(200 * KiB + 7);
    const file = slowFile(1000 + data.byteLength);
    const writer = createPooledFileWriter({ write: (d, at) => file.write(d, at), position: 1000, maxPieceBytes: 16 * KiB, bufferBytes: 32 * KiB, buffers: 3 });
    let waits = 0;
    for (let at = 0, i = 0; at < data.byteLength; i++) {
      // The caller's views are overwritten after each call, as a socket's read buffer is.
      const view = Buffer.from(data.subarray(at, at + [1, 16 * KiB, 5000, 333][i % 4]));
      at += view.byteLength;
      const wait = writer.take(view);
      view.fill(0);
      if (wait === undefined) continue;
      waits++;
      let resumed = false;
      void wait.then(() => (resumed = true));
      await settle();
      // All but the buffer being filled wait for the disk, one write under way: nothing frees until it completes.
      expect(file.queued.length).toBe(1);
      expect(resumed).toBe(false);
      file.completeOne();
      await settle();
      expect(resumed).toBe(true);
    }
    const flushed = writer.flush();
    while (file.completeOne()) await settle();
    await flushed;
    expect(waits).toBeGreaterThan(0);
    expect(file.buffersSeen.size).toBeLessThanOrEqual(3);
    // The file only ever grows by a whole prefix: a process killed meanwhile leaves no hole below the end.
    expect(file.maxQueued).toBe(1);
    expect(file.positions).toEqual(file.positions.map((_, i) => 1000 + i * 32 * KiB));
    expect(file.bytes.subarray(1000).equals(data)).toBe(true);
  });

  it("reports the bytes of each completed write", async () => {
    const written: number[] = [];
    const writer = createPooledFileWriter({ write: async () => {}, position: 0, maxPieceBytes: 100, bufferBytes: 1000, onWritten: (n) => written.push(n) });
    for (let i = 0; i < 25; i++) await writer.take(Buffer.alloc(100));
    await writer.flush();
    expect(written).toEqual([1000, 1000, 500]);
  });

  it("fails the wait, the next piece and the flush with a write's failure", async () => {
    const file = slowFile(64 * KiB);
    const writer = createPooledFileWriter({ write: (d, at) => file.write(d, at), position: 0, maxPieceBytes: 4 * KiB, bufferBytes: 8 * KiB, buffers: 2 });
    let wait: Promise<void> | undefined;
    for (let i = 0; wait === undefined && i < 100; i++) wait = writer.take(Buffer.alloc(4 * KiB, i));
    expect(wait).toBeDefined();
    await settle();
    file.queued.shift()?.fail(new Error("ENOSPC: no space left on device"));
    await expect(wait).rejects.toThrow("ENOSPC");
    expect(() => writer.take(Buffer.alloc(1))).toThrow("ENOSPC");
    await expect(writer.flush()).rejects.toThrow("ENOSPC");
    // Nothing is written past the failed write: it would follow a gap.
    expect(file.positions).toEqual([0]);
  });

  it("refuses a largest piece that could never fit", () => {
    expect(() => createPooledFileWriter({ write: async () => {}, position: 0, maxPieceBytes: 3000, bufferBytes: 1000, buffers: 2 })).toThrow(RangeError);
  });
});
