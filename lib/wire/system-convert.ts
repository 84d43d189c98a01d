// guru.wire.v1 system messages ↔ the plain types of lib/system-types.ts, for
// both ends of the link (agent handlers, server/link).
import { create } from "@bufbuild/protobuf";
import {
  RegistryValueSchema,
  ServiceInfoSchema,
  type RegistryValue as WireRegistryValue,
  type RegistryValueType as WireValueType,
  type ServiceAction as WireAction,
  type ServiceInfo as WireServiceInfo,
} from "../../gen/guru/wire/v1/system_pb.js";
import { registryValueTypes, serviceActions, serviceStates, startModes } from "../system-codes.ts";
import type { RegistryValue, RegistryValueType, ServiceAction, ServiceInfo } from "../system-types.ts";

export const wireAction = (a: ServiceAction): WireAction => serviceActions.code(a);
/** undefined for UNSPECIFIED or a number this build does not know. */
export const actionName = (a: WireAction): ServiceAction | undefined => serviceActions.name(a);
export const valueTypeName = (t: WireValueType): RegistryValueType | undefined => registryValueTypes.name(t);

export function toWireService(s: ServiceInfo): WireServiceInfo {
  return create(ServiceInfoSchema, {
    name: s.name,
    displayName: s.displayName,
    state: serviceStates.code(s.state),
    startMode: startModes.code(s.startMode),
    pid: s.pid,
    description: s.description,
  });
}

export function fromWireService(s: WireServiceInfo | undefined): ServiceInfo {
  return {
    name: s?.name ?? "",
    displayName: s?.displayName ?? "",
    state: serviceStates.name(s?.state ?? 0) ?? "unknown",
    startMode: startModes.name(s?.startMode ?? 0) ?? "unspecified",
    pid: s?.pid ?? 0,
    description: s?.description ?? "",
  };
}

export function toWireValue(v: RegistryValue): WireRegistryValue {
  return create(RegistryValueSchema, { name: v.name, type: registryValueTypes.code(v.type), data: v.data, multiString: v.multiString });
}

export function fromWireValue(v: WireRegistryValue): RegistryValue;
export function fromWireValue(v: WireRegistryValue | undefined): RegistryValue | undefined;
export function fromWireValue(v: WireRegistryValue | undefined): RegistryValue | undefined {
  if (v === undefined) return undefined;
  return { name: v.name, type: registryValueTypes.name(v.type) ?? "none", data: v.data, multiString: [...v.multiString] };
}
