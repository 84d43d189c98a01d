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
    const guard = createPathGuard([`${allowed}/sub/..`]);
    expect(guard.allowedPaths).toEqual([allowed]);
    expect(await guard.resolve(allowed)).toBe(allowed);
    expect(await guard.resolve(`${allowed}/`)).toBe(allowed);
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
      lstat: async (p) => {
        lookup(p);
        return { isSymbolicLink: () => false };
      },
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
    const ads = await expectKind(guard.resolve("report.txt:hidden"), "denied");
    expect(ads.message).toBe('path "report.txt:hidden" names an alternate data stream');
  });
});

describe("path guard (Windows path forms, lexical, win32 semantics)", () => {
  // Counts filesystem calls: every refusal here must come before any of them.
  function countingFs(paths: string[]) {
    const canonical = new Map(paths.map((p) => [path.win32.resolve(p).toLowerCase(), p]));
    const calls: string[] = [];
    const lookup = (p: string) => {
      calls.push(p);
      const hit = canonical.get(path.win32.resolve(p).toLowerCase());
      if (hit === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
      return hit;
    };
    const fs: PathGuardFs = {
      realpath: async (p) => lookup(p),
      realpathSync: (p) => lookup(p),
      lstat: async (p) => {
        lookup(p);
        return { isSymbolicLink: () => false };
      },
      readlink: async (p) => {
        throw Object.assign(new Error(`EINVAL: ${p}`), { code: "EINVAL" });
      },
    };
    return { fs, calls };
  }
  const present = ["C:\\", "C:\\Users", "C:\\Users\\Tech", "C:\\Users\\Tech\\report.txt", "C:\\Users\\Tech\\sub"];

  const refused = [
    // UNC, both slash styles and mixed
    "\\\\host\\share\\file.txt",
    "//host/share/file.txt",
    "\\/host/share",
    "\\\\host\\share",
    // the Win32 file and device namespaces, even onto an allowed directory
    "\\\\?\\C:\\Users\\Tech\\report.txt",
    "//?/C:/Users/Tech/report.txt",
    "\\\\?\\UNC\\host\\share\\x",
    "\\\\.\\COM1",
    "//./pipe/evil",
    "\\\\.\\C:\\Users\\Tech\\report.txt",
    // device names: any case, any extension, trailing dots and spaces, any segment
    "CON",
    "con.txt",
    "NUL",
    "nul.tar.gz",
    "PRN.",
    "AUX .log",
    "COM1",
    "com9.txt. . ",
    "LPT1",
    "lpt5 ",
    "CONIN$",
    "conout$.txt",
    "COM\u00b9",
    "sub\\NUL\\x.txt",
    "sub/aux/x.txt",
    "C:\\Users\\Tech\\CON\\report.txt",
    "nul..",
    // alternate data streams
    "report.txt:hidden",
    "report.txt::$DATA",
    "sub:stream",
    "C:\\Users\\Tech\\report.txt:Zone.Identifier",
  ];

  for (const input of refused) {
    it(`refuses ${JSON.stringify(input)} as denied, naming it, before any filesystem call`, async () => {
      const { fs, calls } = countingFs(present);
      const guard = createPathGuard(["C:\\Users\\Tech"], { platform: "win32", fs });
      calls.length = 0;
      const err = await expectKind(guard.resolve(input), "denied");
      expect(err.message).toContain(`"${input}"`);
      expect(err.details.path).toBe(input);
      expect(calls).toEqual([]);
      // mustExist: false (an upload target) is refused the same way.
      await expectKind(guard.resolve(input, { mustExist: false }), "denied");
      expect(calls).toEqual([]);
    });
  }

  it("refuses an outside path before any filesystem call", async () => {
    const { fs, calls } = countingFs(present);
    const guard = createPathGuard(["C:\\Users\\Tech"], { platform: "win32", fs });
    calls.length = 0;
    await expectKind(guard.resolve("D:\\secret.txt"), "denied");
    await expectKind(guard.resolve("..\\Other\\x"), "denied");
    expect(calls).toEqual([]);
  });

  it("still allows names that only look like devices", async () => {
    const { fs } = countingFs([...present, "C:\\Users\\Tech\\console.txt", "C:\\Users\\Tech\\COM10", "C:\\Users\\Tech\\nully", "C:\\Users\\Tech\\LPT"]);
    const guard = createPathGuard(["C:\\Users\\Tech"], { platform: "win32", fs });
    for (const name of ["console.txt", "COM10", "nully", "LPT"]) {
      expect(await guard.resolve(name)).toBe(`C:\\Users\\Tech\\${name}`);
    }
  });

  it("allows UNC paths under an allowed UNC root, and only there", async () => {
    const { fs } = countingFs(["\\\\files\\it\\", "\\\\files\\it\\tools", "\\\\files\\it\\tools\\setup.exe"]);
    const guard = createPathGuard(["\\\\files\\it\\tools"], { platform: "win32", fs });
    expect(await guard.resolve("//files/it/tools/setup.exe")).toBe("\\\\files\\it\\tools\\setup.exe");
    expect(await guard.resolve("setup.exe")).toBe("\\\\files\\it\\tools\\setup.exe");
    await expectKind(guard.resolve("\\\\other\\share\\x"), "denied");
    await expectKind(guard.resolve("\\\\files\\it\\secrets"), "denied");
    await expectKind(guard.resolve("\\\\?\\UNC\\files\\it\\tools\\setup.exe"), "denied");
    await expectKind(guard.resolve("setup.exe:stream"), "denied");
    await expectKind(guard.resolve("nul"), "denied");
  });
});
