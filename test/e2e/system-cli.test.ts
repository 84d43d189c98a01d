// `guru services`, `guru service` and `guru reg` as a user runs them: the real
// binary against a real server and an agent driving a real SysV init script.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { createSysvFixture, processAlive, type SysvFixture } from "../../agent/system/sysv-test-fixture.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type AgentProcess, type TestServer } from "../support/harness.ts";

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

function guru(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [guruBin, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describeDatabases("guru services, service and reg", (kind) => {
  let t: TestServer;
  let fx: SysvFixture;
  let agent: AgentProcess;
  let env: Record<string, string>;
  let api: Awaited<ReturnType<TestServer["createTech"]>>["api"];
  beforeAll(async () => {
    t = await startTestServer({ kind });
    fx = await createSysvFixture();
    agent = await t.startAgent("box", { env: { GURU_ENABLE: "services", GURU_SERVICE_MANAGER: "sysv", GURU_SYSV_INIT_DIR: fx.initDir } });
    const tech = await t.createTech("svc-cli");
    api = tech.api;
    env = { GURU_URL: t.url, GURU_TOKEN: tech.token };
  });
  afterAll(async () => {
    await t?.close();
    await fx?.cleanup();
  });

  it("lists, dry-runs, starts and stops with plain and JSON output, closing the tunnels it opened", async () => {
    const list = await guru(["services", "box", "guru"], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^guru-demo\s+stopped\s+disabled\s+-\s+GuruTunnel test daemon\n$/);

    const dry = await guru(["service", "box", "guru-demo", "start", "--dry-run", "--json"], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, changed: true, before: { state: "stopped" }, after: { state: "running" } });
    expect(existsSync(fx.pidFile)).toBe(false);

    const start = await guru(["service", "box", "guru-demo", "start", "--wait", "5s"], env);
    expect(start.code, start.stderr).toBe(0);
    const pid = (await fx.pid())!;
    expect(start.stdout).toBe(`guru-demo start: stopped, disabled → running, disabled, pid ${pid}  [done; sysv]\n`);
    expect(processAlive(pid)).toBe(true);

    const json = JSON.parse((await guru(["services", "box", "--json"], env)).stdout) as {
      serviceManager: string;
      services: { name: string; state: string; pid: number }[];
    };
    expect(json).toEqual({
      serviceManager: "sysv",
      services: [{ name: "guru-demo", displayName: "GuruTunnel test daemon", state: "running", startMode: "disabled", pid, description: expect.any(String) }],
    });

    const stop = await guru(["service", "box", "guru-demo", "stop", "--json"], env);
    expect(JSON.parse(stop.stdout)).toMatchObject({ changed: true, settled: true, after: { state: "stopped", pid: null } });
    const { sessions } = await api.sessions.listSessions({ agentId: agent.agentId, status: SessionStatus.ACTIVE });
    expect(sessions).toHaveLength(0);
  });

  it("refuses a bad name, an unknown action and the registry on Linux with a message and exit code 1", async () => {
    const bad = await guru(["service", "box", "x; touch pwned", "start"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('guru service: "x; touch pwned" is not a service name: use letters, digits and . _ - @ : +\n');
    expect(existsSync("pwned")).toBe(false);
    const usage = await guru(["service", "box", "guru-demo", "explode"], env);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toContain("usage: guru service AGENT NAME start|stop|restart|enable|disable");
    const reg = await guru(["reg", "box", "get", "HKLM\\SOFTWARE\\Vendor", "Version"], env);
    expect(reg.code).toBe(1);
    expect(reg.stderr).toBe("guru reg: the registry is not available on this agent: the registry exists only on Windows; this agent runs linux\n");
    expect(existsSync(fx.pidFile)).toBe(false);
  });
});
