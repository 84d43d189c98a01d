// guru.api.v1 SystemService messages ↔ the plain types of lib/system-types.ts,
// for every side of the API: the server's RPC layer, the CLI and `guru mcp`.
import { create } from "@bufbuild/protobuf";
import {
  RegistryValueSchema,
  ServiceSchema,
  type RegistryValue as ApiRegistryValue,
  type RegistryValueType as ApiValueType,
  type Service as ApiService,
  type ServiceAction as ApiAction,
} from "../gen/guru/api/v1/system_pb.js";
import { registryValueTypes, serviceActions, serviceStates, startModes } from "./system-codes.ts";
import type { RegistryValue, RegistryValueType, ServiceAction, ServiceInfo } from "./system-types.ts";

export const apiAction = (a: ServiceAction): ApiAction => serviceActions.code(a);
/** undefined for UNSPECIFIED or a number this build does not know. */
export const actionOfApi = (a: ApiAction): ServiceAction | undefined => serviceActions.name(a);
export const apiValueType = (t: RegistryValueType): ApiValueType => registryValueTypes.code(t);
export const valueTypeOfApi = (t: ApiValueType): RegistryValueType | undefined => registryValueTypes.name(t);

export function toApiService(s: ServiceInfo): ApiService {
  return create(ServiceSchema, {
    name: s.name,
    displayName: s.displayName,
    state: serviceStates.code(s.state),
    startMode: startModes.code(s.startMode),
    pid: s.pid,
    description: s.description,
  });
}

/** Numbers a newer server may add read as unknown / unspecified. */
export function fromApiService(s: ApiService | undefined): ServiceInfo {
  return {
    name: s?.name ?? "",
    displayName: s?.displayName ?? "",
    state: serviceStates.name(s?.state ?? 0) ?? "unknown",
    startMode: startModes.name(s?.startMode ?? 0) ?? "unspecified",
    pid: s?.pid ?? 0,
    description: s?.description ?? "",
  };
}

export function toApiValue(v: RegistryValue): ApiRegistryValue {
  return create(RegistryValueSchema, { name: v.name, type: registryValueTypes.code(v.type), data: v.data, multiString: v.multiString });
}

export function fromApiValue(v: ApiRegistryValue): RegistryValue {
  return { name: v.name, type: registryValueTypes.name(v.type) ?? "none", data: v.data, multiString: [...v.multiString] };
}
