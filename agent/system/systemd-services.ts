// systemd through systemctl. State and start mode come from `systemctl show`
// properties (ActiveState, UnitFileState, MainPID), which are machine
// values, never from the human-readable status text.
import { GuruError } from "../../lib/errors.ts";
import { runTool, type ToolRunner } from "./run-tool.ts";
import { tail } from "./sysv-services.ts";
import type { ServiceAction, ServiceBackend, ServiceInfo, ServiceState, StartMode } from "./types.ts";

const showProperties = ["Id", "Description", "LoadState", "ActiveState", "SubState", "UnitFileState", "MainPID"];
const showBatch = 100;

const activeStates: Record<string, ServiceState> = {
  active: "running",
  reloading: "running",
  inactive: "stopped",
  failed: "failed",
  activating: "starting",
  deactivating: "stopping",
};

const unitFileStates: Record<string, StartMode> = {
  enabled: "automatic",
  "enabled-runtime": "automatic",
  linked: "manual",
  "linked-runtime": "manual",
  alias: "manual",
  static: "manual",
  indirect: "manual",
  generated: "automatic",
  transient: "manual",
  disabled: "disabled",
  masked: "disabled",
  "masked-runtime": "disabled",
  bad: "unspecified",
};

/** `systemctl show` output for one or more units: blocks of KEY=VALUE lines separated by blank lines. */
export function parseShow(text: string): Record<string, string>[] {
  const blocks: Record<string, string>[] = [];
  let current: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line.trim() === "") {
      if (Object.keys(current).length > 0) blocks.push(current);
      current = {};
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0) current[line.slice(0, eq)] = line.slice(eq + 1);
  }
  if (Object.keys(current).length > 0) blocks.push(current);
  return blocks;
}

export function toServiceInfo(props: Record<string, string>): ServiceInfo {
  const id = props.Id ?? "";
  const name = id.endsWith(".service") ? id.slice(0, -".service".length) : id;
  const pid = Number.parseInt(props.MainPID ?? "0", 10);
  return {
    name,
    displayName: props.Description || name,
    state: activeStates[props.ActiveState ?? ""] ?? "unknown",
    startMode: unitFileStates[props.UnitFileState ?? ""] ?? "unspecified",
    pid: Number.isSafeInteger(pid) && pid > 0 ? pid : 0,
    description: props.Description ?? "",
  };
}

/** First column of `systemctl list-units`/`list-unit-files --plain --no-legend`. */
export function parseUnitNames(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split("\n")) {
    const first = line.trim().split(/\s+/)[0] ?? "";
    // Template units (foo@.service) are not services one can start as such.
    if (first.endsWith(".service") && !first.endsWith("@.service")) names.push(first);
  }
  return names;
}

function unitName(name: string): string {
  return name.endsWith(".service") ? name : `${name}.service`;
}

export function controlArgv(name: string, action: ServiceAction): string[] {
  // --no-block: we poll the state ourselves, up to the caller's wait.
  const blocking = action === "enable" || action === "disable" ? [] : ["--no-block"];
  return [...blocking, action, "--", unitName(name)];
}

export function createSystemdServices(options: { systemctl?: string; run?: ToolRunner } = {}): ServiceBackend {
  const run = options.run ?? runTool;
  const systemctl = options.systemctl ?? "systemctl";
  const env = { ...process.env, SYSTEMD_PAGER: "", SYSTEMD_COLORS: "0", LC_ALL: "C" };

  async function systemctlOk(args: string[]): Promise<string> {
    const r = await run(systemctl, ["--no-pager", ...args], { env });
    if (r.code !== 0)
      throw new GuruError("failed_precondition", `systemctl ${args.join(" ")} failed (exit ${r.code}): ${tail(r.stderr || r.stdout) || "no output"}`);
    return r.stdout;
  }

  async function show(units: string[]): Promise<Record<string, string>[]> {
    const out: Record<string, string>[] = [];
    for (let i = 0; i < units.length; i += showBatch) {
      out.push(...parseShow(await systemctlOk(["show", `--property=${showProperties.join(",")}`, "--", ...units.slice(i, i + showBatch)])));
    }
    return out;
  }

  return {
    manager: "systemd",
    async list() {
      const names = new Set([
        ...parseUnitNames(await systemctlOk(["list-unit-files", "--type=service", "--no-legend", "--plain"])),
        ...parseUnitNames(await systemctlOk(["list-units", "--type=service", "--all", "--no-legend", "--plain"])),
      ]);
      return (await show([...names].sort())).filter((p) => p.LoadState !== "not-found").map(toServiceInfo);
    },
    async get(name) {
      const [props] = await show([unitName(name)]);
      if (props === undefined || props.LoadState === "not-found") throw new GuruError("not_found", `no service ${name}`, { details: { name } });
      return toServiceInfo(props);
    },
    async perform(name, action) {
      await systemctlOk(controlArgv(name, action));
    },
  };
}
