// SystemService: checks input, calls the system domain, maps results.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  RegistryValueSchema,
  RegistryValueType,
  ServiceAction,
  ServiceSchema,
  ServiceStartMode,
  ServiceState,
  type RegistryValue as ApiRegistryValue,
  type Service,
  type SystemService as SystemApi,
} from "../../gen/guru/api/v1/system_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { RegistryValue, RegistryValueType as TypeName, ServiceAction as ActionName, ServiceInfo, ServiceState as StateName, StartMode } from "../../lib/system-types.ts";
import type { SystemService } from "../domain/system.ts";
import { principalOf } from "./context.ts";

const states: Record<StateName, ServiceState> = {
  running: ServiceState.RUNNING,
  stopped: ServiceState.STOPPED,
  failed: ServiceState.FAILED,
  starting: ServiceState.STARTING,
  stopping: ServiceState.STOPPING,
  paused: ServiceState.PAUSED,
  unknown: ServiceState.UNKNOWN,
};
const startModes: Record<StartMode, ServiceStartMode> = {
  automatic: ServiceStartMode.AUTOMATIC,
  manual: ServiceStartMode.MANUAL,
  disabled: ServiceStartMode.DISABLED,
  system: ServiceStartMode.SYSTEM,
  unspecified: ServiceStartMode.UNSPECIFIED,
};
const actions: Partial<Record<ServiceAction, ActionName>> = {
  [ServiceAction.START]: "start",
  [ServiceAction.STOP]: "stop",
  [ServiceAction.RESTART]: "restart",
  [ServiceAction.ENABLE]: "enable",
  [ServiceAction.DISABLE]: "disable",
};
const valueTypes: Record<TypeName, RegistryValueType> = {
  sz: RegistryValueType.SZ,
  expand_sz: RegistryValueType.EXPAND_SZ,
  multi_sz: RegistryValueType.MULTI_SZ,
  dword: RegistryValueType.DWORD,
  qword: RegistryValueType.QWORD,
  binary: RegistryValueType.BINARY,
  none: RegistryValueType.NONE,
};
const typeNames = Object.fromEntries(Object.entries(valueTypes).map(([k, v]) => [v, k])) as Partial<Record<RegistryValueType, TypeName>>;

function toService(s: ServiceInfo): Service {
  return create(ServiceSchema, { name: s.name, displayName: s.displayName, state: states[s.state], startMode: startModes[s.startMode], pid: s.pid, description: s.description });
}

function toValue(v: RegistryValue): ApiRegistryValue {
  return create(RegistryValueSchema, { name: v.name, type: valueTypes[v.type], data: v.data, multiString: v.multiString });
}

export function systemServiceImpl(system: SystemService): ServiceImpl<typeof SystemApi> {
  return {
    async listServices(req, ctx) {
      const r = await system.listServices(principalOf(ctx), { sessionId: req.sessionId, filter: req.filter });
      return { services: r.services.map(toService), serviceManager: r.serviceManager };
    },
    async controlService(req, ctx) {
      // An unknown action is refused (and audited) by the domain under its number.
      const action = actions[req.action] ?? `unknown action ${req.action}`;
      const r = await system.controlService(principalOf(ctx), { sessionId: req.sessionId, name: req.name, action, dryRun: req.dryRun, waitMs: req.waitMs }, ctx.signal);
      return { before: toService(r.before), after: toService(r.after), dryRun: r.dryRun, changed: r.changed, settled: r.settled, serviceManager: r.serviceManager };
    },
    async listRegistry(req, ctx) {
      const r = await system.listRegistry(principalOf(ctx), { sessionId: req.sessionId, key: req.key });
      return { key: r.key, subkeys: r.subkeys, values: r.values.map(toValue) };
    },
    async readRegistry(req, ctx) {
      const r = await system.readRegistry(principalOf(ctx), { sessionId: req.sessionId, key: req.key, valueName: req.valueName });
      return { key: r.key, value: toValue(r.value) };
    },
    async writeRegistry(req, ctx) {
      const type = typeNames[req.type];
      if (type === undefined) throw new GuruError("invalid", "type must be one of REGISTRY_VALUE_TYPE_SZ, _EXPAND_SZ, _MULTI_SZ, _DWORD, _QWORD, _BINARY, _NONE");
      const value: RegistryValue = { name: req.valueName, type, data: req.value, multiString: req.multiString };
      const r = await system.writeRegistry(principalOf(ctx), { sessionId: req.sessionId, key: req.key, value, dryRun: req.dryRun });
      return { key: r.key, before: r.before ? toValue(r.before) : undefined, after: toValue(r.after), dryRun: r.dryRun };
    },
    async deleteRegistryValue(req, ctx) {
      const r = await system.deleteRegistryValue(principalOf(ctx), { sessionId: req.sessionId, key: req.key, valueName: req.valueName, dryRun: req.dryRun });
      return { key: r.key, before: toValue(r.before), dryRun: r.dryRun };
    },
  };
}
