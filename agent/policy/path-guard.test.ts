import { mkdtemp, mkdir, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GuruError } from "../../lib/errors.ts";
import { createPathGuard, type PathGuardFs } from "./path-guard.ts";

async function expectKind(promise: Promise<unknown>, kind: string): Promise<GuruError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GuruError);
  expect((err as GuruError).kind).toBe(kind);
  return err as GuruError;
}

describe("path guard (posix, real files)", () => {
  let base: string;
  let allowed: string;
  let outside: string;

  beforeEach(async () => {
    base = await realpath(await mkdtemp(path.join(tmpdir(), "guru-guard-")));
    allowed = path.join(base, "allowed");
    outside = path.join(base, "outside");
    await mkdir(path.join(allowed, "sub"), { recursive: true });
    await mkdir(outside);
    await mkdir(path.join(base, "allowed-evil"));
    await writeFile(path.join(allowed, "sub", "a.txt"), "a");
    await writeFile(path.join(outside, "secret.txt"), "s");
    await writeFile(path.join(base, "allowed-evil", "x.txt"), "x");
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("exposes the real roots and allows a root itself", async () => {
    const guard = createPathGuard([allowed + "/sub/.."]);
    expect(guard.allowedPaths).toEqual([allowed]);
    expect(await guard.resolve(allowed)).toBe(allowed);
    expect(await guard.resolve(allowed + "/")).toBe(allowed);
  });

  it("resolves relative paths against the first root", async () => {
    const guard = createPathGuard([allowed, outside]);
    expect(await guard.resolve("sub/a.txt")).toBe(path.join(allowed, "sub", "a.txt"));
    expect(await guard.resolve(".")).toBe(allowed);
  });

  it("refuses '..' escapes, absolute paths outside and the prefix trick", async () => {
    const guard = createPathGuard([allowed]);
    const err = await expectKind(guard.resolve("../outside/secret.txt"), "denied");
    expect(err.message).toBe(`path "../outside/secret.txt" is outside the allowed paths (${allowed})`);
    expect(err.details).toEqual({ path: "../outside/secret.txt", allowedPaths: [allowed] });
    await expectKind(guard.resolve(path.join(allowed, "sub", "..", "..", "outside", "secret.txt")), "denied");
    await expectKind(guard.resolve(path.join(outside, "secret.txt")), "denied");
    await expectKind(guard.resolve(path.join(base, "allowed-evil", "x.txt")), "denied");
    await expectKind(guard.resolve(path.join(base, "allowed-evil")), "denied");
    await expectKind(guard.resolve("/"), "denied");
    // '..' that stays inside is fine.
    expect(await guard.resolve("sub/../sub/a.txt")).toBe(path.join(allowed, "sub", "a.txt"));
  });

  it("follows symlinks: inside → outside refused, inside → inside allowed", async () => {
    await symlink(outside, path.join(allowed, "to-outside"));
    await symlink(path.join(outside, "secret.txt"), path.join(allowed, "secret-link"));
    await symlink(path.join(allowed, "sub", "a.txt"), path.join(allowed, "a-link"));
    await symlink("sub", path.join(allowed, "sub-link"));
    const guard = createPathGuard([allowed]);
    await expectKind(guard.resolve("to-outside/secret.txt"), "denied");
    await expectKind(guard.resolve("to-outside"), "denied");
    await expectKind(guard.resolve("secret-link"), "denied");
    await expectKind(guard.resolve("to-outside/new.txt", { mustExist: false }), "denied");
    expect(await guard.resolve("a-link")).toBe(path.join(allowed, "sub", "a.txt"));
    expect(await guard.resolve("sub-link/a.txt")).toBe(path.join(allowed, "sub", "a.txt"));
  });

  it("refuses a dangling symlink that points outside, even for a new file", async () => {
    await symlink(path.join(outside, "not-yet.txt"), path.join(allowed, "dangling"));
    await symlink(path.join(allowed, "sub", "new.txt"), path.join(allowed, "dangling-inside"));
    const guard = createPathGuard([allowed]);
    await expectKind(guard.resolve("dangling", { mustExist: false }), "denied");
    await expectKind(guard.resolve("dangling"), "denied");
    expect(await guard.resolve("dangling-inside", { mustExist: false })).toBe(path.join(allowed, "sub", "new.txt"));
    await expectKind(guard.resolve("dangling-inside"), "not_found");
  });

  it("handles non-existent paths: not_found inside, denied outside (no probing)", async () => {
    const guard = createPathGuard([allowed]);
    await expectKind(guard.resolve("sub/missing.txt"), "not_found");
    expect(await guard.resolve("sub/new.txt", { mustExist: false })).toBe(path.join(allowed, "sub", "new.txt"));
    await expectKind(guard.resolve("nodir/new.txt", { mustExist: false }), "not_found");
    await expectKind(guard.resolve(path.join(outside, "missing.txt")), "denied");
    await expectKind(guard.resolve(path.join(outside, "new.txt"), { mustExist: false }), "denied");
  });

  it("rejects bad input and loops", async () => {
    const guard = createPathGuard([allowed]);
    await expectKind(guard.resolve(""), "invalid");
    await expectKind(guard.resolve("a\0b"), "invalid");
    await symlink("loop-b", path.join(allowed, "loop-a"));
    await symlink("loop-a", path.join(allowed, "loop-b"));
    await expectKind(guard.resolve("loop-a"), "invalid");
    await expectKind(guard.resolve("loop-a", { mustExist: false }), "invalid");
    expect(() => createPathGuard(["relative/root"])).toThrow(GuruError);
  });

  it("denies everything with an empty allowlist", async () => {
    await expectKind(createPathGuard([]).resolve(allowed), "denied");
  });
});

describe("path guard (win32 rules on a fake filesystem)", () => {
  // A case-insensitive filesystem, as NTFS is: keys are lower case, values the canonical spelling.
  function fakeWin32Fs(paths: string[]): PathGuardFs {
    const canonical = new Map(paths.map((p) => [p.toLowerCase(), p]));
    const lookup = (p: string) => {
      const hit = canonical.get(path.win32.resolve(p).toLowerCase());
      if (hit === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
      return hit;
    };
    return {
      realpath: async (p) => lookup(p),
      realpathSync: (p) => lookup(p),
      lstat: async (p) => (lookup(p), { isSymbolicLink: () => false }),
      readlink: async (p) => {
        throw Object.assign(new Error(`EINVAL: ${p}`), { code: "EINVAL" });
      },
    };
  }
  const fs = fakeWin32Fs(["C:\\", "C:\\Users", "C:\\Users\\Tech", "C:\\Users\\Tech\\Report.TXT", "C:\\Users\\Tech-Evil", "C:\\Windows"]);

  it("compares case-insensitively and returns the canonical spelling", async () => {
    const guard = createPathGuard(["c:\\users\\tech"], { platform: "win32", fs });
    expect(guard.allowedPaths).toEqual(["C:\\Users\\Tech"]);
    expect(await guard.resolve("C:\\USERS\\TECH\\report.txt")).toBe("C:\\Users\\Tech\\Report.TXT");
    expect(await guard.resolve("report.txt")).toBe("C:\\Users\\Tech\\Report.TXT");
    expect(await guard.resolve("c:/users/tech")).toBe("C:\\Users\\Tech");
    expect(await guard.resolve("C:\\Users\\TECH\\New.txt", { mustExist: false })).toBe("C:\\Users\\Tech\\New.txt");
  });

  it("refuses outside paths, '..', the prefix trick and alternate data streams", async () => {
    const guard = createPathGuard(["C:\\Users\\Tech"], { platform: "win32", fs });
    await expectKind(guard.resolve("..\\..\\Windows"), "denied");
    await expectKind(guard.resolve("c:\\windows"), "denied");
    await expectKind(guard.resolve("C:\\Users\\Tech-Evil"), "denied");
    await expectKind(guard.resolve("D:\\Users\\Tech\\report.txt"), "denied");
    await expectKind(guard.resolve("report.txt:hidden"), "invalid");
  });
});
