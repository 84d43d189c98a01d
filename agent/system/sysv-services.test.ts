// The Linux backend against a real service manager: systemd does not run
// here, so SysV init scripts in a temp directory the agent is configured to
// use, started, stopped and restarted for real.
import { existsSync } from "node:fs";
import { lstat, readdir, readlink, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GuruError } from "../../lib/errors.ts";
import { createSysvFixture, processAlive, type SysvFixture } from "./sysv-test-fixture.ts";
import { createSystemManager, type SystemManager } from "./system-manager.ts";
import { lsbState, parseInitScript } from "./sysv-services.ts";

let fx: SysvFixture;
let system: SystemManager;

beforeEach(async () => {
  fx = await createSysvFixture();
  system = createSystemManager({ platform: "linux", serviceManager: "sysv", sysvInitDir: fx.initDir });
});
afterEach(async () => {
  await fx.cleanup();
});

async function refusal(p: Promise<unknown>): Promise<GuruError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GuruError);
  return err as GuruError;
}

describe("SysV services", () => {
  it("reports the manager and what is missing", () => {
    expect(system.support).toMatchObject({ serviceManager: "sysv", services: true, registry: false });
    expect(system.support.registryMissing).toBe("the registry exists only on Windows; this agent runs linux");
  });

  it("lists the scripts with the state their status exit code gives, skipping non-services", async () => {
    const { services, manager } = await system.listServices("");
    expect(manager).toBe("sysv");
    expect(services).toEqual([
      {
        name: "guru-demo",
        displayName: "GuruTunnel test daemon",
        state: "stopped",
        startMode: "disabled",
        pid: 0,
        description: "A sleeping background process that the service tests start and stop.",
      },
    ]);
    expect((await system.listServices("nothing-like-it")).services).toEqual([]);
    expect((await system.listServices("TEST DAEMON")).services).toHaveLength(1);
  });

  it("starts, restarts and stops a real process, reading the state back each time", async () => {
    const started = await system.controlService({ name: "guru-demo", action: "start", dryRun: false, waitMs: 5000 });
    expect(started).toMatchObject({ before: { state: "stopped", pid: 0 }, after: { state: "running" }, changed: true, settled: true, dryRun: false });
    const pid1 = await fx.pid();
    expect(pid1).toBeGreaterThan(0);
    expect(started.after.pid).toBe(pid1);
    expect(processAlive(pid1!)).toBe(true);
    expect((await system.getService("guru-demo")).state).toBe("running");

    const again = await system.controlService({ name: "guru-demo", action: "start", dryRun: false, waitMs: 5000 });
    expect(again).toMatchObject({ changed: false, after: { state: "running", pid: pid1 } });

    const restarted = await system.controlService({ name: "guru-demo", action: "restart", dryRun: false, waitMs: 5000 });
    const pid2 = await fx.pid();
    expect(restarted).toMatchObject({ before: { state: "running", pid: pid1 }, after: { state: "running", pid: pid2 }, changed: true, settled: true });
    expect(pid2).not.toBe(pid1);
    expect(processAlive(pid2!)).toBe(true);

    const stopped = await system.controlService({ name: "guru-demo", action: "stop", dryRun: false, waitMs: 5000 });
    expect(stopped).toMatchObject({ before: { state: "running", pid: pid2 }, after: { state: "stopped", pid: 0 }, changed: true, settled: true });
    expect(existsSync(fx.pidFile)).toBe(false);
    await expect.poll(() => processAlive(pid2!)).toBe(false);
  });

  it("reports a process that died behind the manager's back as failed (LSB status 1)", async () => {
    await system.controlService({ name: "guru-demo", action: "start", dryRun: false, waitMs: 5000 });
    process.kill((await fx.pid())!, "SIGKILL");
    await expect.poll(async () => (await system.getService("guru-demo")).state).toBe("failed");
  });

  it("a dry run reports the change and changes nothing", async () => {
    const dry = await system.controlService({ name: "guru-demo", action: "start", dryRun: true, waitMs: 5000 });
    expect(dry).toMatchObject({ dryRun: true, changed: true, before: { state: "stopped" }, after: { state: "running" } });
    expect(existsSync(fx.pidFile)).toBe(false);
    expect((await system.getService("guru-demo")).state).toBe("stopped");
    const dryEnable = await system.controlService({ name: "guru-demo", action: "enable", dryRun: true, waitMs: 0 });
    expect(dryEnable).toMatchObject({ dryRun: true, changed: true, before: { startMode: "disabled" }, after: { startMode: "automatic" } });
    expect(existsSync(join(fx.root, "rc2.d"))).toBe(false);
  });

  it("enables and disables through rc.d links, as update-rc.d does", async () => {
    const enabled = await system.controlService({ name: "guru-demo", action: "enable", dryRun: false, waitMs: 1000 });
    expect(enabled).toMatchObject({ before: { startMode: "disabled" }, after: { startMode: "automatic" }, settled: true });
    expect(await readdir(join(fx.root, "rc3.d"))).toEqual(["S20guru-demo"]);
    expect(await readdir(join(fx.root, "rc0.d"))).toEqual(["K01guru-demo"]);
    expect(await readlink(join(fx.root, "rc3.d", "S20guru-demo"))).toBe("../init.d/guru-demo");
    const disabled = await system.controlService({ name: "guru-demo", action: "disable", dryRun: false, waitMs: 1000 });
    expect(disabled).toMatchObject({ before: { startMode: "automatic" }, after: { startMode: "disabled" } });
    expect(await readdir(join(fx.root, "rc3.d"))).toEqual(["K20guru-demo"]);
    // The service itself was never started.
    expect(existsSync(fx.pidFile)).toBe(false);
  });

  it("refuses a name that is a command, and nothing runs", async () => {
    for (const name of ["x; touch pwned", "guru-demo; touch pwned", "$(touch pwned)", "../../../bin/sh", "-rf", "a`touch pwned`", "x\ntouch pwned"]) {
      const err = await refusal(system.controlService({ name, action: "start", dryRun: false, waitMs: 1000 }));
      expect(err.kind, name).toBe("invalid");
      expect(err.message).toMatch(/is not a service name/);
      await refusal(system.getService(name));
    }
    expect(existsSync(join(process.cwd(), "pwned"))).toBe(false);
    expect(existsSync(join(fx.initDir, "pwned"))).toBe(false);
    expect(existsSync(fx.pidFile)).toBe(false);
    expect((await system.getService("guru-demo")).state).toBe("stopped");
  });

  it("answers not_found for an unknown service and for a file that is not an executable script", async () => {
    expect((await refusal(system.getService("no-such-service"))).kind).toBe("not_found");
    await writeFile(join(fx.initDir, "plain"), "#!/bin/sh\nexit 0\n");
    await chmod(join(fx.initDir, "plain"), 0o644);
    expect((await refusal(system.controlService({ name: "plain", action: "start", dryRun: false, waitMs: 100 }))).kind).toBe("not_found");
    expect((await lstat(join(fx.initDir, "plain"))).mode & 0o777).toBe(0o644);
  });

  it("the registry on Linux is a failed precondition naming what is missing", async () => {
    const err = await refusal(system.readRegistry("HKLM\\SOFTWARE\\Vendor", "Version"));
    expect(err.kind).toBe("failed_precondition");
    expect(err.message).toBe("the registry is not available on this agent: the registry exists only on Windows; this agent runs linux");
  });

  it("reports no service manager when neither systemd nor the init dir exists", async () => {
    const none = createSystemManager({ platform: "linux", serviceManager: "auto", sysvInitDir: join(fx.root, "missing") });
    if (existsSync("/run/systemd/system")) return expect(none.support.serviceManager).toBe("systemd");
    expect(none.support).toMatchObject({ services: false, serviceManager: "" });
    const err = await refusal(none.listServices(""));
    expect(err.kind).toBe("failed_precondition");
    expect(err.message).toContain("does not exist");
  });
});

describe("LSB helpers", () => {
  it("maps status exit codes", () => {
    expect([0, 1, 2, 3, 4, 150].map(lsbState)).toEqual(["running", "failed", "failed", "stopped", "unknown", "unknown"]);
  });
  it("reads the LSB header and a literal pidfile", () => {
    expect(parseInitScript("# Short-Description: web\n# Description: the web\nPIDFILE=/run/web.pid\n")).toEqual({
      shortDescription: "web",
      description: "the web",
      pidFile: "/run/web.pid",
    });
    expect(parseInitScript('PIDFILE="$RUN/web.pid"\n').pidFile).toBe("");
  });
});
