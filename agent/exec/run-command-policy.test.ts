// What runCommand refuses before anything runs (policy, working directory,
// bad specs) and what it passes to the process (working dir, environment).
import { existsSync } from "node:fs";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GuruError } from "../../lib/errors.ts";
import { createExecFixture, recordingIo, run, spec, type ExecFixture } from "../../test/support/exec-test-fixture.ts";
import { runCommand, type CommandSpec, type RunCommandDeps } from "./run-command.ts";

const posix = process.platform !== "win32";
let fx: ExecFixture;
let marker: string;

beforeAll(async () => {
  fx = await createExecFixture();
  await mkdir(join(fx.root, "outside"));
  await mkdir(join(fx.allowed, "sub"));
  await writeFile(join(fx.allowed, "a-file"), "x");
  await symlink(join(fx.root, "outside"), join(fx.allowed, "escape-link"));
  marker = join(fx.root, "ran-marker");
});
afterAll(() => fx.cleanup());

/** Runs a command that would leave a marker file, expects a refusal, checks nothing ran. */
async function refused(overrides: Partial<CommandSpec>, deps?: RunCommandDeps): Promise<GuruError> {
  const io = recordingIo();
  const err = await runCommand(spec(`touch ${marker}`, overrides), io, deps ?? fx.deps()).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GuruError);
  expect(io.chunks).toHaveLength(0);
  expect(existsSync(marker), "the command must not have run").toBe(false);
  return err as GuruError;
}

describe.runIf(posix)("runCommand: working directory", () => {
  it("defaults to the first allowed path", async () => {
    const { io } = await run("pwd", fx);
    expect(io.text("stdout")).toBe(`${fx.allowed}\n`);
  });

  it("resolves a relative working dir inside the allowlist", async () => {
    const { io } = await run("pwd", fx, { workingDir: "sub" });
    expect(io.text("stdout")).toBe(`${join(fx.allowed, "sub")}\n`);
  });

  for (const [name, workingDir] of [
    ["a .. escape", "../outside"],
    ["a symlink pointing outside", "escape-link"],
    ["an absolute path outside", "/"],
  ] as const) {
    it(`refuses ${name}, naming the path and the allowlist`, async () => {
      const err = await refused({ workingDir });
      expect(err.kind).toBe("denied");
      expect(err.message).toContain(workingDir);
      expect(err.message).toContain(fx.allowed);
    });
  }

  it("refuses a working dir that is a file", async () => {
    const err = await refused({ workingDir: "a-file" });
    expect(err.kind).toBe("invalid");
    expect(err.message).toContain("is not a directory");
  });

  it("refuses a working dir that does not exist", async () => {
    const err = await refused({ workingDir: "no-such-dir" });
    expect(err.kind).toBe("not_found");
  });
});

describe.runIf(posix)("runCommand: policy", () => {
  it("refuses a command matching a deny rule, naming the rule", async () => {
    const err = await refused({}, fx.deps({ policy: { commands: { deny: ["touch *"], allow: [] } } }));
    expect(err.kind).toBe("denied");
    expect(err.message).toBe(`command refused by the agent's policy rule "touch *"`);
    expect(err.details).toEqual({ rule: "touch *" });
  });

  it("refuses a command outside a non-empty allow list", async () => {
    const err = await refused({}, fx.deps({ policy: { commands: { deny: [], allow: ["echo *"] } } }));
    expect(err.kind).toBe("denied");
    expect(err.details).toEqual({ rule: "not in the allow list" });
  });

  it("runs a command the allow list admits", async () => {
    const io = recordingIo();
    const outcome = await runCommand(spec("echo allowed"), io, fx.deps({ policy: { commands: { deny: [], allow: ["echo *"] } } }));
    expect(outcome.exitCode).toBe(0);
    expect(io.text("stdout")).toBe("allowed\n");
  });

  it("refuses everything when the exec capability is off", async () => {
    const deps = fx.deps({ policy: { capabilities: { exec: false, files: true, services: false, registry: false, terminal: false } } });
    const err = await refused({}, deps);
    expect(err.kind).toBe("denied");
    expect(err.message).toBe("the agent's local policy disables exec");
  });
});

describe.runIf(posix)("runCommand: environment and shells", () => {
  it("adds the caller's env to the commands' base environment", async () => {
    const { io } = await run(`printf '%s|%s' "$APP_TEST_VAR" "$(command -v sh >/dev/null && echo path-ok)"`, fx, { env: { APP_TEST_VAR: "a b 'c'" } });
    expect(io.text("stdout")).toBe("a b 'c'|path-ok");
  });

  it("does not interpolate the command into a shell line of ours", async () => {
    const { io } = await run(`printf '%s\\n' "$0" '$(not run)' "a;b"`, fx);
    // $0: the shell started by its absolute path.
    expect(io.text("stdout")).toMatch(/^\/\S*\/sh\n\$\(not run\)\na;b\n$/);
  });

  it("reports a shell that is not installed", async () => {
    const err = await refused({ shell: "cmd" });
    expect(err.kind).toBe("invalid");
    expect(err.message).toBe("shell cmd is not installed on this agent");
  });
});

describe("runCommand: bad specs", () => {
  for (const [name, overrides] of [
    ["an empty command", { command: "  " }],
    ["a zero timeout", { timeoutMs: 0 }],
    ["a timeout setTimeout cannot hold", { timeoutMs: 2 ** 31 }],
    ["a fractional timeout", { timeoutMs: 1.5 }],
    ["a negative output cap", { maxOutputBytes: -1 }],
    ["an unknown shell", { shell: "zsh" as CommandSpec["shell"] }],
    ["an env name with =", { env: { "A=B": "x" } }],
    ["an env name with %%", { env: { "BASH_FUNC_ls%%": "() { id; }" } }],
    ["an env name starting with a digit", { env: { "1X": "x" } }],
    ["an env value too long", { env: { BIG: "x".repeat(33 * 1024) } }],
    ["too many env entries", { env: Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`V${i}`, "x"])) }],
    ["a NUL byte in an env value", { env: { A: "x\0y" } }],
  ] as const) {
    it(`refuses ${name} as invalid`, async () => {
      const err = await refused(overrides as Partial<CommandSpec>);
      expect(err.kind).toBe("invalid");
    });
  }
});
