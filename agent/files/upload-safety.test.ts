// Uploads and what they leave on disk: modes (private temp files, no setuid on
// placed content) and no-replace placement racing a file created meanwhile.
import { createHash, randomBytes } from "node:crypto";
import { chmod, link, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import { createFilesFixture, expectGuruError, uploadRequest, type FilesFixture } from "../../test/support/files-test-fixture.ts";
import { tempPathFor } from "./upload-state.ts";
import type { UploadWriterHooks } from "./upload-writer.ts";
import { createUploadManager } from "./uploads.ts";

const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const modeOf = async (p: string) => (await stat(p)).mode & 0o7777;
const exdev = () => Object.assign(new Error("EXDEV: cross-device link not permitted"), { code: "EXDEV" });

describe("upload safety", () => {
  let fx: FilesFixture;
  let stateDir: string;
  const manager = (extra: { newFileMode?: number; writerHooks?: UploadWriterHooks } = {}) =>
    createUploadManager({ stateDir, logger: silentLogger(), keepBackupDefault: true, abandonedAfterMs: 60_000, ...extra });
  const request = uploadRequest;

  beforeEach(async () => {
    fx = await createFilesFixture();
    stateDir = join(fx.root, "state");
  });
  afterEach(() => fx.cleanup());

  it("keeps the temp file 0600 while the upload is in progress, and the state dir 0700", async () => {
    const content = randomBytes(4096);
    const writer = await manager().open(fx.guard, request("report.pdf", content));
    await writer.write(0, content.subarray(0, 1000));
    const temp = tempPathFor(join(fx.allowed, "report.pdf"), "up-1");
    expect(await modeOf(temp)).toBe(0o600);
    expect(await modeOf(stateDir)).toBe(0o700);
    expect(await modeOf(join(stateDir, "up-1.json"))).toBe(0o600);
    await writer.close();
    // A temp file someone made readable is private again on resume.
    await chmod(temp, 0o644);
    const resumed = await manager().open(fx.guard, request("report.pdf", content));
    expect(await modeOf(temp)).toBe(0o600);
    await resumed.write(1000, content.subarray(1000));
    await resumed.finish();
    expect(await modeOf(join(fx.allowed, "report.pdf"))).toBe(0o644);
  });

  it("gives a new file newFileMode (default 0644), never the temp file's 0600", async () => {
    const a = Buffer.from("a");
    await (await manager().open(fx.guard, request("default", a, { uploadId: "a" }))).write(0, a);
    const writerB = await manager({ newFileMode: 0o640 }).open(fx.guard, request("group", a, { uploadId: "b" }));
    await writerB.write(0, a);
    await writerB.finish();
    const writerA = await manager().open(fx.guard, request("default", a, { uploadId: "a" }));
    await writerA.finish();
    expect(await modeOf(join(fx.allowed, "default"))).toBe(0o644);
    expect(await modeOf(join(fx.allowed, "group"))).toBe(0o640);
  });

  for (const [label, oldMode, expected] of [
    ["setuid", 0o4755, 0o755],
    ["setgid", 0o2750, 0o750],
    ["setuid+setgid+sticky", 0o7711, 0o711],
  ] as const) {
    it(`replacing a ${label} file keeps its permission bits without setuid/setgid/sticky, the backup too`, async () => {
      const target = join(fx.allowed, "tool");
      await writeFile(target, "#!/bin/sh\necho old\n");
      await chmod(target, oldMode);
      expect(await modeOf(target)).toBe(oldMode);
      const content = Buffer.from("#!/bin/sh\necho technician's\n");
      const writer = await manager().open(fx.guard, request("tool", content, { overwrite: true }));
      await writer.write(0, content);
      const result = await writer.finish();
      expect((await readFile(target)).equals(content)).toBe(true);
      expect(await modeOf(target)).toBe(expected);
      expect(await readFile(result.backupPath, "utf8")).toBe("#!/bin/sh\necho old\n");
      expect(await modeOf(result.backupPath)).toBe(expected);
    });
  }

  it("refuses (conflict) when the target is created between the check and the placement, leaving that file intact", async () => {
    const content = Buffer.from("uploaded bytes");
    const target = join(fx.allowed, "race.txt");
    const writerHooks: UploadWriterHooks = { beforePlace: async (p) => writeFile(p, "created meanwhile") };
    const writer = await manager({ writerHooks }).open(fx.guard, request("race.txt", content));
    await writer.write(0, content);
    const err = await expectGuruError(writer.finish(), "conflict");
    expect(err.message).toBe('"race.txt" was created meanwhile and overwrite is false; nothing was replaced');
    expect(await readFile(target, "utf8")).toBe("created meanwhile");
    // The verified bytes stay for another try (with overwrite, or after the other file goes).
    expect((await readFile(tempPathFor(target, "up-1"))).equals(content)).toBe(true);
    expect(await readdir(stateDir)).toEqual(["up-1.json"]);
  });

  it("without hard links, places by an exclusive copy: refuses a file created meanwhile, else places verified bytes", async () => {
    const content = randomBytes(100_000);
    const raced = join(fx.allowed, "raced.bin");
    const noLinks: UploadWriterHooks = { link: async () => Promise.reject(exdev()) };
    const racing: UploadWriterHooks = { ...noLinks, beforePlace: async (p) => writeFile(p, "someone else's") };
    const writer = await manager({ writerHooks: racing }).open(fx.guard, request("raced.bin", content, { uploadId: "r" }));
    await writer.write(0, content);
    await expectGuruError(writer.finish(), "conflict");
    expect(await readFile(raced, "utf8")).toBe("someone else's");
    expect((await readFile(tempPathFor(raced, "r"))).equals(content)).toBe(true);

    const placed = join(fx.allowed, "placed.bin");
    const second = await manager({ writerHooks: noLinks }).open(fx.guard, request("placed.bin", content, { uploadId: "p" }));
    await second.write(0, content);
    const result = await second.finish();
    expect(result.sha256).toBe(sha(content));
    expect((await readFile(placed)).equals(content)).toBe(true);
    expect(await modeOf(placed)).toBe(0o644);
    expect(await readdir(fx.allowed)).not.toContain(tempPathFor(placed, "p").split("/").at(-1));
  });

  it("with hard links, the placed file is the verified temp file itself (same inode)", async () => {
    const content = Buffer.from("linked");
    let tempIno = 0;
    const writerHooks: UploadWriterHooks = {
      link: async (from, to) => {
        tempIno = (await stat(from)).ino;
        await link(from, to);
      },
    };
    const writer = await manager({ writerHooks }).open(fx.guard, request("linked.txt", content));
    await writer.write(0, content);
    await writer.finish();
    expect((await stat(join(fx.allowed, "linked.txt"))).ino).toBe(tempIno);
  });
});
