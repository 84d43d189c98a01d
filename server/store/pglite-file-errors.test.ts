import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { embeddedFileError } from "./pglite-file-errors.ts";

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN on Linux; not in every container). */
function canMountTmpfs(): boolean {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), "guru-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

describe("the embedded database's file errors", () => {
  it("names the errno and the directory, as unavailable", () => {
    const err = embeddedFileError({ name: "ErrnoError", errno: 51 }, "/srv/guru/db");
    expect(err).toMatchObject({ kind: "unavailable", metadata: { errno: "51" } });
    expect(err?.message).toBe("the embedded database in /srv/guru/db could not use its files: no space left on device (ENOSPC)");
    expect(embeddedFileError({ name: "ErrnoError", errno: 999 }, "/d")?.message).toMatch(/file error 999$/);
    expect(embeddedFileError(new Error("x"), "/d")).toBeUndefined();
    expect(embeddedFileError({ errno: 51 }, "/d")).toBeUndefined();
    expect(embeddedFileError(undefined, "/d")).toBeUndefined();
  });

  // A real full disk: a 256 KiB tmpfs, where this process may mount one.
  describe.runIf(canMountTmpfs())("on a full disk", () => {
    let mountPoint: string;
    beforeAll(async () => {
      mountPoint = await mkdtemp(join(tmpdir(), "guru-full-disk-"));
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mountPoint]);
    });
    afterAll(async () => {
      execFileSync("umount", ["--lazy", mountPoint]); // lazy: the failed PGlite may still hold a file open
      await rm(mountPoint, { recursive: true, force: true });
    });

    it("`guru server` on it names ENOSPC and the directory", async () => {
      const server = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, [guruBin, "server", "--port", "0", "--data-dir", join(mountPoint, "server")], (err, _out, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
        );
        child.stdin?.end();
      });
      expect(server.code).not.toBe(0);
      expect(server.stderr).toContain(`the embedded database in ${join(mountPoint, "server", "db")} could not use its files: no space left on device (ENOSPC)`);
    });
  });
});
