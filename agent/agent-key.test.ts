import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GuruError } from "../lib/errors.ts";
import { forgetAgentKeyEnv, readAgentKey } from "./agent-key.ts";

const posix = process.platform !== "win32";
const key = `guru_ak_${"k".repeat(43)}`;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "guru-key-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("the agent key", () => {
  it("is read from a 0600 file", async () => {
    const file = join(dir, "ok.key");
    await writeFile(file, `${key}\n`, { mode: 0o600 });
    expect(await readAgentKey({ keyFile: file, key: "ignored-when-a-file-is-given" })).toBe(key);
  });

  it.runIf(posix)("refuses a key file group or others can read, with the chmod that fixes it, and leaves the file alone", async () => {
    for (const mode of [0o640, 0o604, 0o644]) {
      const file = join(dir, `open-${mode.toString(8)}.key`);
      await writeFile(file, key);
      await chmod(file, mode);
      const err = (await readAgentKey({ keyFile: file }).catch((e: unknown) => e)) as GuruError;
      expect(err).toBeInstanceOf(GuruError);
      expect(err.kind).toBe("invalid");
      expect(err.message).toBe(`agent key file ${file} is readable by group or others (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
      expect((await stat(file)).mode & 0o777).toBe(mode);
    }
  });

  it("refuses a missing file and one that holds no key", async () => {
    const missing = (await readAgentKey({ keyFile: join(dir, "nope") }).catch((e: unknown) => e)) as GuruError;
    expect(missing.kind).toBe("invalid");
    expect(missing.message).toContain("ENOENT");
    const empty = join(dir, "empty.key");
    await writeFile(empty, "\n", { mode: 0o600 });
    expect(((await readAgentKey({ keyFile: empty }).catch((e: unknown) => e)) as GuruError).message).toContain("does not hold an agent key");
  });

  it("says how to give a key when there is none", async () => {
    const err = (await readAgentKey({}).catch((e: unknown) => e)) as GuruError;
    expect(err.kind).toBe("invalid");
    expect(err.message).toContain("--key-file");
  });

  it("removes GURU_AGENT_KEY from the environment it was read from", () => {
    const env: NodeJS.ProcessEnv = { GURU_AGENT_KEY: key, HOME: "/root" };
    forgetAgentKeyEnv(env);
    expect(env).toEqual({ HOME: "/root" });
  });
});
