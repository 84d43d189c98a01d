// The freshness check bin/guru.js runs before it loads the CLI bundle, on
// real files: a bundle is used only while every file it was built from is
// as the build saw it.
import { mkdir, mkdtemp, rm, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { cliBundleEntry } from "./cli-bundle.js";

let root: string;
let bundleDir: string;
let entry: string;
// Whole milliseconds, so a test can put an mtime back exactly.
const built = new Date("2026-01-02T03:04:05.678Z");

async function writeManifest(files: string[]): Promise<void> {
  const listed = await Promise.all(
    files.map(async (file) => {
      const { mtimeMs, size } = await stat(join(root, file));
      return [file, mtimeMs, size];
    }),
  );
  await writeFile(join(bundleDir, "manifest.json"), JSON.stringify({ entry: "main.js", root: "../..", files: listed }));
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "guru-cli-bundle-"));
  bundleDir = join(root, "dist", "cli");
  await mkdir(join(root, "cli"));
  await mkdir(bundleDir, { recursive: true });
  await writeFile(join(root, "cli", "main.ts"), "export const a = 1;\n");
  await writeFile(join(root, "package-lock.json"), "{}\n");
  await writeFile(join(bundleDir, "main.js"), "export const a = 1;\n");
  for (const file of ["cli/main.ts", "package-lock.json"]) await utimes(join(root, file), built, built);
  entry = pathToFileURL(join(bundleDir, "main.js")).href;
  await writeManifest(["cli/main.ts", "package-lock.json"]);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

it("gives the entry's URL while every listed file has its recorded mtime and size", () => {
  expect(cliBundleEntry(bundleDir)).toBe(entry);
});

it("refuses the bundle once a listed file's mtime changes", async () => {
  await utimes(join(root, "cli", "main.ts"), built, new Date(built.getTime() + 1));
  expect(cliBundleEntry(bundleDir)).toBeUndefined();
});

it("refuses the bundle once a listed file's size changes, even with its mtime put back", async () => {
  await writeFile(join(root, "package-lock.json"), "{ }\n");
  await utimes(join(root, "package-lock.json"), built, built);
  expect((await stat(join(root, "package-lock.json"))).mtimeMs).toBe(built.getTime());
  expect(cliBundleEntry(bundleDir)).toBeUndefined();
});

it("refuses the bundle when a listed file is gone", async () => {
  await unlink(join(root, "cli", "main.ts"));
  expect(cliBundleEntry(bundleDir)).toBeUndefined();
});

it("refuses a directory without a manifest or with one it cannot read", async () => {
  expect(cliBundleEntry(join(root, "nothing-here"))).toBeUndefined();
  await writeFile(join(bundleDir, "manifest.json"), '{"entry": "main.js", "root": "../..", "files": [');
  expect(cliBundleEntry(bundleDir)).toBeUndefined();
  await writeFile(join(bundleDir, "manifest.json"), '{"entry": "main.js", "root": "../.."}');
  expect(cliBundleEntry(bundleDir)).toBeUndefined();
});
