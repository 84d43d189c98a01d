// The race the handle checks exist for: a directory swapped for a symlink to
// outside between the guard's answer and open(), simulated through the test
// hooks, with both ways of checking an open handle (the Linux /proc/self/fd
// path, and the identity check used where there is none).
import { mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/logging.ts";
import { createFilesFixture, expectGuruError, type FilesFixture } from "../../test/support/files-test-fixture.ts";
import { listDirectory } from "./list-directory.ts";
import { createHandleChecks, openDirectory, openRegularFile, type HandleChecks } from "./open-file.ts";
import { readFileRange } from "./read-file.ts";
import { statPath } from "./stat-path.ts";
import { createUploadManager } from "./uploads.ts";

for (const procFd of [true, false]) {
  describe(`handle checks (${procFd ? "/proc/self/fd" : "identity: dev/ino against a fresh stat"})`, () => {
    let fx: FilesFixture;
    let inside: string;
    let moved: string;
    let outsideTwin: string;

    beforeEach(async () => {
      fx = await createFilesFixture();
      inside = join(fx.allowed, "d");
      moved = join(fx.allowed, "d-moved");
      outsideTwin = join(fx.outside, "d");
      await mkdir(inside);
      await mkdir(outsideTwin);
      // The same names on both sides, so only the checks can tell them apart.
      await writeFile(join(inside, "f.txt"), "inside");
      await writeFile(join(outsideTwin, "f.txt"), "SECRET");
      await writeFile(join(outsideTwin, "secret-only.txt"), "SECRET");
    });
    afterEach(() => fx.cleanup());

    /** Swaps allowed/d for a symlink to outside/d. */
    const swapOut = async () => {
      await rename(inside, moved);
      await symlink(outsideTwin, inside);
    };
    /** Undoes swapOut. */
    const swapBack = async () => {
      await rm(inside);
      await rename(moved, inside);
    };
    const checks = (hooks: Partial<Pick<HandleChecks, "beforeOpen" | "afterOpen">>) => createHandleChecks({ procFd, dirHandles: true, ...hooks });

    it("opens and lists normally when nothing moves", async () => {
      const opened = await openRegularFile(fx.guard, "d/f.txt", checks({}));
      await opened.handle.close();
      expect(opened.realPath).toBe(join(inside, "f.txt"));
      const page = await listDirectory(fx.guard, { path: "d" }, checks({}));
      expect(page.entries.map((e) => e.name)).toEqual(["f.txt"]);
      const dir = await openDirectory(fx.guard, "d", checks({}));
      if (procFd) expect(dir.readPath).toMatch(/^\/proc\/self\/fd\/\d+$/);
      else expect(dir.readPath).toBe(inside);
      await dir.close();
    });

    it("refuses a file whose parent directory was swapped for a symlink to outside before open", async () => {
      const err = await expectGuruError(openRegularFile(fx.guard, "d/f.txt", checks({ beforeOpen: swapOut })), "denied");
      expect(err.message).toContain("outside the allowed paths");
    });

    it("refuses a file whose parent was swapped out and back around open (the handle is on the outside file)", async () => {
      // Swapped back before the check: the path looks fine again, but the handle holds outside/d/f.txt.
      const err = await expectGuruError(
        openRegularFile(fx.guard, "d/f.txt", checks({ beforeOpen: swapOut, afterOpen: swapBack })),
        procFd ? "denied" : "conflict",
      );
      expect(err.message).toMatch(procFd ? /outside the allowed paths/ : /changed while being opened/);
    });

    it("refuses reads and stats through a swapped directory", async () => {
      await expectGuruError(readFileRange(fx.guard, { path: "d/f.txt" }, { handleChecks: checks({ beforeOpen: swapOut }) }), "denied");
      await swapBack();
      await expectGuruError(statPath(fx.guard, "d/f.txt", checks({ beforeOpen: swapOut })), "denied");
    });

    it("refuses to list a directory swapped for a symlink to outside, itself or a parent", async () => {
      // The listed directory itself: O_NOFOLLOW refuses the symlink.
      const self = await expectGuruError(listDirectory(fx.guard, { path: "d" }, checks({ beforeOpen: swapOut })), "denied");
      expect(self.message).not.toContain("SECRET");
      await swapBack();
      // A parent: the handle is checked before anything is read.
      await mkdir(join(inside, "sub"));
      await mkdir(join(outsideTwin, "sub"));
      await writeFile(join(outsideTwin, "sub", "secret-only.txt"), "SECRET");
      await expectGuruError(listDirectory(fx.guard, { path: "d/sub" }, checks({ beforeOpen: swapOut })), "denied");
      await swapBack();
      const undone = listDirectory(fx.guard, { path: "d/sub" }, checks({ beforeOpen: swapOut, afterOpen: swapBack }));
      await expectGuruError(undone, procFd ? "denied" : "conflict");
    });

    it("refuses an upload whose temp file's directory was swapped before open, writing nothing outside", async () => {
      const uploads = createUploadManager({
        stateDir: join(fx.root, "state"),
        logger: silentLogger(),
        keepBackupDefault: true,
        abandonedAfterMs: 60_000,
        handleChecks: checks({ beforeOpen: swapOut, afterOpen: swapBack }),
      });
      const request = { uploadId: "u", path: "d/new.bin", size: 64, sha256: "0".repeat(64), overwrite: false };
      await expectGuruError(uploads.open(fx.guard, request), procFd ? "denied" : "conflict");
      // O_CREAT went through the swapped directory (no openat in Node), but nothing is ever written there.
      expect(await readFile(join(outsideTwin, "f.txt"), "utf8")).toBe("SECRET");
      for (const name of await readdir(outsideTwin)) {
        if (name.includes("guru-upload")) expect((await stat(join(outsideTwin, name))).size).toBe(0);
      }
    });
  });
}

describe("directory listing without directory handles (Windows)", () => {
  let fx: FilesFixture;
  beforeEach(async () => {
    fx = await createFilesFixture();
    await mkdir(join(fx.allowed, "d"));
    await writeFile(join(fx.allowed, "d", "f.txt"), "inside");
    await mkdir(join(fx.outside, "d"));
  });
  afterEach(() => fx.cleanup());

  it("checks the identity before and after the read: a swap in between is refused", async () => {
    const noHandles = (hooks: Partial<Pick<HandleChecks, "beforeOpen" | "afterOpen">> = {}) =>
      createHandleChecks({ procFd: false, dirHandles: false, ...hooks });
    expect((await listDirectory(fx.guard, { path: "d" }, noHandles())).entries.map((e) => e.name)).toEqual(["f.txt"]);
    const swap = async () => {
      await rename(join(fx.allowed, "d"), join(fx.allowed, "d-moved"));
      await symlink(join(fx.outside, "d"), join(fx.allowed, "d"));
    };
    await expectGuruError(listDirectory(fx.guard, { path: "d" }, noHandles({ afterOpen: swap })), "denied");
  });
});
