// The domain's port to an agent's services and registry, in its own types.
// server/link/remote-system.ts implements it over the AgentRouter, one
// channel per operation.
import type { RegistryListing, RegistryValue, ServiceAction, ServiceInfo } from "../../lib/system-types.ts";

export interface ServiceControlOutcome {
  before: ServiceInfo;
  after: ServiceInfo;
  dryRun: boolean;
  changed: boolean;
  settled: boolean;
  serviceManager: string;
}

export interface RegistryWriteOutcome {
  key: string;
  before?: RegistryValue;
  after: RegistryValue;
  dryRun: boolean;
}

export interface RemoteSystem {
  listServices(agentId: string, req: { sessionId: string; filter: string }): Promise<{ services: ServiceInfo[]; serviceManager: string }>;
  /** Resolves when the agent saw the new state or the wait ran out (settled false). */
  controlService(
    agentId: string,
    req: { sessionId: string; name: string; action: ServiceAction; dryRun: boolean; waitMs: number },
    signal?: AbortSignal,
  ): Promise<ServiceControlOutcome>;
  listRegistry(agentId: string, req: { sessionId: string; key: string }): Promise<RegistryListing>;
  readRegistry(agentId: string, req: { sessionId: string; key: string; valueName: string }): Promise<{ key: string; value: RegistryValue }>;
  writeRegistry(agentId: string, req: { sessionId: string; key: string; value: RegistryValue; dryRun: boolean }): Promise<RegistryWriteOutcome>;
  deleteRegistryValue(
    agentId: string,
    req: { sessionId: string; key: string; valueName: string; dryRun: boolean },
  ): Promise<{ key: string; before: RegistryValue; dryRun: boolean }>;
}
