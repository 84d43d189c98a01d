import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFilesFixture, expectGuruError, type FilesFixture } from "../../test/support/files-test-fixture.ts";
import { mimeTypeOf } from "./mime.ts";
import { statPath } from "./stat-path.ts";

// A complete 1×1 PNG.
const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");

describe("statPath and MIME types", () => {
  let fx: FilesFixture;
  beforeEach(async () => {
    fx = await createFilesFixture();
  });
  afterEach(() => fx.cleanup());

  it("describes files by magic numbers, extension, then content", async () => {
    const files: Record<string, Uint8Array | string> = {
      "image.bin": png, // magic wins over a misleading name
      "archive.gz": gzipSync("hello"),
      notes: "plain words, héllo\n",
      "config.json": '{"a":1}',
      "run.sh": "#!/bin/sh\necho hi\n",
      "server.log": "line\n",
      blob: Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x10]),
      latin1: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]), // not UTF-8
      empty: "",
    };
    for (const [name, content] of Object.entries(files)) await writeFile(join(fx.allowed, name), content);
    const mime = async (name: string) => (await statPath(fx.guard, name)).mimeType;
    expect(await mime("image.bin")).toBe("image/png");
    expect(await mime("archive.gz")).toBe("application/gzip");
    expect(await mime("notes")).toBe("text/plain");
    expect(await mime("config.json")).toBe("application/json");
    expect(await mime("run.sh")).toBe("text/x-shellscript");
    expect(await mime("server.log")).toBe("text/plain");
    expect(await mime("blob")).toBe("application/octet-stream");
    expect(await mime("latin1")).toBe("application/octet-stream");
    expect(await mime("empty")).toBe("text/plain");
  });

  it("tolerates a UTF-8 character cut off by the end of the sample", async () => {
    const sample = Buffer.from("ab€", "utf8").subarray(0, 4); // '€' is 3 bytes; keep 2 of them
    expect(await mimeTypeOf("x", sample)).toBe("text/plain");
  });

  it("returns the entry with size, mode, mtime and the real path", async () => {
    const file = join(fx.allowed, "a.txt");
    await writeFile(file, "12345", { mode: 0o640 });
    const result = await statPath(fx.guard, "a.txt");
    expect(result.path).toBe(file);
    expect(result.entry).toMatchObject({ name: "a.txt", type: "file", size: 5, mode: 0o640 });
    expect(Math.abs(result.entry.modifiedMs - Date.now())).toBeLessThan(60_000);
  });

  it("describes directories and follows symlinks inside the allowlist to their target", async () => {
    await mkdir(join(fx.allowed, "sub"));
    await writeFile(join(fx.allowed, "sub", "t.txt"), "t");
    await symlink(join(fx.allowed, "sub", "t.txt"), join(fx.allowed, "link"));
    const dir = await statPath(fx.guard, "sub");
    expect(dir.entry.type).toBe("dir");
    expect(dir.mimeType).toBe("inode/directory");
    const viaLink = await statPath(fx.guard, "link");
    expect(viaLink.path).toBe(join(fx.allowed, "sub", "t.txt"));
    expect(viaLink.entry).toMatchObject({ name: "t.txt", type: "file", size: 1 });
  });

  it("refuses outside paths and reports missing ones", async () => {
    await writeFile(join(fx.outside, "secret"), "s");
    await symlink(join(fx.outside, "secret"), join(fx.allowed, "escape"));
    await expectGuruError(statPath(fx.guard, "../outside/secret"), "denied");
    await expectGuruError(statPath(fx.guard, "escape"), "denied");
    await expectGuruError(statPath(fx.guard, "missing"), "not_found");
  });
});
