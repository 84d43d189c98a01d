// guru.wire.v1 system messages ↔ the plain types of lib/system-types.ts, for
// both ends of the link (agent handlers, server/link).
import { create } from "@bufbuild/protobuf";
import {
  RegistryValueSchema,
  RegistryValueType as WireValueType,
  ServiceAction as WireAction,
  ServiceInfoSchema,
  ServiceStartMode as WireStartMode,
  ServiceState as WireState,
  type RegistryValue as WireRegistryValue,
  type ServiceInfo as WireServiceInfo,
} from "../../gen/guru/wire/v1/system_pb.js";
import type { RegistryValue, RegistryValueType, ServiceAction, ServiceInfo, ServiceState, StartMode } from "../system-types.ts";

function invert<K extends string, V extends number>(map: Record<K, V>): Record<number, K> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [v, k])) as Record<number, K>;
}

const states: Record<ServiceState, WireState> = {
  running: WireState.RUNNING,
  stopped: WireState.STOPPED,
  failed: WireState.FAILED,
  starting: WireState.STARTING,
  stopping: WireState.STOPPING,
  paused: WireState.PAUSED,
  unknown: WireState.UNKNOWN,
};
const startModes: Record<StartMode, WireStartMode> = {
  automatic: WireStartMode.AUTOMATIC,
  manual: WireStartMode.MANUAL,
  disabled: WireStartMode.DISABLED,
  system: WireStartMode.SYSTEM,
  unspecified: WireStartMode.UNSPECIFIED,
};
const actions: Record<ServiceAction, WireAction> = {
  start: WireAction.START,
  stop: WireAction.STOP,
  restart: WireAction.RESTART,
  enable: WireAction.ENABLE,
  disable: WireAction.DISABLE,
};
const valueTypes: Record<RegistryValueType, WireValueType> = {
  sz: WireValueType.SZ,
  expand_sz: WireValueType.EXPAND_SZ,
  multi_sz: WireValueType.MULTI_SZ,
  dword: WireValueType.DWORD,
  qword: WireValueType.QWORD,
  binary: WireValueType.BINARY,
  none: WireValueType.NONE,
};
const stateNames = invert(states);
const startModeNames = invert(startModes);
const actionNames = invert(actions);
const valueTypeNames = invert(valueTypes);

export const wireAction = (a: ServiceAction): WireAction => actions[a];
/** undefined for UNSPECIFIED or a number this build does not know. */
export const actionName = (a: WireAction): ServiceAction | undefined => actionNames[a];
export const valueTypeName = (t: WireValueType): RegistryValueType | undefined => valueTypeNames[t];

export function toWireService(s: ServiceInfo): WireServiceInfo {
  return create(ServiceInfoSchema, {
    name: s.name,
    displayName: s.displayName,
    state: states[s.state],
    startMode: startModes[s.startMode],
    pid: s.pid,
    description: s.description,
  });
}

export function fromWireService(s: WireServiceInfo | undefined): ServiceInfo {
  return {
    name: s?.name ?? "",
    displayName: s?.displayName ?? "",
    state: stateNames[s?.state ?? WireState.UNKNOWN] ?? "unknown",
    startMode: startModeNames[s?.startMode ?? WireStartMode.UNSPECIFIED] ?? "unspecified",
    pid: s?.pid ?? 0,
    description: s?.description ?? "",
  };
}

export function toWireValue(v: RegistryValue): WireRegistryValue {
  return create(RegistryValueSchema, { name: v.name, type: valueTypes[v.type], data: v.data, multiString: v.multiString });
}

export function fromWireValue(v: WireRegistryValue): RegistryValue;
export function fromWireValue(v: WireRegistryValue | undefined): RegistryValue | undefined;
export function fromWireValue(v: WireRegistryValue | undefined): RegistryValue | undefined {
  if (v === undefined) return undefined;
  return { name: v.name, type: valueTypeNames[v.type] ?? "none", data: v.data, multiString: [...v.multiString] };
}
