// The number of each service state, start mode, action and registry value type
// on the wire. guru.api.v1 and guru.wire.v1 number these enums alike on purpose
// (system-codes.test.ts holds them equal), so one table serves both
// converters: lib/system-api-convert.ts and lib/wire/system-convert.ts.
import {
  RegistryValueType as Code,
  ServiceAction as ActionCode,
  ServiceStartMode as StartModeCode,
  ServiceState as StateCode,
} from "../gen/guru/wire/v1/system_pb.js";
import type { RegistryValueType, ServiceAction, ServiceState, StartMode } from "./system-types.ts";

/** A name ↔ number table; `name` is undefined for UNSPECIFIED or a number this build does not know. */
export interface NameCodes<K extends string> {
  code(name: K): number;
  name(code: number): K | undefined;
}

function nameCodes<K extends string>(table: Record<K, number>): NameCodes<K> {
  const names = new Map<number, K>(Object.entries(table).map(([k, v]) => [v as number, k as K]));
  return { code: (name) => table[name], name: (code) => names.get(code) };
}

export const serviceStates = nameCodes<ServiceState>({
  running: StateCode.RUNNING,
  stopped: StateCode.STOPPED,
  failed: StateCode.FAILED,
  starting: StateCode.STARTING,
  stopping: StateCode.STOPPING,
  paused: StateCode.PAUSED,
  unknown: StateCode.UNKNOWN,
});
export const startModes = nameCodes<StartMode>({
  automatic: StartModeCode.AUTOMATIC,
  manual: StartModeCode.MANUAL,
  disabled: StartModeCode.DISABLED,
  system: StartModeCode.SYSTEM,
  unspecified: StartModeCode.UNSPECIFIED,
});
export const serviceActions = nameCodes<ServiceAction>({
  start: ActionCode.START,
  stop: ActionCode.STOP,
  restart: ActionCode.RESTART,
  enable: ActionCode.ENABLE,
  disable: ActionCode.DISABLE,
});
export const registryValueTypes = nameCodes<RegistryValueType>({
  sz: Code.SZ,
  expand_sz: Code.EXPAND_SZ,
  multi_sz: Code.MULTI_SZ,
  dword: Code.DWORD,
  qword: Code.QWORD,
  binary: Code.BINARY,
  none: Code.NONE,
});
