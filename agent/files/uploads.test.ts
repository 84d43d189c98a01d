import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, mkdir, readdir, readFile, stat, symlink, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import { createFilesFixture, expectGuruError, uploadRequest, type FilesFixture } from "../../test/support/files-test-fixture.ts";
import { tempPathFor } from "./upload-state.ts";
import { createUploadManager, type OpenUploadRequest, type UploadManager } from "./uploads.ts";

const MiB = 1024 * 1024;
const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe("uploads", () => {
  let fx: FilesFixture;
  let stateDir: string;
  let clock: number;
  const newManager = () => createUploadManager({ stateDir, logger: silentLogger(), keepBackupDefault: true, abandonedAfterMs: 60_000, now: () => clock });
  let uploads: UploadManager;
  const request = uploadRequest;

  beforeEach(async () => {
    fx = await createFilesFixture();
    stateDir = join(fx.root, "state");
    clock = Date.now();
    uploads = newManager();
  });
  afterEach(() => fx.cleanup());

  async function upload(path: string, content: Uint8Array, chunkBytes: number, extra: Partial<OpenUploadRequest> = {}) {
    const writer = await uploads.open(fx.guard, request(path, content, extra));
    for (let offset = writer.committedOffset; offset < content.length; offset += chunkBytes) {
      expect(await writer.write(offset, content.subarray(offset, offset + chunkBytes))).toBe(Math.min(offset + chunkBytes, content.length));
    }
    return writer.finish();
  }

  it("round-trips empty, 1-byte and chunk-boundary files", async () => {
    for (const [name, content, chunk] of [
      ["empty", Buffer.alloc(0), 1024],
      ["one", Buffer.from("z"), 1024],
      ["exact", randomBytes(3 * 4096), 4096],
      ["ragged", randomBytes(3 * 4096 + 1), 4096],
    ] as const) {
      const result = await upload(name, content, chunk, { uploadId: `id-${name}` });
      expect(result).toEqual({ size: content.length, sha256: sha(content), backupPath: "", path: join(fx.allowed, name) });
      expect((await readFile(join(fx.allowed, name))).equals(content)).toBe(true);
    }
    // Nothing left behind: no temp files, no records.
    expect((await readdir(fx.allowed)).sort()).toEqual(["empty", "exact", "one", "ragged"]);
    expect(await readdir(stateDir)).toEqual([]);
  });

  it("writes a 200 MiB file in 1 MiB chunks with bounded memory and the right SHA-256", async () => {
    const size = 200 * MiB;
    const expected = createHash("sha256");
    const chunks: Buffer[] = [];
    // 8 distinct random chunks reused in a pattern: cheap to make, still detects misplaced bytes.
    for (let i = 0; i < 8; i++) chunks.push(randomBytes(MiB));
    const chunkAt = (i: number) => chunks[(i * 5 + (i >> 3)) % 8];
    for (let i = 0; i < size / MiB; i++) expected.update(chunkAt(i));
    const digest = expected.digest("hex");

    const writer = await uploads.open(fx.guard, { uploadId: "big", path: "big.bin", size, sha256: digest, overwrite: false });
    let rssAfterWarmup = 0;
    let rssMax = 0;
    for (let i = 0; i < size / MiB; i++) {
      await writer.write(i * MiB, chunkAt(i));
      if (i === 16) rssAfterWarmup = process.memoryUsage.rss();
      if (i > 16) rssMax = Math.max(rssMax, process.memoryUsage.rss());
    }
    const result = await writer.finish();
    expect(result.sha256).toBe(digest);
    expect(rssMax - rssAfterWarmup).toBeLessThan(48 * MiB);
    const onDisk = createHash("sha256");
    for await (const part of createReadStream(join(fx.allowed, "big.bin"), { highWaterMark: MiB })) onDisk.update(part as Buffer);
    expect(onDisk.digest("hex")).toBe(digest);
  }, 120_000);

  it("resumes after close() in a new manager (an agent restart) and ends byte-identical", async () => {
    const content = randomBytes(1_000_003);
    const first = await uploads.open(fx.guard, request("doc.bin", content));
    await first.write(0, content.subarray(0, 400_000));
    await first.close();
    await expectGuruError(first.write(400_000, content.subarray(400_000)), "failed_precondition");
    const temp = tempPathFor(join(fx.allowed, "doc.bin"), "up-1");
    expect(temp).toBe(join(fx.allowed, ".doc.bin.guru-upload-up-1"));
    expect((await stat(temp)).size).toBe(400_000);

    uploads = newManager();
    const second = await uploads.open(fx.guard, request("doc.bin", content));
    expect(second.committedOffset).toBe(400_000);
    await second.write(400_000, content.subarray(400_000));
    const result = await second.finish();
    expect(result.sha256).toBe(sha(content));
    expect((await readFile(join(fx.allowed, "doc.bin"))).equals(content)).toBe(true);
    expect(await exists(temp)).toBe(false);
  });

  it("trusts the temp file's real length over anything remembered", async () => {
    const content = randomBytes(300_000);
    const first = await uploads.open(fx.guard, request("doc.bin", content));
    await first.write(0, content.subarray(0, 200_000));
    await first.close();
    // A torn tail (power cut): the file is shorter than what was acknowledged.
    await truncate(tempPathFor(join(fx.allowed, "doc.bin"), "up-1"), 123_456);
    const second = await newManager().open(fx.guard, request("doc.bin", content));
    expect(second.committedOffset).toBe(123_456);
    await second.write(123_456, content.subarray(123_456));
    expect((await second.finish()).sha256).toBe(sha(content));
  });

  it("takes over an upload reopened while its old writer is still open", async () => {
    const content = randomBytes(10_000);
    const stale = await uploads.open(fx.guard, request("t", content));
    await stale.write(0, content.subarray(0, 5_000));
    const fresh = await uploads.open(fx.guard, request("t", content));
    expect(fresh.committedOffset).toBe(5_000);
    await expectGuruError(stale.write(5_000, content.subarray(5_000)), "failed_precondition");
    // The stale link's late cancel must not delete the partial the fresh one is writing.
    await expectGuruError(stale.abort(), "failed_precondition");
    // An open of the same id for another file is refused and does not disturb the live writer.
    await expectGuruError(uploads.open(fx.guard, request("other", content)), "conflict");
    await fresh.write(5_000, content.subarray(5_000));
    expect((await fresh.finish()).sha256).toBe(sha(content));
  });

  it("accepts pipelined writes in order and refuses a wrong offset or too many bytes", async () => {
    const content = randomBytes(30_000);
    const writer = await uploads.open(fx.guard, request("p", content));
    const [a, b] = await Promise.all([writer.write(0, content.subarray(0, 10_000)), writer.write(10_000, content.subarray(10_000, 20_000))]);
    expect([a, b]).toEqual([10_000, 20_000]);
    const wrong = await expectGuruError(writer.write(25_000, content.subarray(25_000)), "failed_precondition");
    expect(wrong.message).toBe("expected offset 20000");
    await expectGuruError(writer.write(20_000, Buffer.alloc(10_001)), "too_large");
    expect(writer.committedOffset).toBe(20_000);
    await writer.write(20_000, content.subarray(20_000));
    expect((await writer.finish()).size).toBe(30_000);
  });

  it("refuses to finish with wrong bytes: data_loss, target untouched, partial discarded", async () => {
    await writeFile(join(fx.allowed, "target"), "old content");
    const content = randomBytes(50_000);
    const writer = await uploads.open(fx.guard, request("target", content, { overwrite: true }));
    const corrupted = Buffer.from(content);
    corrupted[777] ^= 1;
    await writer.write(0, corrupted);
    const err = await expectGuruError(writer.finish(), "data_loss");
    expect(err.message).toBe(`SHA-256 mismatch: expected ${sha(content)}, got ${sha(corrupted)}; nothing was replaced`);
    expect(await readFile(join(fx.allowed, "target"), "utf8")).toBe("old content");
    expect((await readdir(fx.allowed)).sort()).toEqual(["target"]);
    expect(await readdir(stateDir)).toEqual([]);
    await expectGuruError(writer.finish(), "failed_precondition");
    // The same id starts over from zero.
    const again = await uploads.open(fx.guard, request("target", content, { overwrite: true }));
    expect(again.committedOffset).toBe(0);
    await again.abort();
  });

  it("takes the SHA-256 at finish when opened without one, also after a restart, and checks it the same way", async () => {
    const content = randomBytes(10_000);
    const writer = await uploads.open(fx.guard, request("late.bin", content, { uploadId: "late", sha256: "" }));
    await writer.write(0, content.subarray(0, 4000));
    await writer.close();
    // The restarted agent resumes it with no hash known yet.
    uploads = newManager();
    const resumed = await uploads.open(fx.guard, request("late.bin", content, { uploadId: "late", sha256: "" }));
    expect(resumed.committedOffset).toBe(4000);
    await resumed.write(4000, content.subarray(4000));
    await expect(resumed.finish()).rejects.toMatchObject({ kind: "invalid", metadata: { field: "sha256" } });
    await expect(resumed.finish("not hex")).rejects.toMatchObject({ kind: "invalid" });
    // Refusals for a missing or malformed hash leave the upload open.
    expect(await resumed.finish(sha(content).toUpperCase())).toMatchObject({ size: content.length, sha256: sha(content) });
    expect((await readFile(join(fx.allowed, "late.bin"))).equals(content)).toBe(true);

    const declared = await uploads.open(fx.guard, request("declared.bin", content, { uploadId: "declared" }));
    await declared.write(0, content);
    await expect(declared.finish("0".repeat(64))).rejects.toMatchObject({ kind: "invalid", metadata: { field: "sha256" } });
    expect(await declared.finish(sha(content))).toMatchObject({ sha256: sha(content) });

    const wrong = await uploads.open(fx.guard, request("wrong.bin", content, { uploadId: "wrong", sha256: "" }));
    await wrong.write(0, content);
    await expect(wrong.finish("0".repeat(64))).rejects.toMatchObject({ kind: "data_loss", reason: "UPLOAD_CHECKSUM_MISMATCH" });
    await expect(readFile(join(fx.allowed, "wrong.bin"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses to finish a short upload (failed_precondition) but keeps it resumable, also across a restart", async () => {
    const content = randomBytes(10_000);
    const writer = await uploads.open(fx.guard, request("short", content));
    await writer.write(0, content.subarray(0, 6_000));
    const err = await expectGuruError(writer.finish(), "failed_precondition");
    expect(err.message).toBe("upload incomplete: 6000 of 10000 bytes committed; send the rest from offset 6000; nothing was replaced");
    expect(err.details).toMatchObject({ committedOffset: 6000, size: 10_000 });
    expect(await exists(join(fx.allowed, "short"))).toBe(false);
    await writer.write(6_000, content.subarray(6_000, 8_000));
    await expectGuruError(writer.finish(), "failed_precondition");
    // The handler closes the writer after a refused finish; an agent restart resumes from the bytes kept.
    await writer.close();
    const resumed = await newManager().open(fx.guard, request("short", content));
    expect(resumed.committedOffset).toBe(8_000);
    await resumed.write(8_000, content.subarray(8_000));
    expect((await resumed.finish()).sha256).toBe(sha(content));
    expect((await readFile(join(fx.allowed, "short"))).equals(content)).toBe(true);
    expect(await readdir(stateDir)).toEqual([]);
  });

  it("refuses to overwrite without overwrite: at open, and when the file appears meanwhile", async () => {
    await writeFile(join(fx.allowed, "exists"), "keep me");
    await expectGuruError(uploads.open(fx.guard, request("exists", Buffer.from("new"))), "conflict");
    const content = Buffer.from("new content");
    const writer = await uploads.open(fx.guard, request("late", content));
    await writer.write(0, content);
    await writeFile(join(fx.allowed, "late"), "someone else's");
    await expectGuruError(writer.finish(), "conflict");
    expect(await readFile(join(fx.allowed, "late"), "utf8")).toBe("someone else's");
    expect(await readFile(join(fx.allowed, "exists"), "utf8")).toBe("keep me");
  });

  it("keeps the old file as a backup (with its mode carried over), or not when asked", async () => {
    const target = join(fx.allowed, "conf.ini");
    await writeFile(target, "v1");
    await chmod(target, 0o640);
    const first = await upload("conf.ini", Buffer.from("v2"), 1024, { overwrite: true, uploadId: "a" });
    expect(first.backupPath).toMatch(/conf\.ini\.guru-backup-\d{8}T\d{9}Z$/);
    expect(await readFile(first.backupPath, "utf8")).toBe("v1");
    expect(await readFile(target, "utf8")).toBe("v2");
    expect((await stat(target)).mode & 0o777).toBe(0o640);
    const second = await upload("conf.ini", Buffer.from("v3"), 1024, { overwrite: true, uploadId: "b" });
    expect(second.backupPath).not.toBe(first.backupPath);
    expect(await readFile(second.backupPath, "utf8")).toBe("v2");
    const third = await upload("conf.ini", Buffer.from("v4"), 1024, { overwrite: true, uploadId: "c", keepBackup: false });
    expect(third.backupPath).toBe("");
    expect((await readdir(fx.allowed)).filter((n) => n.includes("guru-backup"))).toHaveLength(2);
  });

  it("abort removes the temp file and the record", async () => {
    const content = randomBytes(5_000);
    const writer = await uploads.open(fx.guard, request("gone", content));
    await writer.write(0, content.subarray(0, 1_000));
    await writer.abort();
    expect(await readdir(fx.allowed)).toEqual([]);
    expect(await readdir(stateDir)).toEqual([]);
    expect((await newManager().open(fx.guard, request("gone", content))).committedOffset).toBe(0);
  });

  it("sweeps partials idle for abandonedAfterMs, and only those", async () => {
    const content = randomBytes(5_000);
    for (const id of ["old-1", "old-2", "busy"]) {
      const writer = await uploads.open(fx.guard, request(`f-${id}`, content, { uploadId: id }));
      await writer.write(0, content.subarray(0, 100));
      if (id !== "busy") await writer.close();
    }
    expect(await uploads.sweepAbandoned()).toBe(0);
    clock += 61_000;
    expect(await uploads.sweepAbandoned()).toBe(2);
    expect(await readdir(fx.allowed)).toEqual([".f-busy.guru-upload-busy"]);
    expect(await readdir(stateDir)).toEqual(["busy.json"]);
  });

  it("refuses bad targets and bad requests", async () => {
    const c = Buffer.from("x");
    await mkdir(join(fx.allowed, "dir"));
    await expectGuruError(uploads.open(fx.guard, request("dir", c, { overwrite: true })), "invalid");
    await expectGuruError(uploads.open(fx.guard, request("../outside/x", c)), "denied");
    await expectGuruError(uploads.open(fx.guard, request("no/such/dir/x", c)), "not_found");
    await symlink(join(fx.outside, "victim"), join(fx.allowed, "escape"));
    await expectGuruError(uploads.open(fx.guard, request("escape", c, { overwrite: true })), "denied");
    await expectGuruError(uploads.open(fx.guard, request("x", c, { uploadId: "../evil" })), "invalid");
    await expectGuruError(uploads.open(fx.guard, request("x", c, { sha256: "abc" })), "invalid");
    await expectGuruError(uploads.open(fx.guard, request("x", c, { size: -1 })), "invalid");
    const writer = await uploads.open(fx.guard, request("x", c));
    await writer.close();
    await expectGuruError(uploads.open(fx.guard, request("y", c)), "conflict"); // same id, another file
    expect(await exists(join(fx.outside, "victim"))).toBe(false);
  });

  it("refuses a symlink to outside swapped in at the target before finish", async () => {
    await writeFile(join(fx.outside, "victim"), "precious");
    const content = Buffer.from("payload");
    const writer = await uploads.open(fx.guard, request("swap", content, { overwrite: true }));
    await writer.write(0, content);
    await symlink(join(fx.outside, "victim"), join(fx.allowed, "swap"));
    await expectGuruError(writer.finish(), "denied");
    expect(await readFile(join(fx.outside, "victim"), "utf8")).toBe("precious");
    await unlink(join(fx.allowed, "swap"));
    expect((await writer.finish()).path).toBe(join(fx.allowed, "swap"));
  });
});
