// The services and registry calls of `guru mcp`, behind plain types: names
// for states, start modes and value types, never generated enums.
import type { RegistryValue as ApiValue, Service as ApiService } from "../gen/guru/api/v1/system_pb.js";
import type { ApiClients } from "../lib/api-client.ts";
import { apiAction, apiValueType, fromApiService, fromApiValue } from "../lib/system-api-convert.ts";
import type { RegistryValueType as TypeName, ServiceAction as ActionName } from "../lib/system-types.ts";
import { fromApiError } from "./errors.ts";

export interface ServiceRow {
  name: string;
  displayName: string;
  state: string;
  startMode: string;
  pid: number | null;
  description: string;
}

export interface RegistryValueRow {
  name: string;
  type: TypeName;
  /** Text for SZ/EXPAND_SZ, decimal for DWORD/QWORD, hex for BINARY/NONE, the strings for MULTI_SZ. */
  data: string | string[];
}

function serviceRow(s: ApiService | undefined): ServiceRow {
  const plain = fromApiService(s);
  return { ...plain, startMode: plain.startMode === "unspecified" ? "unknown" : plain.startMode, pid: plain.pid || null };
}

function valueRow(v: ApiValue): RegistryValueRow {
  const plain = fromApiValue(v);
  return { name: plain.name, type: plain.type, data: plain.type === "multi_sz" ? plain.multiString : plain.data };
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fromApiError(err);
  }
}

export function createSystemApi(clients: Pick<ApiClients, "system">) {
  const system = clients.system;
  return {
    async listServices(sessionId: string, filter: string, signal: AbortSignal) {
      const r = await call(() => system.listServices({ sessionId, filter }, { signal }));
      return { serviceManager: r.serviceManager, services: r.services.map(serviceRow) };
    },
    async controlService(sessionId: string, req: { name: string; action: ActionName; dryRun: boolean; waitMs: number }, signal: AbortSignal) {
      const r = await call(() =>
        system.controlService({ sessionId, name: req.name, action: apiAction(req.action), dryRun: req.dryRun, waitMs: req.waitMs }, { signal }),
      );
      return {
        before: serviceRow(r.before),
        after: serviceRow(r.after),
        dryRun: r.dryRun,
        changed: r.changed,
        settled: r.settled,
        serviceManager: r.serviceManager,
      };
    },
    async listRegistry(sessionId: string, key: string, signal: AbortSignal) {
      const r = await call(() => system.listRegistry({ sessionId, key }, { signal }));
      return { key: r.key, subkeys: r.subkeys, values: r.values.map(valueRow) };
    },
    async readRegistry(sessionId: string, key: string, valueName: string, signal: AbortSignal) {
      const r = await call(() => system.readRegistry({ sessionId, key, valueName }, { signal }));
      return { key: r.key, value: r.value ? valueRow(r.value) : null };
    },
    async writeRegistry(
      sessionId: string,
      req: { key: string; valueName: string; type: TypeName; data: string | string[]; dryRun: boolean },
      signal: AbortSignal,
    ) {
      const multi = Array.isArray(req.data);
      const r = await call(() =>
        system.writeRegistry(
          {
            sessionId,
            key: req.key,
            valueName: req.valueName,
            type: apiValueType(req.type),
            value: multi ? "" : (req.data as string),
            multiString: multi ? (req.data as string[]) : [],
            dryRun: req.dryRun,
          },
          { signal },
        ),
      );
      return { key: r.key, before: r.before ? valueRow(r.before) : null, after: r.after ? valueRow(r.after) : null, dryRun: r.dryRun };
    },
    async deleteRegistryValue(sessionId: string, req: { key: string; valueName: string; dryRun: boolean }, signal: AbortSignal) {
      const r = await call(() => system.deleteRegistryValue({ sessionId, key: req.key, valueName: req.valueName, dryRun: req.dryRun }, { signal }));
      return { key: r.key, before: r.before ? valueRow(r.before) : null, after: r.dryRun && r.before ? valueRow(r.before) : null, dryRun: r.dryRun };
    },
  };
}

export type SystemApi = ReturnType<typeof createSystemApi>;
