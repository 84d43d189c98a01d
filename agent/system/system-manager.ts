// What this endpoint offers for services and the registry, and the one entry
// point the handlers call. The service manager is found once at start
// (systemd when it runs, else SysV scripts; the SCM on Windows; launchd on
// macOS) and reported in the Hello beside what is missing and why.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { GuruError } from "../../lib/errors.ts";
import { controlService, matchesFilter, type ControlOutcome } from "./control-service.ts";
import { createLaunchdServices } from "./launchd-services.ts";
import { createRegExeRegistry } from "./reg-exe-registry.ts";
import { checkRegistryValue } from "./registry-values.ts";
import type { ToolRunner } from "./run-tool.ts";
import { createSysvServices } from "./sysv-services.ts";
import { createSystemdServices } from "./systemd-services.ts";
import { parseRegistryKey, validateServiceName, validateValueName } from "./system-names.ts";
import type { RegistryBackend, RegistryListing, RegistryValue, ServiceAction, ServiceBackend, ServiceInfo } from "./types.ts";
import { createWindowsRegistry } from "./windows-registry.ts";
import { createWindowsServices } from "./windows-services.ts";

export type ServiceManagerChoice = "auto" | "systemd" | "sysv" | "none";

export interface SystemManagerOptions {
  platform?: NodeJS.Platform;
  /** auto: systemd when it runs (/run/systemd/system), else SysV when the init dir exists. */
  serviceManager?: ServiceManagerChoice;
  /** Where SysV init scripts are. */
  sysvInitDir?: string;
  run?: ToolRunner;
}

export interface SystemSupport {
  serviceManager: string;
  services: boolean;
  registry: boolean;
  servicesMissing: string;
  registryMissing: string;
}

export interface SystemManager {
  readonly support: SystemSupport;
  listServices(filter: string): Promise<{ services: ServiceInfo[]; manager: string }>;
  /** Reads the service first; not_found when it does not exist. */
  getService(name: string): Promise<ServiceInfo>;
  controlService(request: { name: string; action: ServiceAction; dryRun: boolean; waitMs: number }, signal?: AbortSignal): Promise<ControlOutcome>;
  listRegistry(key: string): Promise<RegistryListing>;
  readRegistry(key: string, valueName: string): Promise<RegistryValue>;
  writeRegistry(key: string, value: RegistryValue, dryRun: boolean): Promise<{ key: string; before?: RegistryValue; after: RegistryValue }>;
  deleteRegistryValue(key: string, valueName: string, dryRun: boolean): Promise<{ key: string; before: RegistryValue }>;
}

const defaultInitDir = "/etc/init.d";

function onPath(file: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(process.platform === "win32" ? ";" : ":")) {
    if (dir !== "" && existsSync(join(dir, file))) return join(dir, file);
  }
  return undefined;
}

function findServiceBackend(options: SystemManagerOptions, platform: NodeJS.Platform, powershell: string | undefined): ServiceBackend | string {
  const run = options.run;
  if (platform === "win32") return powershell ? createWindowsServices({ powershell, run }) : "Windows PowerShell (powershell.exe) was not found";
  if (platform === "darwin") return createLaunchdServices({ run });
  if (platform !== "linux") return `services are not supported on ${platform}`;
  const choice = options.serviceManager ?? "auto";
  if (choice === "none") return "services are switched off on this agent (GURU_SERVICE_MANAGER=none)";
  const initDir = options.sysvInitDir ?? defaultInitDir;
  if (choice === "systemd" || (choice === "auto" && existsSync("/run/systemd/system"))) return createSystemdServices({ run });
  if (choice === "sysv" || existsSync(initDir)) {
    // The system's scripts through `service` and update-rc.d, as an administrator would; any other directory directly.
    const system = initDir === defaultInitDir;
    return createSysvServices({
      initDir,
      run,
      serviceCommand: system ? onPath("service") : undefined,
      updateRcCommand: system ? onPath("update-rc.d") : undefined,
    });
  }
  return `no service manager found (systemd is not running and ${initDir} does not exist)`;
}

function findRegistryBackend(options: SystemManagerOptions, platform: NodeJS.Platform, powershell: string | undefined): RegistryBackend | string {
  if (platform !== "win32") return `the registry exists only on Windows; this agent runs ${platform}`;
  if (powershell) return createWindowsRegistry({ powershell, run: options.run });
  return createRegExeRegistry({ run: options.run });
}

export function createSystemManager(options: SystemManagerOptions = {}): SystemManager {
  const platform = options.platform ?? process.platform;
  const systemRoot = process.env.SystemRoot ?? "C:\\Windows";
  const builtIn = join(systemRoot, "System32", "WindowsPowerShell", "v1.0", "powershell.exe");
  const powershell = platform !== "win32" ? undefined : existsSync(builtIn) ? builtIn : onPath("pwsh.exe");
  const services = findServiceBackend(options, platform, powershell);
  const registry = findRegistryBackend(options, platform, powershell);
  const support: SystemSupport = {
    serviceManager: typeof services === "string" ? "" : services.manager,
    services: typeof services !== "string",
    registry: typeof registry !== "string",
    servicesMissing: typeof services === "string" ? services : "",
    registryMissing: typeof registry === "string" ? registry : "",
  };

  function serviceBackend(): ServiceBackend {
    if (typeof services === "string")
      throw new GuruError("failed_precondition", `services are not available on this agent: ${services}`, { details: { missing: services } });
    return services;
  }
  function registryBackend(): RegistryBackend {
    if (typeof registry === "string")
      throw new GuruError("failed_precondition", `the registry is not available on this agent: ${registry}`, { details: { missing: registry } });
    return registry;
  }

  return {
    support,
    async listServices(filter) {
      const backend = serviceBackend();
      const all = await backend.list();
      return { services: all.filter((s) => matchesFilter(s, filter)).sort((a, b) => a.name.localeCompare(b.name)), manager: backend.manager };
    },
    async getService(name) {
      return serviceBackend().get(validateServiceName(name, platform));
    },
    async controlService(request, signal) {
      const backend = serviceBackend();
      validateServiceName(request.name, platform);
      return controlService(backend, request, signal);
    },
    async listRegistry(key) {
      return registryBackend().list(parseRegistryKey(key).text);
    },
    async readRegistry(key, valueName) {
      const backend = registryBackend();
      const k = parseRegistryKey(key).text;
      const value = await backend.read(k, validateValueName(valueName));
      if (value === undefined)
        throw new GuruError("not_found", `${k} has no value ${valueName === "" ? "(default)" : `"${valueName}"`}`, { details: { key: k, valueName } });
      return value;
    },
    async writeRegistry(key, value, dryRun) {
      const backend = registryBackend();
      const k = parseRegistryKey(key).text;
      const checked = checkRegistryValue({ ...value, name: validateValueName(value.name) });
      const before = await backend.read(k, checked.name).catch((err: unknown) => {
        // A key that does not exist yet is created by the write.
        if (err instanceof GuruError && err.kind === "not_found") return undefined;
        throw err;
      });
      if (dryRun) return { key: k, before, after: checked };
      await backend.write(k, checked);
      const after = await backend.read(k, checked.name);
      if (after === undefined) throw new GuruError("internal", `${k}\\${checked.name} is missing right after it was written`);
      return { key: k, before, after };
    },
    async deleteRegistryValue(key, valueName, dryRun) {
      const backend = registryBackend();
      const k = parseRegistryKey(key).text;
      const before = await backend.read(k, validateValueName(valueName));
      if (before === undefined)
        throw new GuruError("not_found", `${k} has no value ${valueName === "" ? "(default)" : `"${valueName}"`}`, { details: { key: k, valueName } });
      if (!dryRun) await backend.delete(k, valueName);
      return { key: k, before };
    },
  };
}
