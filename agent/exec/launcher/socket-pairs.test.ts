import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createSocketPairs, removeStaleSocketDirs } from "./socket-pairs.ts";

const posix = process.platform !== "win32";

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "0"]);
  await new Promise((resolve) => child.on("close", resolve));
  return child.pid!;
}

describe.runIf(posix)("launcher socket directories", () => {
  const parents: string[] = [];
  afterEach(async () => {
    for (const p of parents.splice(0)) await rm(p, { recursive: true, force: true });
  });

  it("removes the directories of owners that are gone and keeps live owners' and unrelated ones", async () => {
    const parent = await mkdtemp(join(tmpdir(), "socket-dirs-"));
    parents.push(parent);
    const gone = await deadPid();
    const live = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      const names = [
        `guru-launcher-${gone}-aB3xyz`,
        `guru-launcher-${live.pid}-Qr7abc`,
        `guru-launcher-${process.pid}-Zz0000`,
        "guru-launcher-Xy12ab",
        "other-123-abc",
      ];
      for (const name of names) {
        await mkdir(join(parent, name));
        await writeFile(join(parent, name, "stdio.sock"), "");
      }

      await removeStaleSocketDirs(parent);

      expect((await readdir(parent)).sort()).toEqual(names.filter((n) => !n.includes(`-${gone}-`)).sort());
    } finally {
      live.kill("SIGKILL");
    }
  });

  it("names its own directory after this process, so a later agent can tell it is in use, and removes it on close", async () => {
    const before = new Set(await readdir(tmpdir()));
    const pairs = await createSocketPairs();
    const made = (await readdir(tmpdir())).filter((n) => !before.has(n) && n.startsWith(`guru-launcher-${process.pid}-`));
    expect(made).toHaveLength(1);

    await removeStaleSocketDirs(tmpdir());
    const pair = await pairs.create(); // still usable: a live owner's directory is left alone
    pair.writeEnd.end("out");
    pair.readEnd.resume();
    const text = await new Promise<string>((resolve) => {
      let got = "";
      pair.readEnd.on("data", (d: Buffer) => (got += d.toString())).on("end", () => resolve(got));
    });
    expect(text).toBe("out");

    await pairs.close();
    expect(await readdir(tmpdir())).not.toContain(made[0]);
  });
});
