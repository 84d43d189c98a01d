// Real pseudo-terminals through node-pty: size and resize, exit codes,
// input, flow control, policy refusals, and the whole tree killed on abort.
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isGuruError } from "../../lib/errors.ts";
import { silentLogger } from "../../lib/logging.ts";
import { createPathGuard } from "../policy/path-guard.ts";
import type { LocalPolicy } from "../policy/local-policy.ts";
import { startPty, type PtySpec, type RunPtyDeps } from "./run-pty.ts";
import { waitDead } from "../../test/support/exec-helpers.ts";

let root: string;
beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), "guru-pty-")));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function deps(policy: Partial<LocalPolicy> = {}): RunPtyDeps {
  const full: LocalPolicy = {
    allowedPaths: [root],
    commands: { deny: [], allow: [] },
    capabilities: { exec: true, files: true, services: false, registry: false, terminal: true },
    exec: { allowEnv: [] },
    consent: { mode: "ask", requiredForEverySession: false },
    services: { allow: [], deny: [], control: true },
    registryKeys: [],
    ...policy,
  };
  return { policy: full, pathGuard: createPathGuard(full.allowedPaths), logger: silentLogger(), killGraceMs: 300 };
}

const spec = (over: Partial<PtySpec> = {}): PtySpec => ({ command: "", shell: "sh", columns: 80, rows: 24, env: {}, term: "xterm-256color", ...over });

function collector(delayMs = 0) {
  let text = "";
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  return {
    onOutput: async (data: Uint8Array) => {
      text += Buffer.from(data).toString();
      for (const w of [...waiters]) {
        if (!w.pattern.test(text)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    },
    text: () => text,
    until(pattern: RegExp, timeoutMs = 5000): Promise<void> {
      if (pattern.test(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} in ${JSON.stringify(text)}`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
}

describe("startPty", () => {
  it("runs a command with the asked size, follows a resize, and passes the exit code through", async () => {
    const out = collector();
    const running = await startPty(
      spec({ command: "tput cols; tput lines; read x; tput cols; exit 7" }),
      { onOutput: out.onOutput, signal: new AbortController().signal },
      deps(),
    );
    await out.until(/80\r\n24\r\n/);
    running.resize(132, 40);
    await running.write(Buffer.from("\r"));
    const outcome = await running.outcome;
    expect(out.text()).toMatch(/80\r\n24\r\n[\s\S]*132\r\n$/);
    expect(outcome).toMatchObject({ exitCode: 7, reason: "exited", signal: "", inputBytes: 1 });
    expect(outcome.outputBytes).toBe(Buffer.byteLength(out.text()));
  });

  it("delivers Ctrl-C to the foreground program as a terminal does", async () => {
    const out = collector();
    const running = await startPty(spec(), { onOutput: out.onOutput, signal: new AbortController().signal }, deps());
    await running.write(Buffer.from("sleep 30\r"));
    await new Promise((r) => setTimeout(r, 300));
    const before = Date.now();
    await running.write(Buffer.from("\x03"));
    await running.write(Buffer.from("echo after-$?\r"));
    await out.until(/after-130/);
    expect(Date.now() - before).toBeLessThan(5000);
    await running.write(Buffer.from("exit 0\r"));
    expect((await running.outcome).reason).toBe("exited");
  });

  it("kills the shell and everything it started, background jobs included, on abort", async () => {
    const out = collector();
    const abort = new AbortController();
    const running = await startPty(spec({ shell: "bash" }), { onOutput: out.onOutput, signal: abort.signal }, deps());
    await running.write(Buffer.from("sleep 100 & echo bg=$!; (setsid sleep 101 & echo sid=$!) ; echo sh=$$\r"));
    await out.until(/sh=(\d+)/);
    const pids = ["bg", "sid", "sh"].map((k) => Number(new RegExp(`${k}=(\\d+)`).exec(out.text())?.[1]));
    abort.abort();
    const outcome = await running.outcome;
    expect(outcome.reason).toBe("canceled");
    // setsid's child left the session and its parent subshell already exited: it is out of reach, as for commands.
    await waitDead([pids[0], pids[2]]);
  });

  it("holds the program while the consumer is slow (flow control), and loses nothing", async () => {
    const out = collector(20);
    const running = await startPty(spec({ command: "seq 1 20000" }), { onOutput: out.onOutput, signal: new AbortController().signal }, deps());
    const outcome = await running.outcome;
    expect(outcome.exitCode).toBe(0);
    const lines = out.text().trim().split("\r\n");
    expect(lines.length).toBe(20000);
    expect(lines.at(-1)).toBe("20000");
  });

  it("refuses what the owner's policy does not allow, before starting anything", async () => {
    const io = { onOutput: async () => {}, signal: new AbortController().signal };
    const cases: [Partial<LocalPolicy>, Partial<PtySpec>, string, RegExp][] = [
      [{ capabilities: { exec: true, files: true, services: false, registry: false, terminal: false } }, {}, "denied", /disables terminal/],
      [{ commands: { deny: [], allow: ["df -h"] } }, {}, "denied", /interactive shell would bypass/],
      [{ commands: { deny: ["rm *"], allow: [] } }, { command: "rm -rf /tmp/x" }, "denied", /rule "rm \*"/],
      [{}, { columns: 0 }, "invalid", /columns/],
      [{}, { env: { "A=B": "x" } }, "invalid", /env name "A=B"/],
      [{}, { workingDir: "/etc" }, "denied", /outside/],
    ];
    for (const [policy, over, kind, message] of cases) {
      const err = await startPty(spec(over), io, deps(policy)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isGuruError(err, kind as "denied"), `${JSON.stringify(over)}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toMatch(message);
    }
  });
});
