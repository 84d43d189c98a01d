// The agent's own types for services and the registry, apart from the wire:
// every backend (systemd, SysV, the Windows SCM, launchd) speaks these.

import type { RegistryListing, RegistryValue, ServiceAction, ServiceInfo } from "../../lib/system-types.ts";

export * from "../../lib/system-types.ts";

/** One service manager. Names reach it validated; it passes them as argv. */
export interface ServiceBackend {
  readonly manager: "systemd" | "sysv" | "scm" | "launchd";
  list(): Promise<ServiceInfo[]>;
  /** Throws not_found when the service does not exist. */
  get(name: string): Promise<ServiceInfo>;
  /** Asks the manager to act; returns without waiting for the new state. */
  perform(name: string, action: ServiceAction, options: { waitMs: number }): Promise<void>;
}

export interface RegistryBackend {
  list(key: string): Promise<RegistryListing>;
  /** undefined when the value does not exist (the key does). */
  read(key: string, valueName: string): Promise<RegistryValue | undefined>;
  /** Creates the key when it is missing. */
  write(key: string, value: RegistryValue): Promise<void>;
  delete(key: string, valueName: string): Promise<void>;
}
