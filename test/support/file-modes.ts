// Mode bits of everything under a directory, for tests of what a process
// leaves on disk (tests run as root, so only the bits prove privacy).
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";

export interface ModeEntry {
  path: string;
  mode: number;
  type: "d" | "f" | "l";
}

export async function modesUnder(dir: string): Promise<ModeEntry[]> {
  const out: ModeEntry[] = [];
  const visit = async (p: string) => {
    const s = await lstat(p);
    out.push({ path: p, mode: s.mode & 0o7777, type: s.isDirectory() ? "d" : s.isSymbolicLink() ? "l" : "f" });
    if (s.isDirectory()) for (const name of await readdir(p)) await visit(join(p, name));
  };
  await visit(dir);
  return out;
}

/** Directories 0700, files 0600; the failure lists the ones that are not. */
export function expectPrivate(entries: ModeEntry[]): void {
  const wrong = entries.filter((e) => (e.type === "d" && e.mode !== 0o700) || (e.type === "f" && e.mode !== 0o600));
  expect(wrong.map((e) => `${e.mode.toString(8)} ${e.path}`)).toEqual([]);
}
