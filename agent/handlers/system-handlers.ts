// Service and registry requests on a channel → the system manager → typed
// results. Checks in order: the tunnel, what the OS offers (missing is
// FailedPrecondition naming it), the policy's capability and rules (denied,
// naming the rule), then the operation. Every request, refused or not, goes
// to the operation log with its before and after values and the dry-run flag.
import { create } from "@bufbuild/protobuf";
import {
  RegistryDeleteResultSchema,
  RegistryListResultSchema,
  RegistryReadResultSchema,
  RegistryWriteResultSchema,
  ServiceControlResultSchema,
  ServiceListResultSchema,
  type RegistryDeleteRequest,
  type RegistryListRequest,
  type RegistryReadRequest,
  type RegistryWriteRequest,
  type ServiceControlRequest,
  type ServiceListRequest,
} from "../../gen/guru/wire/v1/system_pb.js";
import { GuruError, toGuruError } from "../../lib/errors.ts";
import { actionName, fromWireValue, toWireService, toWireValue, valueTypeName } from "../../lib/wire/system-convert.ts";
import type { Channel } from "../../lib/wire/link.ts";
import { requireRegistryKey, requireServiceControl, requireSystemCapability } from "../policy/system-rules.ts";
import { validateServiceName } from "../system/system-names.ts";
import type { HandlerContext } from "./dispatch.ts";

type Area = "services" | "registry";

/** The common frame of every system operation: checks, the oplog entry either way. */
async function systemOperation<T>(
  ctx: HandlerContext,
  area: Area,
  sessionId: string,
  operation: string,
  detail: Record<string, unknown>,
  run: () => Promise<{ result: T; logged?: Record<string, unknown> }>,
): Promise<T> {
  let technicianId = ctx.tunnel.active?.technicianId ?? "";
  try {
    technicianId = ctx.tunnel.require(sessionId).technicianId;
    const support = ctx.system.support;
    if (area === "services" && !support.services)
      throw new GuruError("failed_precondition", `services are not available on this agent: ${support.servicesMissing}`, {
        details: { missing: support.servicesMissing },
      });
    if (area === "registry" && !support.registry)
      throw new GuruError("failed_precondition", `the registry is not available on this agent: ${support.registryMissing}`, {
        details: { missing: support.registryMissing },
      });
    requireSystemCapability(ctx.policy, area);
    const { result, logged } = await run();
    void ctx.oplog.record({ technicianId, sessionId, operation, detail: { ...detail, ...logged }, result: "ok" });
    return result;
  } catch (err) {
    const error = toGuruError(err);
    void ctx.oplog.record({
      technicianId,
      sessionId,
      operation,
      detail: { ...detail, error: error.message },
      result: error.kind === "denied" || error.kind === "invalid" ? "refused" : "failed",
    });
    throw error;
  }
}

export async function handleServiceList(channel: Channel, req: ServiceListRequest, ctx: HandlerContext): Promise<void> {
  const listed = await systemOperation(ctx, "services", req.sessionId, "service_list", { filter: req.filter }, async () => {
    const r = await ctx.system.listServices(req.filter);
    return { result: r, logged: { count: r.services.length } };
  });
  channel.sendResult({
    case: "serviceList",
    value: create(ServiceListResultSchema, { services: listed.services.map(toWireService), serviceManager: listed.manager }),
  });
}

export async function handleServiceControl(channel: Channel, req: ServiceControlRequest, ctx: HandlerContext): Promise<void> {
  const action = actionName(req.action);
  const detail = { name: req.name, action: action ?? String(req.action), dryRun: req.dryRun, waitMs: req.waitMs };
  const outcome = await systemOperation(ctx, "services", req.sessionId, "service_control", detail, async () => {
    if (action === undefined) throw new GuruError("invalid", "action must be start, stop, restart, enable or disable");
    // A bad name is "invalid" whatever the rules say.
    validateServiceName(req.name, process.platform);
    requireServiceControl(ctx.policy, req.name);
    const r = await ctx.system.controlService({ name: req.name, action, dryRun: req.dryRun, waitMs: req.waitMs }, channel.signal);
    return { result: r, logged: { before: r.before, after: r.after, changed: r.changed, settled: r.settled } };
  });
  channel.sendResult({
    case: "serviceControl",
    value: create(ServiceControlResultSchema, {
      before: toWireService(outcome.before),
      after: toWireService(outcome.after),
      dryRun: outcome.dryRun,
      changed: outcome.changed,
      settled: outcome.settled,
      serviceManager: ctx.system.support.serviceManager,
    }),
  });
}

export async function handleRegistryList(channel: Channel, req: RegistryListRequest, ctx: HandlerContext): Promise<void> {
  const listing = await systemOperation(ctx, "registry", req.sessionId, "registry_list", { key: req.key }, async () => {
    requireRegistryKey(ctx.policy, req.key);
    const r = await ctx.system.listRegistry(req.key);
    return { result: r, logged: { subkeys: r.subkeys.length, values: r.values.length } };
  });
  channel.sendResult({
    case: "registryList",
    value: create(RegistryListResultSchema, { key: listing.key, subkeys: listing.subkeys, values: listing.values.map(toWireValue) }),
  });
}

export async function handleRegistryRead(channel: Channel, req: RegistryReadRequest, ctx: HandlerContext): Promise<void> {
  const value = await systemOperation(ctx, "registry", req.sessionId, "registry_read", { key: req.key, valueName: req.valueName }, async () => {
    requireRegistryKey(ctx.policy, req.key);
    return { result: await ctx.system.readRegistry(req.key, req.valueName) };
  });
  channel.sendResult({ case: "registryRead", value: create(RegistryReadResultSchema, { key: req.key, value: toWireValue(value) }) });
}

export async function handleRegistryWrite(channel: Channel, req: RegistryWriteRequest, ctx: HandlerContext): Promise<void> {
  const detail = { key: req.key, valueName: req.valueName, dryRun: req.dryRun };
  const written = await systemOperation(ctx, "registry", req.sessionId, "registry_write", detail, async () => {
    requireRegistryKey(ctx.policy, req.key);
    const value = fromWireValue(req.value);
    const type = req.value ? valueTypeName(req.value.type) : undefined;
    if (value === undefined || type === undefined)
      throw new GuruError("invalid", "a value with a type (SZ, EXPAND_SZ, MULTI_SZ, DWORD, QWORD, BINARY, NONE) is required");
    const r = await ctx.system.writeRegistry(req.key, { ...value, type, name: req.valueName }, req.dryRun);
    return { result: r, logged: { before: r.before ?? null, after: r.after } };
  });
  channel.sendResult({
    case: "registryWrite",
    value: create(RegistryWriteResultSchema, {
      key: written.key,
      before: written.before ? toWireValue(written.before) : undefined,
      after: toWireValue(written.after),
      dryRun: req.dryRun,
    }),
  });
}

export async function handleRegistryDelete(channel: Channel, req: RegistryDeleteRequest, ctx: HandlerContext): Promise<void> {
  const detail = { key: req.key, valueName: req.valueName, dryRun: req.dryRun };
  const deleted = await systemOperation(ctx, "registry", req.sessionId, "registry_delete", detail, async () => {
    requireRegistryKey(ctx.policy, req.key);
    const r = await ctx.system.deleteRegistryValue(req.key, req.valueName, req.dryRun);
    return { result: r, logged: { before: r.before } };
  });
  channel.sendResult({
    case: "registryDelete",
    value: create(RegistryDeleteResultSchema, { key: deleted.key, before: toWireValue(deleted.before), dryRun: req.dryRun }),
  });
}
