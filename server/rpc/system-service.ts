// SystemService: checks input, calls the system domain, maps results.
import type { ServiceImpl } from "@connectrpc/connect";
import type { SystemService as SystemApi } from "../../gen/guru/api/v1/system_pb.js";
import { GuruError } from "../../lib/errors.ts";
import { actionOfApi, toApiService, toApiValue, valueTypeOfApi } from "../../lib/system-api-convert.ts";
import type { SystemService } from "../domain/system.ts";
import { principalOf } from "./context.ts";

export function systemServiceImpl(system: SystemService): ServiceImpl<typeof SystemApi> {
  return {
    async listServices(req, ctx) {
      const r = await system.listServices(principalOf(ctx), { sessionId: req.sessionId, filter: req.filter });
      return { services: r.services.map(toApiService), serviceManager: r.serviceManager };
    },
    async controlService(req, ctx) {
      // An unknown action is refused (and audited) by the domain under its number.
      const action = actionOfApi(req.action) ?? `unknown action ${req.action}`;
      const r = await system.controlService(
        principalOf(ctx),
        { sessionId: req.sessionId, name: req.name, action, dryRun: req.dryRun, waitMs: req.waitMs },
        ctx.signal,
      );
      return {
        before: toApiService(r.before),
        after: toApiService(r.after),
        dryRun: r.dryRun,
        changed: r.changed,
        settled: r.settled,
        serviceManager: r.serviceManager,
      };
    },
    async listRegistry(req, ctx) {
      const r = await system.listRegistry(principalOf(ctx), { sessionId: req.sessionId, key: req.key });
      return { key: r.key, subkeys: r.subkeys, values: r.values.map(toApiValue) };
    },
    async readRegistry(req, ctx) {
      const r = await system.readRegistry(principalOf(ctx), { sessionId: req.sessionId, key: req.key, valueName: req.valueName });
      return { key: r.key, value: toApiValue(r.value) };
    },
    async writeRegistry(req, ctx) {
      const type = valueTypeOfApi(req.type);
      if (type === undefined)
        throw new GuruError("invalid", "type must be one of REGISTRY_VALUE_TYPE_SZ, _EXPAND_SZ, _MULTI_SZ, _DWORD, _QWORD, _BINARY, _NONE");
      const value = { name: req.valueName, type, data: req.value, multiString: req.multiString };
      const r = await system.writeRegistry(principalOf(ctx), { sessionId: req.sessionId, key: req.key, value, dryRun: req.dryRun });
      return { key: r.key, before: r.before ? toApiValue(r.before) : undefined, after: toApiValue(r.after), dryRun: r.dryRun };
    },
    async deleteRegistryValue(req, ctx) {
      const r = await system.deleteRegistryValue(principalOf(ctx), { sessionId: req.sessionId, key: req.key, valueName: req.valueName, dryRun: req.dryRun });
      return { key: r.key, before: toApiValue(r.before), dryRun: r.dryRun };
    },
  };
}
