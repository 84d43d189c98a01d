// Commands started from a waiting shell (zygote-spec.js) must be the same process
// spawn would have started: arguments, directory, environment, descriptors,
// process group, umask and exit, compared here with a direct spawn; and a
// launch that does not fit is spawned as before.
import { execFileSync } from "node:child_process";
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../../lib/logging.ts";
import { collectLaunched } from "../../../test/support/exec-test-fixture.ts";
import { createForkedLauncher, LaunchError, type LaunchedProcess, type LaunchOptions, type ProcessLauncher } from "./launcher.ts";
import { zygoteEnvKey, zygoteSpec } from "./zygote-spec.js";

const posix = process.platform !== "win32";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const collect = collectLaunched;

const env = { PATH: "/usr/bin:/bin", HOME: "/root", LANG: "C.UTF-8", APP_NOTE: "two\nlines and a \\ backslash" };
// What a process can see of how it was started; pids differ from run to run, so they are compared as relations.
const probe = [
  'printf "<%s>" "$0" "$@"; echo',
  "env | LC_ALL=C sort",
  "pwd",
  "umask",
  'test "$(ps -o pgid= -p $$ | tr -d " ")" = "$$" && echo "leads its group"',
  // Open descriptors, counted by the shell itself: a pipeline's pipes would show up in them for a moment.
  'set -- /proc/$$/fd/*; echo "$# descriptors"',
  "wc -c",
  "echo to-stderr >&2",
  "exit 3",
].join("; ");
const args = ["-c", probe, "zero", "a\nb", "c\\d", " spaced ", "ünï", "", "ends\n"];

describe.runIf(posix)("commands started from a waiting shell", () => {
  let launcher: ProcessLauncher;
  let dir: string;
  beforeAll(async () => {
    launcher = await createForkedLauncher(silentLogger());
    dir = join(await realpath(await mkdtemp(join(tmpdir(), "guru-zygote-"))), "a dir\nwith a newline");
    execFileSync("mkdir", ["-p", dir]);
  });
  afterAll(async () => {
    await launcher.close();
    await rm(join(dir, ".."), { recursive: true, force: true });
  });

  /** Launches until one comes from a waiting shell (the first of an environment is always spawned). */
  async function launchPrepared(file: string, argv: string[], options: LaunchOptions): Promise<LaunchedProcess> {
    for (let i = 0; i < 50; i++) {
      const p = await launcher.launch(file, argv, options);
      if (p.prepared) return p;
      await collect(p);
      await sleep(20);
    }
    throw new Error("no launch came from a waiting shell");
  }

  it("starts the same process as spawn: arguments, directory, environment, descriptors, group, umask, exit", async () => {
    const options = { cwd: dir, env, detached: true };
    const prepared = await collect(await launchPrepared("/bin/sh", args, options));
    // A new launcher spawns its first command: the same parent, so the same inherited descriptors.
    const fresh = await createForkedLauncher(silentLogger());
    try {
      const first = await fresh.launch("/bin/sh", args, options);
      expect(first.prepared).toBe(false);
      expect(await collect(first)).toEqual(prepared);
    } finally {
      await fresh.close();
    }
    expect(prepared.exit).toEqual({ code: 3, signal: null });
    expect(prepared.stdout).toContain("leads its group");
    expect(prepared.stdout).toContain("<zero><a\nb><c\\d>< spaced ><ünï><><ends\n>");
    expect(prepared.stdout).toContain(`\n${dir}\n`);
    expect(prepared.stderr).toBe("to-stderr\n");
  });

  it("reports a death by signal and output written after the exit of the shell", async () => {
    const options = { cwd: "/tmp", env, detached: true };
    const killed = await launchPrepared("/bin/sh", ["-c", "kill -KILL $$"], options);
    expect((await collect(killed)).exit).toEqual({ code: null, signal: "SIGKILL" });
    const late = await launchPrepared("/bin/sh", ["-c", "(sleep 0.2; echo late) & echo early"], options);
    expect((await collect(late)).stdout).toBe("early\nlate\n");
  });

  it("fails like spawn when the directory went away after it was checked, or is a file", async () => {
    const options = { cwd: "/tmp", env, detached: true };
    // A waiting shell exists once a launch in this environment went through.
    await collect(await launchPrepared("/bin/sh", ["-c", "true"], options));
    await sleep(50);
    const gone = await launcher.launch("/bin/sh", ["-c", "true"], { ...options, cwd: join(dir, "missing") }).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(LaunchError);
    expect((gone as LaunchError).code).toBe("ENOENT");
    await sleep(50);
    const file = join(dir, "a-file");
    execFileSync("touch", [file]);
    const notDir = await launcher.launch("/bin/sh", ["-c", "true"], { ...options, cwd: file }).catch((e: unknown) => e);
    expect((notDir as LaunchError).code).toBe("ENOTDIR");
    expect((await collect(await launcher.launch("/bin/sh", ["-c", "echo still"], options))).stdout).toBe("still\n");
  });

  it("spawns what a waiting shell could not start unchanged, with the same result", async () => {
    const options = { cwd: "/tmp", env, detached: true };
    await collect(await launchPrepared("/bin/sh", ["-c", "true"], options));
    await sleep(50);
    const long = await launcher.launch("/bin/sh", ["-c", `echo ${"x".repeat(5000)} | wc -c`], options);
    expect(long.prepared).toBe(false);
    expect((await collect(long)).stdout.trim()).toBe("5001");
    const otherEnv = await launcher.launch("/bin/sh", ["-c", 'echo "$PWD|$OLDPWD"'], { ...options, env: { ...env, OLDPWD: "/somewhere" } });
    expect(otherEnv.prepared).toBe(false);
    expect((await collect(otherEnv)).stdout).toBe("/tmp|/somewhere\n");
    const missing = await launcher.launch("/nonexistent/shell", [], options).catch((e: unknown) => e);
    expect((missing as LaunchError).code).toBe("ENOENT");
  });

  it("gives a command spawned past a waiting shell (another environment) its own exit, time after time", async () => {
    for (let i = 0; i < 6; i++) {
      const own = { ...env, ROUND: String(i) };
      const p = await launcher.launch("/bin/sh", ["-c", 'sleep 0.05; echo "$ROUND"; exit 4'], { cwd: "/tmp", env: own, detached: true });
      expect(await collect(p)).toEqual({ exit: { code: 4, signal: null }, stdout: `${i}\n`, stderr: "" });
      await sleep(30);
    }
  });

  it("replaces a waiting shell that died, and leaves none behind when it closes", async () => {
    const own = await createForkedLauncher(silentLogger());
    const options = { cwd: "/tmp", env, detached: true };
    const first = await own.launch("/bin/sh", ["-c", "echo $PPID"], options);
    const launcherPid = Number((await collect(first)).stdout);
    // ps exits 1 when nothing matches.
    const waitingShells = () => {
      try {
        return execFileSync("ps", ["-o", "pid=", "--ppid", String(launcherPid)], { encoding: "utf8" })
          .split("\n")
          .map((l) => Number(l.trim()))
          .filter((pid) => pid > 0);
      } catch {
        return [];
      }
    };
    for (let i = 0; i < 50 && waitingShells().length === 0; i++) await sleep(20);
    for (const pid of waitingShells()) process.kill(pid, "SIGKILL");
    for (let i = 0; i < 5; i++) expect((await collect(await own.launch("/bin/sh", ["-c", "echo ok"], options))).stdout).toBe("ok\n");
    await own.close();
    for (let i = 0; i < 50 && waitingShells().length > 0; i++) await sleep(20);
    expect(waitingShells()).toEqual([]);
  });
});

describe("what a waiting shell takes", () => {
  it("refuses environments its shell would change or drop", () => {
    expect(zygoteEnvKey({ PATH: "/bin", HOME: "/h" })).toBe(zygoteEnvKey({ HOME: "/h", PATH: "/bin" }));
    for (const bad of [{ PWD: "/x" }, { OLDPWD: "/x" }, { SHLVL: "1" }, { IFS: " " }, { "NOT-A-NAME": "1" }, { X: "a\0b" }, { __guru_v: "1" }]) {
      expect(zygoteEnvKey({ PATH: "/bin", ...bad })).toBeUndefined();
    }
  });

  it("takes absolute programs and directories and a short command line, nothing with a NUL byte", () => {
    expect(zygoteSpec("/bin/sh", ["-c", "a\nb"], "/tmp")).toBe("1\n/tmp\n1\n/bin/sh\n2\n1\n-c\n2\na\nb\n");
    expect(zygoteSpec("sh", ["-c", "true"], "/tmp")).toBeUndefined();
    expect(zygoteSpec("/bin/sh", ["-c", "true"], "tmp")).toBeUndefined();
    expect(zygoteSpec("/bin/sh", ["-c", "a\0b"], "/tmp")).toBeUndefined();
    expect(zygoteSpec("/bin/sh", ["-c", "x".repeat(5000)], "/tmp")).toBeUndefined();
  });
});
