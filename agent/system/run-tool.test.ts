// The tool runner: argv only (no shell), and a call ends when the tool exits
// even if a daemon it started keeps the output pipes open, as many init
// scripts' daemons do.
import { existsSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { GuruError } from "../../lib/errors.ts";
import { runTool } from "./run-tool.ts";
import { processAlive } from "./sysv-test-fixture.ts";

const leftovers: number[] = [];
afterEach(async () => {
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
});

describe("runTool", () => {
  it("passes arguments as they are: nothing is interpreted by a shell", async () => {
    const r = await runTool("/bin/echo", ["x; touch pwned", "$(touch pwned)"], { env: { ...process.env }, timeoutMs: 5000 });
    expect(r).toMatchObject({ code: 0, stdout: "x; touch pwned $(touch pwned)\n" });
    expect(existsSync("pwned")).toBe(false);
  });

  it("returns when the tool exits although a daemon it left behind holds its stdout", async () => {
    const started = Date.now();
    const r = await runTool("/bin/sh", ["-c", "sleep 30 & echo $!; echo started"], { timeoutMs: 10_000 });
    expect(Date.now() - started).toBeLessThan(5000);
    const [pid, word] = r.stdout.trim().split("\n");
    leftovers.push(Number(pid));
    expect(word).toBe("started");
    expect(r.code).toBe(0);
    // The daemon lives on in its own process group: it is the service, not ours to kill.
    expect(processAlive(Number(pid))).toBe(true);
  });

  it("reports a missing tool as a failed precondition naming it, and kills one that overruns", async () => {
    const missing = await runTool("/nonexistent/systemctl", []).catch((e: unknown) => e as GuruError);
    expect(missing).toMatchObject({ kind: "failed_precondition", message: "/nonexistent/systemctl is not installed on this agent" });
    const slow = await runTool("/bin/sleep", ["5"], { timeoutMs: 200 }).catch((e: unknown) => e as GuruError);
    expect(slow).toMatchObject({ kind: "timeout" });
  });
});
