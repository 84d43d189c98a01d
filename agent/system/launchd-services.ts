// macOS launchd through launchctl, in the system domain. `launchctl list`
// gives PID, last exit status and label as tab-separated columns;
// `launchctl print-disabled system` which labels are disabled; `launchctl
// print system/LABEL` one job's state and pid as "key = value" lines.
import { GuruError } from "../../lib/errors.ts";
import { tail } from "./sysv-services.ts";
import { runTool, type ToolRunner } from "./run-tool.ts";
import type { ServiceAction, ServiceBackend, ServiceInfo, ServiceState } from "./types.ts";

export interface LaunchctlListRow {
  label: string;
  pid: number;
  lastExitStatus: number;
}

export function parseLaunchctlList(text: string): LaunchctlListRow[] {
  const rows: LaunchctlListRow[] = [];
  for (const line of text.split("\n")) {
    const cols = line.split("\t");
    if (cols.length < 3 || cols[0] === "PID") continue;
    const pid = cols[0] === "-" ? 0 : Number.parseInt(cols[0], 10);
    rows.push({ label: cols.slice(2).join("\t").trim(), pid: Number.isSafeInteger(pid) ? pid : 0, lastExitStatus: Number.parseInt(cols[1], 10) || 0 });
  }
  return rows;
}

/** `"label" => true|false|disabled|enabled` lines (the words depend on the macOS release). */
export function parsePrintDisabled(text: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const m of text.matchAll(/^\s*"([^"]+)"\s*=>\s*(true|false|disabled|enabled)\s*$/gm)) out.set(m[1], m[2] === "true" || m[2] === "disabled");
  return out;
}

/** The top-level `state = running` and `pid = 123` of `launchctl print`. */
export function parsePrint(text: string): { state: string; pid: number; lastExitCode: string } {
  // Only the job's own block (one tab deep), not nested dictionaries.
  const field = (name: string) => new RegExp(`^\\t${name} = (.*)$`, "m").exec(text)?.[1]?.trim() ?? "";
  const pid = Number.parseInt(field("pid"), 10);
  return { state: field("state"), pid: Number.isSafeInteger(pid) ? pid : 0, lastExitCode: field("last exit code") };
}

function stateOf(row: { pid: number; lastExitStatus: number }): ServiceState {
  if (row.pid > 0) return "running";
  return row.lastExitStatus === 0 ? "stopped" : "failed";
}

export function controlArgv(label: string, action: ServiceAction): string[] {
  const target = `system/${label}`;
  switch (action) {
    case "start":
      return ["kickstart", target];
    case "restart":
      return ["kickstart", "-k", target];
    case "stop":
      return ["kill", "SIGTERM", target];
    case "enable":
      return ["enable", target];
    case "disable":
      return ["disable", target];
  }
}

export function createLaunchdServices(options: { launchctl?: string; run?: ToolRunner } = {}): ServiceBackend {
  const run = options.run ?? runTool;
  const launchctl = options.launchctl ?? "launchctl";
  async function ok(args: string[]): Promise<string> {
    const r = await run(launchctl, args);
    if (r.code !== 0)
      throw new GuruError("failed_precondition", `launchctl ${args.join(" ")} failed (exit ${r.code}): ${tail(r.stderr || r.stdout) || "no output"}`);
    return r.stdout;
  }
  async function disabled(): Promise<Map<string, boolean>> {
    return parsePrintDisabled(await ok(["print-disabled", "system"]));
  }
  const info = (label: string, state: ServiceState, pid: number, off: boolean): ServiceInfo => ({
    name: label,
    displayName: label,
    state,
    startMode: off ? "disabled" : "automatic",
    pid,
    description: "",
  });
  return {
    manager: "launchd",
    async list() {
      const off = await disabled();
      return parseLaunchctlList(await ok(["list"])).map((r) => info(r.label, stateOf(r), r.pid, off.get(r.label) === true));
    },
    async get(label) {
      const r = await run(launchctl, ["print", `system/${label}`]);
      // 113: "Could not find service ... in domain for system"
      if (r.code === 113) throw new GuruError("not_found", `no service ${label}`, { details: { name: label } });
      if (r.code !== 0) throw new GuruError("failed_precondition", `launchctl print system/${label} failed (exit ${r.code}): ${tail(r.stderr || r.stdout)}`);
      const p = parsePrint(r.stdout);
      const state: ServiceState =
        p.state === "running"
          ? "running"
          : p.state === "waiting" || p.state === "not running"
            ? p.lastExitCode !== "" && p.lastExitCode !== "0" && !p.lastExitCode.startsWith("(never")
              ? "failed"
              : "stopped"
            : p.state === "spawn scheduled"
              ? "starting"
              : "unknown";
      return info(label, state, state === "running" ? p.pid : 0, (await disabled()).get(label) === true);
    },
    async perform(label, action) {
      await ok(controlArgv(label, action));
    },
  };
}
