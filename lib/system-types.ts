// Services and registry values as every part names them (agent, server
// domain, wire conversions): plain strings, apart from any generated code.

export type ServiceState = "running" | "stopped" | "failed" | "starting" | "stopping" | "paused" | "unknown";
export type StartMode = "automatic" | "manual" | "disabled" | "system" | "unspecified";
export type ServiceAction = "start" | "stop" | "restart" | "enable" | "disable";
export const serviceActions: readonly ServiceAction[] = ["start", "stop", "restart", "enable", "disable"];

export interface ServiceInfo {
  name: string;
  displayName: string;
  state: ServiceState;
  startMode: StartMode;
  /** 0 when not running or not known. */
  pid: number;
  description: string;
}

export type RegistryValueType = "sz" | "expand_sz" | "multi_sz" | "dword" | "qword" | "binary" | "none";
export const registryValueTypes: readonly RegistryValueType[] = ["sz", "expand_sz", "multi_sz", "dword", "qword", "binary", "none"];

/**
 * data: the text for sz and expand_sz (unexpanded), decimal for dword and
 * qword (unsigned), lowercase hex for binary and none; multiString for multi_sz.
 */
export interface RegistryValue {
  name: string;
  type: RegistryValueType;
  data: string;
  multiString: string[];
}

export interface RegistryListing {
  key: string;
  subkeys: string[];
  values: RegistryValue[];
}
