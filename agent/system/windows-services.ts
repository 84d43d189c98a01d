// The Windows service control manager through PowerShell. The listing is
// Win32_Service (State and StartMode are WMI's fixed English identifiers,
// not display text); one service is Get-Service (Status and StartType are
// enum numbers in its JSON) with Win32_Service beside it for the pid and
// description. Display names and descriptions stay in the system's language.
import { GuruError } from "../../lib/errors.ts";
import { asArray, runPowerShell } from "./powershell.ts";
import { runTool, type ToolRunner } from "./run-tool.ts";
import type { ServiceAction, ServiceBackend, ServiceInfo, ServiceState, StartMode } from "./types.ts";

const cimFields = "Name, DisplayName, State, StartMode, ProcessId, Description";

const listScript = `ConvertTo-Json -Compress -Depth 3 -InputObject @(Get-CimInstance -ClassName Win32_Service | Select-Object ${cimFields})`;

const getScript = `$s = Get-Service -Name $p.name
$c = $null
try { $c = Get-CimInstance -ClassName Win32_Service -Filter ("Name='" + $s.ServiceName + "'") | Select-Object ${cimFields} } catch { }
ConvertTo-Json -Compress -Depth 3 -InputObject ([pscustomobject]@{ service = ($s | Select-Object Name, DisplayName, Status, StartType); cim = $c })`;

// ServiceController.Start()/Stop() return at once; the agent polls for the state.
const controlScript = `$s = Get-Service -Name $p.name
switch ($p.action) {
  'start' { $s.Start() }
  'stop' { $s.Stop() }
  'restart' {
    if ($s.Status -ne 'Stopped') { $s.Stop(); $s.WaitForStatus('Stopped', [TimeSpan]::FromMilliseconds($p.waitMs)) }
    $s.Start()
  }
  'enable' { Set-Service -Name $s.ServiceName -StartupType Automatic }
  'disable' { Set-Service -Name $s.ServiceName -StartupType Disabled }
}
ConvertTo-Json -Compress -InputObject ([pscustomobject]@{ ok = $true })`;

// System.ServiceProcess.ServiceControllerStatus
const statusNumbers: Record<number, ServiceState> = { 1: "stopped", 2: "starting", 3: "stopping", 4: "running", 5: "starting", 6: "stopping", 7: "paused" };
// System.ServiceProcess.ServiceStartMode
const startTypeNumbers: Record<number, StartMode> = { 0: "system", 1: "system", 2: "automatic", 3: "manual", 4: "disabled" };
// Win32_Service.State / StartMode
const cimStates: Record<string, ServiceState> = {
  Running: "running",
  Stopped: "stopped",
  "Start Pending": "starting",
  "Stop Pending": "stopping",
  "Continue Pending": "starting",
  "Pause Pending": "stopping",
  Paused: "paused",
  Unknown: "unknown",
};
const cimStartModes: Record<string, StartMode> = { Auto: "automatic", Manual: "manual", Disabled: "disabled", Boot: "system", System: "system" };

interface CimService {
  Name?: string;
  DisplayName?: string | null;
  State?: string | null;
  StartMode?: string | null;
  ProcessId?: number | null;
  Description?: string | null;
}
interface GetServiceRow {
  Name?: string;
  DisplayName?: string | null;
  Status?: number | string;
  StartType?: number | string;
}

function fromCim(row: CimService): ServiceInfo {
  return {
    name: row.Name ?? "",
    displayName: row.DisplayName ?? row.Name ?? "",
    state: cimStates[row.State ?? ""] ?? "unknown",
    startMode: cimStartModes[row.StartMode ?? ""] ?? "unspecified",
    pid: typeof row.ProcessId === "number" && row.ProcessId > 0 ? row.ProcessId : 0,
    description: row.Description ?? "",
  };
}

/** Get-Service rows: enums are numbers (Windows PowerShell 5.1 and PowerShell 7 alike). */
function fromGetService(row: GetServiceRow): ServiceInfo {
  const status = typeof row.Status === "number" ? statusNumbers[row.Status] : undefined;
  const start = typeof row.StartType === "number" ? startTypeNumbers[row.StartType] : undefined;
  return {
    name: row.Name ?? "",
    displayName: row.DisplayName ?? row.Name ?? "",
    state: status ?? "unknown",
    startMode: start ?? "unspecified",
    pid: 0,
    description: "",
  };
}

export function parseServiceList(json: unknown): ServiceInfo[] {
  return asArray(json as CimService | CimService[] | null).map(fromCim);
}

export function parseServiceGet(json: unknown): ServiceInfo {
  const { service, cim } = (json ?? {}) as { service?: GetServiceRow; cim?: CimService | null };
  if (service === undefined) throw new GuruError("internal", "Get-Service answered nothing");
  const basic = fromGetService(service);
  if (cim === null || cim === undefined) return basic;
  const full = fromCim(cim);
  // Get-Service's Status is the fresher of the two when they race.
  return { ...full, state: basic.state === "unknown" ? full.state : basic.state };
}

export function createWindowsServices(options: { powershell?: string; run?: ToolRunner } = {}): ServiceBackend {
  const run = options.run ?? runTool;
  const exe = options.powershell ?? "powershell.exe";
  return {
    manager: "scm",
    async list() {
      return parseServiceList(await runPowerShell(run, exe, listScript, {}, "listing services"));
    },
    async get(name) {
      return parseServiceGet(await runPowerShell(run, exe, getScript, { name }, `service ${name}`));
    },
    async perform(name: string, action: ServiceAction, { waitMs }) {
      await runPowerShell(run, exe, controlScript, { name, action, waitMs }, `${action} service ${name}`);
    },
  };
}
