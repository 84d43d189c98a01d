// The environment a command gets, through both ways of starting it: a clean
// base (never the agent's own: its key, GURU_*, DATABASE_URL), the caller's
// variables, and refusals of variables that change what a shell or loader
// runs, unless the owner's policy allows the name.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GuruError } from "../../lib/errors.ts";
import { safePosixPath } from "./command-env.ts";
import { createExecFixture, recordingIo, spec, type ExecFixture, type LauncherKind } from "../../test/support/exec-test-fixture.ts";
import { createExecSetup, runCommand } from "./run-command.ts";

const posix = process.platform !== "win32";

// Secrets as the agent's own environment would hold them.
const agentEnv: NodeJS.ProcessEnv = {
  ...process.env,
  GURU_AGENT_KEY: "guru_ak_secret-agent-key-value",
  GURU_TOKEN: "secret-token",
  DATABASE_URL: "postgres://guru:hunter2@db/guru",
  AWS_SECRET_ACCESS_KEY: "aws-secret",
  PATH: "/tmp/evil-bin:/usr/bin:/bin",
};

function envLines(text: string): Map<string, string> {
  return new Map(
    text
      .trim()
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

for (const kind of ["direct", "launcher"] as LauncherKind[]) {
  describe.runIf(posix)(`command environment (${kind})`, () => {
    let fx: ExecFixture;
    let marker: string;
    let script: string;
    const setup = createExecSetup(process.platform, agentEnv);

    beforeAll(async () => {
      fx = await createExecFixture(kind);
      marker = join(fx.root, `bash-env-ran-${kind}`);
      script = join(fx.root, "bash-env.sh");
      await writeFile(script, `touch ${marker}\n`);
    });
    afterAll(() => fx.cleanup());

    it("is a clean base: no GURU_*, no DATABASE_URL, no secrets, a fixed PATH", async () => {
      const io = recordingIo();
      const outcome = await runCommand(spec("env"), io, fx.deps({ setup }));
      expect(outcome.exitCode).toBe(0);
      const env = envLines(io.text("stdout"));
      expect([...env.keys()].filter((k) => k.startsWith("GURU_"))).toEqual([]);
      expect(env.has("DATABASE_URL")).toBe(false);
      expect(env.has("AWS_SECRET_ACCESS_KEY")).toBe(false);
      expect(io.text("stdout")).not.toContain("secret");
      expect(io.text("stdout")).not.toContain("hunter2");
      expect(env.get("PATH")).toBe(safePosixPath);
      expect(env.get("HOME")).toBeTruthy();
      // Only the base names, and what the shell itself sets (PWD, SHLVL, _).
      const allowed = new Set(["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TZ", "SHELL", "PWD", "OLDPWD", "SHLVL", "_"]);
      expect([...env.keys()].filter((k) => !allowed.has(k))).toEqual([]);
    });

    it("adds the caller's variables", async () => {
      const io = recordingIo();
      await runCommand(spec('printf %s "$APP_MODE"', { env: { APP_MODE: "a b 'c' $x" } }), io, fx.deps({ setup }));
      expect(io.text("stdout")).toBe("a b 'c' $x");
    });

    for (const [name, value] of [
      ["BASH_ENV", "SCRIPT"],
      ["ENV", "SCRIPT"],
      ["LD_PRELOAD", "/tmp/evil.so"],
      ["PATH", "/tmp/evil-bin"],
      ["SHELLOPTS", "xtrace"],
      ["NODE_OPTIONS", "--require /tmp/x.js"],
      ["GIT_SSH_COMMAND", "touch /tmp/x"],
      ["PYTHONSTARTUP", "/tmp/x.py"],
      ["DYLD_INSERT_LIBRARIES", "/tmp/x.dylib"],
      ["ld_preload", "/tmp/evil.so"],
    ] as const) {
      it(`refuses ${name} from a caller, naming it and the rule, and runs nothing`, async () => {
        const io = recordingIo();
        const env = { [name]: value === "SCRIPT" ? script : value };
        const err = await runCommand(spec(`touch ${marker}`, { shell: "bash", env }), io, fx.deps({ setup })).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GuruError);
        expect((err as GuruError).kind).toBe("denied");
        expect((err as GuruError).message).toContain(`environment variable ${name} refused by the agent's policy`);
        expect((err as GuruError).message).toContain("exec.allowEnv");
        expect((err as GuruError).details).toMatchObject({ variable: name });
        expect(io.chunks).toHaveLength(0);
        expect(existsSync(marker), "nothing may have run").toBe(false);
      });
    }

    it("refuses GURU_* names even when the policy would allow everything else", async () => {
      const io = recordingIo();
      const deps = fx.deps({ setup, policy: { exec: { allowEnv: ["PATH", "BASH_ENV"] } } });
      const err = (await runCommand(spec(`touch ${marker}`, { env: { GURU_AGENT_KEY: "x".repeat(20) } }), io, deps).catch((e: unknown) => e)) as GuruError;
      expect(err.kind).toBe("denied");
      expect(err.message).toContain("GURU_AGENT_KEY");
      expect(err.details).toEqual({ variable: "GURU_AGENT_KEY", rule: "GURU_*" });
      expect(existsSync(marker)).toBe(false);
    });

    it("passes a refused name the owner's policy allows", async () => {
      const deps = fx.deps({ setup, policy: { exec: { allowEnv: ["PATH", "BASH_*"] } } });
      const io = recordingIo();
      await runCommand(spec('printf %s "$PATH"', { env: { PATH: "/opt/tools/bin:/usr/bin:/bin" } }), io, deps);
      expect(io.text("stdout")).toBe("/opt/tools/bin:/usr/bin:/bin");
      // BASH_ENV allowed: bash sources the script, as the owner chose.
      await runCommand(spec("true", { shell: "bash", env: { BASH_ENV: script } }), recordingIo(), deps);
      expect(existsSync(marker)).toBe(true);
    });
  });
}
