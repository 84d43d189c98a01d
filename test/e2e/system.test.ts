// Services and the registry through the real Connect API, a real server and
// a real agent process driving real SysV init scripts (systemd does not run
// here): start, stop and restart read back, dry runs that change nothing,
// refusals by name, by policy and by OS, audit rows on both sides, and the
// rate limit control operations share with commands.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { RegistryValueType, ServiceAction, ServiceStartMode, ServiceState } from "../../gen/guru/api/v1/system_pb.js";
import { createSysvFixture, processAlive, type SysvFixture } from "../../agent/system/sysv-test-fixture.ts";
import { describeDatabases } from "../support/databases.ts";
import { errorOf, openTunnel, type Tunnel } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";

const rateLimit = 25;

describeDatabases("services and registry", (kind) => {
  let t: TestServer;
  let fx: SysvFixture;
  let tunnel: Tunnel;
  let stateDir: string;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { commandRateLimit: rateLimit, commandRateWindowMs: 60_000 } });
    fx = await createSysvFixture();
    stateDir = await mkdtemp(join(t.tempDir, "state-"));
    const { agentId, agentKey } = await t.enrollAgent(`svc-${kind}`);
    const agent = await t.spawnAgent({
      agentId,
      agentKey,
      stateDir,
      env: { GURU_ENABLE: "services,registry", GURU_SERVICE_MANAGER: "sysv", GURU_SYSV_INIT_DIR: fx.initDir },
    });
    await agent.waitOnline();
    const tech = await t.createTech(`tech-svc-${kind}`);
    const { sessionId } = await tech.api.sessions.openTunnel({ agentId });
    tunnel = { agent, api: tech.api, technicianId: tech.technicianId, token: tech.token, sessionId };
  });
  afterAll(async () => {
    await t?.close();
    await fx?.cleanup();
  });

  it("advertises what works: services here, not the registry (Linux), in ListAgents and GetCapabilities", async () => {
    const { agents } = await tunnel.api.agents.listAgents({});
    const me = agents.find((a) => a.agentId === tunnel.agent.agentId)!;
    expect(me.capabilities).toContain("services");
    expect(me.capabilities).not.toContain("registry");
    const res = await fetch(`${t.url}/guru.integration.v1.IntegrationService/GetCapabilities`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${t.adminToken}` },
      body: "{}",
    });
    expect(((await res.json()) as { features: string[] }).features).toEqual(expect.arrayContaining(["services", "registry"]));
  });

  it("lists services with typed state and start mode", async () => {
    const r = await tunnel.api.system.listServices({ sessionId: tunnel.sessionId, filter: "guru" });
    expect(r.serviceManager).toBe("sysv");
    expect(r.services.map((s) => ({ name: s.name, state: s.state, startMode: s.startMode, displayName: s.displayName }))).toEqual([
      { name: "guru-demo", state: ServiceState.STOPPED, startMode: ServiceStartMode.DISABLED, displayName: "GuruTunnel test daemon" },
    ]);
  });

  it("starts, restarts and stops the service for real; a dry run changes nothing", async () => {
    const { sessionId, api } = tunnel;
    const dry = await api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.START, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, changed: true, before: { state: ServiceState.STOPPED }, after: { state: ServiceState.RUNNING } });
    expect(existsSync(fx.pidFile)).toBe(false);

    const started = await api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.START, waitMs: 5000 });
    expect(started).toMatchObject({
      dryRun: false,
      changed: true,
      settled: true,
      serviceManager: "sysv",
      before: { state: ServiceState.STOPPED },
      after: { state: ServiceState.RUNNING },
    });
    const pid1 = (await fx.pid())!;
    expect(started.after?.pid).toBe(pid1);
    expect(processAlive(pid1)).toBe(true);

    const dryStop = await api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.STOP, dryRun: true });
    expect(dryStop).toMatchObject({ dryRun: true, after: { state: ServiceState.STOPPED } });
    expect(processAlive(pid1)).toBe(true);
    expect(await fx.pid()).toBe(pid1);

    const restarted = await api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.RESTART, waitMs: 5000 });
    const pid2 = (await fx.pid())!;
    expect(pid2).not.toBe(pid1);
    expect(restarted).toMatchObject({ settled: true, before: { pid: pid1, state: ServiceState.RUNNING }, after: { pid: pid2, state: ServiceState.RUNNING } });

    const stopped = await api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.STOP, waitMs: 5000 });
    expect(stopped).toMatchObject({ settled: true, before: { state: ServiceState.RUNNING }, after: { state: ServiceState.STOPPED, pid: 0 } });
    await expect.poll(() => processAlive(pid2)).toBe(false);

    const rows = (await t.server.store.systemAudit.list({ sessionId })).filter((r) => r.operation === "service_control").reverse();
    expect(rows.map((r) => [r.action, r.dryRun, r.outcome])).toEqual([
      ["start", true, "allowed"],
      ["start", false, "allowed"],
      ["stop", true, "allowed"],
      ["restart", false, "allowed"],
      ["stop", false, "allowed"],
    ]);
    expect(rows[1]).toMatchObject({ target: "guru-demo", before: { state: "stopped" }, after: { state: "running", pid: pid1 } });
    // The agent's own record, with before, after and the dry-run flag.
    const oplog = (await readFile(join(stateDir, "operations.log"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { operation: string; detail: Record<string, unknown> });
    const controls = oplog.filter((e) => e.operation === "service_control");
    expect(controls[0].detail).toMatchObject({ name: "guru-demo", action: "start", dryRun: true, before: { state: "stopped" }, after: { state: "running" } });
    expect(controls[1].detail).toMatchObject({ dryRun: false, changed: true, settled: true });
  });

  it("refuses a name that is a command: InvalidArgument, audited, nothing touched", async () => {
    const { sessionId, api } = tunnel;
    const err = await errorOf(api.system.controlService({ sessionId, name: "x; touch pwned", action: ServiceAction.START }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toContain("is not a service name");
    expect(existsSync(join(process.cwd(), "pwned"))).toBe(false);
    expect(existsSync(join(fx.initDir, "pwned"))).toBe(false);
    const [row] = await t.server.store.systemAudit.list({ sessionId, limit: 1 });
    expect(row).toMatchObject({ operation: "service_control", target: "x; touch pwned", outcome: "refused" });
    expect((await api.system.listServices({ sessionId, filter: "guru-demo" })).services[0].state).toBe(ServiceState.STOPPED);
  });

  it("the registry on Linux is FailedPrecondition naming what is missing", async () => {
    const { sessionId, api } = tunnel;
    const err = await errorOf(api.system.readRegistry({ sessionId, key: "HKLM\\SOFTWARE\\Vendor", valueName: "Version" }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toBe("the registry is not available on this agent: the registry exists only on Windows; this agent runs linux");
    const w = await errorOf(
      api.system.writeRegistry({ sessionId, key: "HKLM\\SOFTWARE\\Vendor", valueName: "x", type: RegistryValueType.SZ, value: "y", dryRun: true }),
    );
    expect(w.code).toBe(Code.FailedPrecondition);
    const [row] = await t.server.store.systemAudit.list({ sessionId, limit: 1 });
    expect(row).toMatchObject({ operation: "registry_write", dryRun: true, outcome: "refused" });
  });

  it("refuses what the local policy does not allow, naming the rule", async () => {
    const policy = join(t.tempDir, "policy.json");
    await writeFile(policy, JSON.stringify({ capabilities: { services: true }, services: { deny: ["guru-*"] } }));
    const denied = await openTunnel(t, "svc-deny", { env: { GURU_POLICY: policy, GURU_SERVICE_MANAGER: "sysv", GURU_SYSV_INIT_DIR: fx.initDir } });
    const err = await errorOf(denied.api.system.controlService({ sessionId: denied.sessionId, name: "guru-demo", action: ServiceAction.START }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toContain('services.deny "guru-*"');
    expect(existsSync(fx.pidFile)).toBe(false);
    // Listing is not control.
    expect((await denied.api.system.listServices({ sessionId: denied.sessionId, filter: "" })).services.map((s) => s.name)).toContain("guru-demo");

    const off = await openTunnel(t, "svc-off", { env: { GURU_SERVICE_MANAGER: "sysv", GURU_SYSV_INIT_DIR: fx.initDir } });
    const offErr = await errorOf(off.api.system.listServices({ sessionId: off.sessionId, filter: "" }));
    expect(offErr.code).toBe(Code.PermissionDenied);
    expect(offErr.message).toContain("capabilities.services");
    const [row] = await t.server.store.systemAudit.list({ sessionId: off.sessionId, limit: 1 });
    expect(row).toMatchObject({ operation: "service_list", outcome: "refused" });
  });

  it("refuses bad input and someone else's session before the agent is asked", async () => {
    const { sessionId, api } = tunnel;
    expect((await errorOf(api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.UNSPECIFIED }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(api.system.controlService({ sessionId, name: "", action: ServiceAction.START }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(api.system.listServices({ sessionId: "not-a-uuid", filter: "" }))).code).toBe(Code.InvalidArgument);
    const other = await t.createTech(`other-${kind}`);
    expect((await errorOf(other.api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.START }))).code).toBe(Code.PermissionDenied);
    expect(existsSync(fx.pidFile)).toBe(false);
  });

  it("control operations count against the technician's rate limit, dry runs included", async () => {
    const { sessionId, api } = tunnel;
    let refused: { code: Code; message: string } | undefined;
    for (let i = 0; i <= rateLimit && refused === undefined; i++) {
      try {
        await api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.START, dryRun: true });
      } catch {
        refused = await errorOf(api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.START, dryRun: true }));
      }
    }
    expect(refused?.code).toBe(Code.ResourceExhausted);
    expect(refused?.message).toContain("commands and control operations");
    // Bad input is refused for what it is, before the rate limit is asked.
    expect((await errorOf(api.system.controlService({ sessionId, name: "guru-demo", action: ServiceAction.UNSPECIFIED }))).code).toBe(Code.InvalidArgument);
    // A command shares the budget; listing does not use it.
    expect((await errorOf(api.exec.runCommand({ sessionId, command: "true" }))).code).toBe(Code.ResourceExhausted);
    expect((await api.system.listServices({ sessionId, filter: "guru-demo" })).services[0].state).toBe(ServiceState.STOPPED);
    expect(existsSync(fx.pidFile)).toBe(false);
  });
});
