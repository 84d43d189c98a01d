// guru.api.v1 SystemService messages ↔ the plain types of lib/system-types.ts,
// for every side of the API: the server's RPC layer, the CLI and `guru mcp`.
import { create } from "@bufbuild/protobuf";
import {
  RegistryValueSchema,
  RegistryValueType as ApiValueType,
  ServiceAction as ApiAction,
  ServiceSchema,
  ServiceStartMode as ApiStartMode,
  ServiceState as ApiState,
  type RegistryValue as ApiRegistryValue,
  type Service as ApiService,
} from "../gen/guru/api/v1/system_pb.js";
import type { RegistryValue, RegistryValueType, ServiceAction, ServiceInfo, ServiceState, StartMode } from "./system-types.ts";

function invert<K extends string, V extends number>(map: Record<K, V>): Partial<Record<number, K>> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [v, k])) as Partial<Record<number, K>>;
}

const states: Record<ServiceState, ApiState> = {
  running: ApiState.RUNNING,
  stopped: ApiState.STOPPED,
  failed: ApiState.FAILED,
  starting: ApiState.STARTING,
  stopping: ApiState.STOPPING,
  paused: ApiState.PAUSED,
  unknown: ApiState.UNKNOWN,
};
const startModes: Record<StartMode, ApiStartMode> = {
  automatic: ApiStartMode.AUTOMATIC,
  manual: ApiStartMode.MANUAL,
  disabled: ApiStartMode.DISABLED,
  system: ApiStartMode.SYSTEM,
  unspecified: ApiStartMode.UNSPECIFIED,
};
const actions: Record<ServiceAction, ApiAction> = {
  start: ApiAction.START,
  stop: ApiAction.STOP,
  restart: ApiAction.RESTART,
  enable: ApiAction.ENABLE,
  disable: ApiAction.DISABLE,
};
const valueTypes: Record<RegistryValueType, ApiValueType> = {
  sz: ApiValueType.SZ,
  expand_sz: ApiValueType.EXPAND_SZ,
  multi_sz: ApiValueType.MULTI_SZ,
  dword: ApiValueType.DWORD,
  qword: ApiValueType.QWORD,
  binary: ApiValueType.BINARY,
  none: ApiValueType.NONE,
};
const stateNames = invert(states);
const startModeNames = invert(startModes);
const actionNames = invert(actions);
const valueTypeNames = invert(valueTypes);

export const apiAction = (a: ServiceAction): ApiAction => actions[a];
/** undefined for UNSPECIFIED or a number this build does not know. */
export const actionOfApi = (a: ApiAction): ServiceAction | undefined => actionNames[a];
export const apiValueType = (t: RegistryValueType): ApiValueType => valueTypes[t];
export const valueTypeOfApi = (t: ApiValueType): RegistryValueType | undefined => valueTypeNames[t];

export function toApiService(s: ServiceInfo): ApiService {
  return create(ServiceSchema, {
    name: s.name,
    displayName: s.displayName,
    state: states[s.state],
    startMode: startModes[s.startMode],
    pid: s.pid,
    description: s.description,
  });
}

/** Numbers a newer server may add read as unknown / unspecified. */
export function fromApiService(s: ApiService | undefined): ServiceInfo {
  return {
    name: s?.name ?? "",
    displayName: s?.displayName ?? "",
    state: stateNames[s?.state ?? ApiState.UNKNOWN] ?? "unknown",
    startMode: startModeNames[s?.startMode ?? ApiStartMode.UNSPECIFIED] ?? "unspecified",
    pid: s?.pid ?? 0,
    description: s?.description ?? "",
  };
}

export function toApiValue(v: RegistryValue): ApiRegistryValue {
  return create(RegistryValueSchema, { name: v.name, type: valueTypes[v.type], data: v.data, multiString: v.multiString });
}

export function fromApiValue(v: ApiRegistryValue): RegistryValue {
  return { name: v.name, type: valueTypeNames[v.type] ?? "none", data: v.data, multiString: [...v.multiString] };
}
