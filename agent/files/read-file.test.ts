import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { open, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFilesFixture, expectGuruError, type FilesFixture } from "../../test/support/files-test-fixture.ts";
import { verifyHandleInside } from "./open-file.ts";
import { readFileRange, type ReadRangeOptions, type ReadRangeRequest } from "./read-file.ts";

const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

describe("readFileRange", () => {
  let fx: FilesFixture;
  let content: Buffer;
  beforeEach(async () => {
    fx = await createFilesFixture();
    content = randomBytes(100_000);
    await writeFile(join(fx.allowed, "data.bin"), content);
    await writeFile(join(fx.allowed, "empty"), "");
    await writeFile(join(fx.allowed, "one"), "x");
  });
  afterEach(() => fx.cleanup());

  async function readAll(request: ReadRangeRequest, options?: ReadRangeOptions) {
    const reader = await readFileRange(fx.guard, request, options);
    const chunks: { offset: number; data: Uint8Array }[] = [];
    for await (const chunk of reader.chunks()) chunks.push(chunk);
    return { reader, chunks, data: Buffer.concat(chunks.map((c) => c.data)) };
  }

  it("reads an empty file and a 1-byte file", async () => {
    const empty = await readAll({ path: "empty" });
    expect(empty.chunks).toHaveLength(0);
    expect(empty.reader.summary()).toEqual({ size: 0, bytesSent: 0, sha256: sha(Buffer.alloc(0)) });
    const one = await readAll({ path: "one" });
    expect(one.chunks).toEqual([{ offset: 0, data: Buffer.from("x") }]);
    expect(one.reader.info).toEqual({ path: join(fx.allowed, "one"), size: 1, mimeType: "text/plain" });
    expect(one.reader.summary()).toEqual({ size: 1, bytesSent: 1, sha256: sha(Buffer.from("x")) });
  });

  it("splits on chunk boundaries with correct offsets", async () => {
    for (const chunkBytes of [1000, 999, 100_000, 65_536]) {
      const { chunks, data, reader } = await readAll({ path: "data.bin" }, { chunkBytes });
      expect(data.equals(content)).toBe(true);
      expect(chunks).toHaveLength(Math.ceil(100_000 / chunkBytes));
      let expected = 0;
      for (const c of chunks) {
        expect(c.offset).toBe(expected);
        expect(c.data.length).toBeLessThanOrEqual(chunkBytes);
        expected += c.data.length;
      }
      expect(reader.summary()).toEqual({ size: 100_000, bytesSent: 100_000, sha256: sha(content) });
    }
  });

  it("reads a range by offset and length, clamped to the end, with the range's SHA-256", async () => {
    const mid = await readAll({ path: "data.bin", offset: 12_345, length: 50_000 }, { chunkBytes: 4096 });
    expect(mid.data.equals(content.subarray(12_345, 62_345))).toBe(true);
    expect(mid.chunks[0].offset).toBe(12_345);
    expect(mid.reader.summary()).toEqual({ size: 100_000, bytesSent: 50_000, sha256: sha(content.subarray(12_345, 62_345)) });
    const tail = await readAll({ path: "data.bin", offset: 99_000, length: 5_000 });
    expect(tail.data.equals(content.subarray(99_000))).toBe(true);
    const toEnd = await readAll({ path: "data.bin", offset: 40_000, length: 0 });
    expect(toEnd.data.equals(content.subarray(40_000))).toBe(true);
    const atEnd = await readAll({ path: "data.bin", offset: 100_000 });
    expect(atEnd.chunks).toHaveLength(0);
  });

  it("reads lazily: one chunk per pull, and stops cleanly when the consumer stops", async () => {
    const reader = await readFileRange(fx.guard, { path: "data.bin" }, { chunkBytes: 10_000 });
    const it = reader.chunks()[Symbol.asyncIterator]();
    await it.next();
    expect(reader.summary().bytesSent).toBe(10_000);
    expect(reader.summary().sha256).toBe(sha(content.subarray(0, 10_000)));
    await it.return?.();
    expect(reader.summary().bytesSent).toBe(10_000);
    expect(() => reader.chunks()).toThrow(/only once/);
  });

  it("stops with canceled when the signal aborts", async () => {
    const controller = new AbortController();
    const reader = await readFileRange(fx.guard, { path: "data.bin" }, { chunkBytes: 10_000, signal: controller.signal });
    const consume = (async () => {
      for await (const chunk of reader.chunks()) if (chunk.offset === 20_000) controller.abort();
    })();
    await expectGuruError(consume, "canceled");
    expect(reader.summary().bytesSent).toBe(30_000);
  });

  it("rejects bad ranges, non-files and outside paths", async () => {
    await expectGuruError(readFileRange(fx.guard, { path: "data.bin", offset: 100_001 }), "invalid");
    await expectGuruError(readFileRange(fx.guard, { path: "data.bin", offset: -1 }), "invalid");
    await expectGuruError(readFileRange(fx.guard, { path: "data.bin" }, { chunkBytes: 0 }), "invalid");
    await expectGuruError(readFileRange(fx.guard, { path: "." }), "invalid");
    await expectGuruError(readFileRange(fx.guard, { path: "missing" }), "not_found");
    await writeFile(join(fx.outside, "secret"), "s");
    await symlink(join(fx.outside, "secret"), join(fx.allowed, "escape"));
    await expectGuruError(readFileRange(fx.guard, { path: "escape" }), "denied");
  });

  it("refuses a FIFO without blocking on it", async () => {
    execFileSync("mkfifo", [join(fx.allowed, "pipe")]);
    await expectGuruError(readFileRange(fx.guard, { path: "pipe" }), "invalid");
  });

  it("checks an opened handle's real location against the guard", async () => {
    await writeFile(join(fx.outside, "secret"), "s");
    const handle = await open(join(fx.outside, "secret"), "r");
    try {
      await expectGuruError(verifyHandleInside(fx.guard, handle, join(fx.allowed, "secret")), "denied");
    } finally {
      await handle.close();
    }
    const inside = await open(join(fx.allowed, "one"), "r");
    try {
      await verifyHandleInside(fx.guard, inside, join(fx.allowed, "one"));
    } finally {
      await inside.close();
    }
  });
});
