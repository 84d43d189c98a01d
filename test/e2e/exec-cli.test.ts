// `guru run` as a user runs it: the real binary against a real server and
// agent, configured by GURU_URL and GURU_TOKEN, with the remote exit code as
// its own, live output on its stdout and stderr, and Ctrl-C cancelling.
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { describeDatabases } from "../support/databases.ts";
import { waitDead } from "../support/exec-helpers.ts";
import { startTestServer, type AgentProcess, type TestServer } from "../support/harness.ts";

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

interface Run {
  code: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
}

function guruRun(args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [guruBin, "run", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return {
    code: new Promise((resolve) => child.on("close", (code) => resolve(code))),
    stdout: () => stdout,
    stderr: () => stderr,
    kill: (signal) => child.kill(signal),
  };
}

describeDatabases("guru run", (kind) => {
  let t: TestServer;
  let agent: AgentProcess;
  let env: Record<string, string>;
  let api: Awaited<ReturnType<TestServer["createTech"]>>["api"];
  beforeAll(async () => {
    t = await startTestServer({ kind });
    agent = await t.startAgent("local");
    const tech = await t.createTech("cli-tech");
    api = tech.api;
    env = { GURU_URL: t.url, GURU_TOKEN: tech.token };
  });
  afterAll(async () => {
    await t?.close();
  });

  it("runs `guru run local -- uname -a` with the remote output and exit code, and closes the tunnel it opened", async () => {
    const run = guruRun(["local", "--", "uname", "-a"], env);
    expect(await run.code, run.stderr()).toBe(0);
    expect(run.stdout()).toBe(execFileSync("uname", ["-a"]).toString());
    const { sessions } = await api.sessions.listSessions({ agentId: agent.agentId, status: SessionStatus.ACTIVE });
    expect(sessions).toHaveLength(0);
    await t.server.commands.drain(); // results are written just after the answer
    const rows = await t.server.store.audit.listCommands({ agentId: agent.agentId });
    expect(rows[0]).toMatchObject({ command: "uname -a", outcome: "allowed", exitCode: 0 });
  });

  it("streams stdout and stderr apart and exits with the remote exit code, in an open tunnel it keeps", async () => {
    const { sessionId } = await api.sessions.openTunnel({ agentId: agent.agentId });
    try {
      const run = guruRun([agent.agentId, "--", "echo out; echo err >&2; exit 3"], env);
      expect(await run.code).toBe(3);
      expect(run.stdout()).toBe("out\n");
      expect(run.stderr()).toBe("err\n");
      const status = await api.sessions.getTunnelStatus({ sessionId });
      expect(status.session?.status).toBe(SessionStatus.ACTIVE);
      await t.server.commands.drain(); // results are written just after the answer
      expect((await t.server.store.audit.listCommands({ sessionId }))[0].command).toBe("echo out; echo err >&2; exit 3");
    } finally {
      await api.sessions.closeTunnel({ sessionId });
    }
  });

  it("prints one JSON object with --json, honours --cwd and --shell, and exits 124 on --timeout", async () => {
    const json = guruRun(["local", "--json", "--cwd", t.tempDir, "--shell", "sh", "--", "pwd; exit 2"], env);
    expect(await json.code).toBe(2);
    expect(JSON.parse(json.stdout())).toMatchObject({
      exitCode: 2,
      reason: "exited",
      stdout: `${t.tempDir}\n`,
      stderr: "",
      truncated: false,
      agentId: agent.agentId,
    });

    const slow = guruRun(["local", "--timeout", "500ms", "--", "sleep 20"], env);
    expect(await slow.code).toBe(124);
    expect(slow.stderr()).toContain("timed out");
  });

  it("cancels the remote command on Ctrl-C and exits 130", async () => {
    const run = guruRun(["local", "--", "echo $$; sleep 30"], env);
    const started = Date.now();
    while (!/^\d+\n/.test(run.stdout())) {
      if (Date.now() - started > 10_000) throw new Error(`no pid printed: ${run.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const pid = Number(run.stdout().trim());
    run.kill("SIGINT");
    expect(await run.code).toBe(130);
    expect(run.stderr()).toContain("canceled");
    await waitDead([pid]);
  });

  it("says why when the server refuses, with exit code 255; usage errors exit 1", async () => {
    const badToken = guruRun(["local", "--", "true"], { ...env, GURU_TOKEN: "nope" });
    expect(await badToken.code).not.toBe(0);
    const denied = guruRun(["local", "--cwd", "/etc", "--", "true"], env);
    expect(await denied.code).toBe(255);
    expect(denied.stderr()).toContain("outside the allowed paths");
    const usage = guruRun(["local"], env);
    expect(await usage.code).toBe(1);
    expect(usage.stderr()).toContain("usage: guru run AGENT");
  });
  it("finds the agent by id or exact name before a partial one, by a unique partial name, and refuses an ambiguous one", async () => {
    await t.admin.admin.enrollAgent({ name: "local-annex" });
    await t.admin.admin.enrollAgent({ name: "local-backup" });
    expect((await api.agents.listAgents({ agentId: agent.agentId })).agents.map((a) => a.name)).toEqual(["local"]);
    expect((await api.agents.listAgents({ agentId: "local" })).agents).toEqual([]);

    const exact = guruRun(["local", "--", "echo exact"], env);
    expect(await exact.code, exact.stderr()).toBe(0);
    expect(exact.stdout()).toBe("exact\n");

    // A unique partial name resolves: to the offline annex, which the server then refuses.
    const partial = guruRun(["ANNEX", "--", "true"], env);
    expect(await partial.code).toBe(255);
    expect(partial.stderr()).toMatch(/offline|not connected/i);
    expect(partial.stderr()).not.toContain("no agent named");

    const ambiguous = guruRun(["local-", "--", "true"], env);
    expect(await ambiguous.code).toBe(1);
    expect(ambiguous.stderr()).toMatch(/^guru run: no agent named "local-"/);
  });
});
