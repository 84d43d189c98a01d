import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFilesFixture, expectGuruError, type FilesFixture } from "../../test/support/files-test-fixture.ts";
import { listDirectory } from "./list-directory.ts";

describe("listDirectory", () => {
  let fx: FilesFixture;
  beforeEach(async () => {
    fx = await createFilesFixture();
  });
  afterEach(() => fx.cleanup());

  it("pages through 10,000 entries: every name exactly once, in a stable order", async () => {
    const dir = join(fx.allowed, "many");
    await mkdir(dir);
    const names = Array.from({ length: 10_000 }, (_, i) => `f-${(i * 7919) % 10_000}-${i % 3 === 0 ? "Ä" : "a"}.txt`);
    await Promise.all(names.map((n) => writeFile(join(dir, n), "")));
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const started = performance.now();
      const page = await listDirectory(fx.guard, { path: "many", pageSize: 1500, pageToken: token });
      pages++;
      expect(page.totalEntries).toBe(10_000);
      expect(page.entries.length).toBeLessThanOrEqual(1500);
      expect(performance.now() - started).toBeLessThan(2000);
      seen.push(...page.entries.map((e) => e.name));
      token = page.nextPageToken;
    } while (token !== "");
    expect(pages).toBe(7);
    expect(seen).toHaveLength(10_000);
    expect(new Set(seen).size).toBe(10_000);
    expect(seen).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    // Same request, same answer.
    const again = await listDirectory(fx.guard, { path: "many", pageSize: 1500 });
    expect(again.entries.map((e) => e.name)).toEqual(seen.slice(0, 1500));
  });

  it("continues after the last name even when entries change between pages", async () => {
    for (const n of ["a", "b", "c", "d"]) await writeFile(join(fx.allowed, n), n);
    const first = await listDirectory(fx.guard, { path: ".", pageSize: 2 });
    expect(first.entries.map((e) => e.name)).toEqual(["a", "b"]);
    await writeFile(join(fx.allowed, "0"), "before the token: not repeated, not shifting");
    const second = await listDirectory(fx.guard, { path: ".", pageSize: 2, pageToken: first.nextPageToken });
    expect(second.entries.map((e) => e.name)).toEqual(["c", "d"]);
    expect(second.nextPageToken).toBe("");
  });

  it("lists symlinks as symlinks without following them, and types entries", async () => {
    await mkdir(join(fx.allowed, "sub"));
    await writeFile(join(fx.allowed, "file"), "xyz");
    await symlink(fx.outside, join(fx.allowed, "to-outside"));
    const page = await listDirectory(fx.guard, { path: fx.allowed });
    expect(page.path).toBe(fx.allowed);
    expect(page.entries.map((e) => [e.name, e.type])).toEqual([
      ["file", "file"],
      ["sub", "dir"],
      ["to-outside", "symlink"],
    ]);
    expect(page.entries[0].size).toBe(3);
    expect(page.nextPageToken).toBe("");
  });

  it("applies the default and maximum page sizes", async () => {
    const dir = join(fx.allowed, "six-thousand");
    await mkdir(dir);
    await Promise.all(Array.from({ length: 6000 }, (_, i) => writeFile(join(dir, String(i)), "")));
    expect((await listDirectory(fx.guard, { path: dir })).entries).toHaveLength(1000);
    expect((await listDirectory(fx.guard, { path: dir, pageSize: 0 })).entries).toHaveLength(1000);
    expect((await listDirectory(fx.guard, { path: dir, pageSize: 99_999 })).entries).toHaveLength(5000);
  });

  it("rejects bad requests", async () => {
    await writeFile(join(fx.allowed, "file"), "");
    await expectGuruError(listDirectory(fx.guard, { path: "file" }), "invalid");
    await expectGuruError(listDirectory(fx.guard, { path: ".", pageToken: "garbage!" }), "invalid");
    await expectGuruError(listDirectory(fx.guard, { path: ".", pageSize: -1 }), "invalid");
    await expectGuruError(listDirectory(fx.guard, { path: ".." }), "denied");
    await expectGuruError(listDirectory(fx.guard, { path: "nope" }), "not_found");
  });
});
