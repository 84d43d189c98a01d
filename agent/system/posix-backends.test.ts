// The launchd and systemd backends without those systems: the argv they
// build and their parsing of launchctl and `systemctl show` output.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { GuruError } from "../../lib/errors.ts";
import { controlArgv as launchdArgv, createLaunchdServices, parseLaunchctlList, parsePrint, parsePrintDisabled } from "./launchd-services.ts";
import type { ToolRunner } from "./run-tool.ts";
import { controlArgv as systemdArgv, createSystemdServices, parseShow, parseUnitNames, toServiceInfo } from "./systemd-services.ts";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");

/** Answers each call from a table keyed by its argv. */
function scriptedRunner(answers: Record<string, { stdout: string; code?: number }>) {
  const calls: string[][] = [];
  const run: ToolRunner = async (file, args) => {
    calls.push([file, ...args]);
    const a = answers[args.join(" ")];
    if (a === undefined) throw new Error(`unexpected call: ${file} ${args.join(" ")}`);
    return { code: a.code ?? 0, signal: "", stdout: a.stdout, stderr: "" };
  };
  return { run, calls };
}

describe("launchd", () => {
  it("parses launchctl list: running by pid, failed by a non-zero last exit", () => {
    expect(parseLaunchctlList(fixture("launchctl-list.txt"))).toEqual([
      { label: "com.apple.SafariHistoryServiceAgent", pid: 0, lastExitStatus: 0 },
      { label: "com.apple.Finder", pid: 412, lastExitStatus: 0 },
      { label: "com.apple.cfprefsd.xpc.agent", pid: 0, lastExitStatus: -9 },
      { label: "com.openssh.sshd", pid: 367, lastExitStatus: 0 },
      { label: "com.example.backup", pid: 0, lastExitStatus: 78 },
    ]);
  });

  it("parses print-disabled in both the current and the older wording", () => {
    expect([...parsePrintDisabled(fixture("launchctl-print-disabled.txt"))]).toEqual([
      ["com.apple.ftpd", true],
      ["com.openssh.sshd", false],
      ["com.example.backup", true],
    ]);
    expect([...parsePrintDisabled(fixture("launchctl-print-disabled-legacy.txt"))]).toEqual([
      ["com.apple.ftpd", true],
      ["com.openssh.sshd", false],
    ]);
  });

  it("reads one job's own state and pid, not nested ones", () => {
    expect(parsePrint(fixture("launchctl-print-sshd.txt"))).toEqual({ state: "running", pid: 4217, lastExitCode: "(never exited)" });
  });

  it("lists and reads through launchctl with the label as one argument", async () => {
    const { run, calls } = scriptedRunner({
      "print-disabled system": { stdout: fixture("launchctl-print-disabled.txt") },
      list: { stdout: fixture("launchctl-list.txt") },
      "print system/com.openssh.sshd": { stdout: fixture("launchctl-print-sshd.txt") },
      "print system/com.nope": { stdout: "", code: 113 },
    });
    const launchd = createLaunchdServices({ run });
    const list = await launchd.list();
    expect(list.find((s) => s.name === "com.example.backup")).toMatchObject({ state: "failed", startMode: "disabled" });
    expect(list.find((s) => s.name === "com.openssh.sshd")).toMatchObject({ state: "running", pid: 367, startMode: "automatic" });
    expect(await launchd.get("com.openssh.sshd")).toMatchObject({ state: "running", pid: 4217 });
    expect(((await launchd.get("com.nope").catch((e: unknown) => e)) as GuruError).kind).toBe("not_found");
    expect(calls.every((c) => c[0] === "launchctl")).toBe(true);
  });

  it("builds control argv in the system domain", () => {
    expect(launchdArgv("com.example.backup", "start")).toEqual(["kickstart", "system/com.example.backup"]);
    expect(launchdArgv("com.example.backup", "restart")).toEqual(["kickstart", "-k", "system/com.example.backup"]);
    expect(launchdArgv("com.example.backup", "stop")).toEqual(["kill", "SIGTERM", "system/com.example.backup"]);
    expect(launchdArgv("com.example.backup", "disable")).toEqual(["disable", "system/com.example.backup"]);
  });
});

describe("systemd", () => {
  it("maps show properties to states and start modes", () => {
    const services = parseShow(fixture("systemctl-show.txt")).map(toServiceInfo);
    expect(services.map((s) => [s.name, s.state, s.startMode, s.pid])).toEqual([
      ["ssh", "running", "automatic", 812],
      ["cron", "stopped", "disabled", 0],
      ["nginx", "failed", "automatic", 0],
      ["systemd-journald", "running", "manual", 301],
      ["apache2", "stopped", "disabled", 0],
      ["postgresql", "starting", "automatic", 0],
    ]);
    expect(services[0]).toMatchObject({ displayName: "OpenBSD Secure Shell server", description: "OpenBSD Secure Shell server" });
  });

  it("takes unit names from list-units/list-unit-files, leaving out templates", () => {
    expect(parseUnitNames(fixture("systemctl-list-unit-files.txt"))).toEqual(["cron.service", "ssh.service"]);
    expect(parseUnitNames(fixture("systemctl-list-units.txt"))).toEqual(["cron.service", "ssh.service", "getty@tty1.service"]);
  });

  it("builds argv with the unit after --", () => {
    expect(systemdArgv("nginx", "restart")).toEqual(["--no-block", "restart", "--", "nginx.service"]);
    expect(systemdArgv("getty@tty1.service", "disable")).toEqual(["disable", "--", "getty@tty1.service"]);
  });

  it("lists through systemctl show, and a missing unit is not_found", async () => {
    const props = "--property=Id,Description,LoadState,ActiveState,SubState,UnitFileState,MainPID";
    const { run } = scriptedRunner({
      "--no-pager list-unit-files --type=service --no-legend --plain": { stdout: fixture("systemctl-list-unit-files.txt") },
      "--no-pager list-units --type=service --all --no-legend --plain": { stdout: fixture("systemctl-list-units.txt") },
      [`--no-pager show ${props} -- cron.service getty@tty1.service ssh.service`]: { stdout: fixture("systemctl-show.txt") },
      [`--no-pager show ${props} -- nope.service`]: {
        stdout: "Id=nope.service\nDescription=nope.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\nMainPID=0\n",
      },
    });
    const systemd = createSystemdServices({ run });
    expect((await systemd.list()).map((s) => s.name)).toContain("ssh");
    expect(((await systemd.get("nope").catch((e: unknown) => e)) as GuruError).kind).toBe("not_found");
  });
});
