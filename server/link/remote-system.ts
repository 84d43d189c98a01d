// RemoteSystem (the domain's port) over the AgentRouter: one interactive
// channel per operation, its typed result converted to the domain's types.
import { create } from "@bufbuild/protobuf";
import {
  RegistryDeleteRequestSchema,
  RegistryListRequestSchema,
  RegistryReadRequestSchema,
  RegistryWriteRequestSchema,
  ServiceControlRequestSchema,
  ServiceListRequestSchema,
} from "../../gen/guru/wire/v1/system_pb.js";
import { ChannelOpenSchema, type ChannelOpen, type ChannelResult } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../../lib/errors.ts";
import { fromWireService, fromWireValue, toWireValue, wireAction } from "../../lib/wire/system-convert.ts";
import type { RemoteSystem } from "../domain/remote-system.ts";
import type { AgentRouter } from "./agent-router.ts";

/** Time for an operation that does not wait for a service (listing can run a status per SysV script). */
const operationTimeoutMs = 120_000;

type Result = Exclude<ChannelResult["result"], { case: undefined }>;
type ResultOf<C extends Result["case"]> = Extract<Result, { case: C }>["value"];

export function createRemoteSystem(router: AgentRouter): RemoteSystem {
  async function call<C extends Result["case"]>(
    agentId: string,
    request: ChannelOpen["request"],
    want: C,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<ResultOf<C>> {
    const channel = router.openChannel(agentId, create(ChannelOpenSchema, { request }), { bulk: false });
    const timer = setTimeout(() => channel.cancel(`no answer within ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => channel.cancel("the caller canceled");
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const message of channel.messages()) {
        if (message.type === "result" && message.result.case === want) return message.result.value as unknown as ResultOf<C>;
        if (message.type === "error") throw message.error;
        if (message.type === "result") throw new GuruError("internal", `the agent answered ${String(message.result.case)} to a ${want} request`);
      }
      throw new GuruError("unavailable", `the agent ended the ${want} channel without a result`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  return {
    async listServices(agentId, req) {
      const r = await call(agentId, { case: "serviceList", value: create(ServiceListRequestSchema, req) }, "serviceList", operationTimeoutMs);
      return { services: r.services.map(fromWireService), serviceManager: r.serviceManager };
    },
    async controlService(agentId, req, signal) {
      // A restart may wait twice (for the stop, then the start).
      const timeoutMs = 2 * req.waitMs + operationTimeoutMs;
      const r = await call(
        agentId,
        { case: "serviceControl", value: create(ServiceControlRequestSchema, { ...req, action: wireAction(req.action) }) },
        "serviceControl",
        timeoutMs,
        signal,
      );
      return {
        before: fromWireService(r.before),
        after: fromWireService(r.after),
        dryRun: r.dryRun,
        changed: r.changed,
        settled: r.settled,
        serviceManager: r.serviceManager,
      };
    },
    async listRegistry(agentId, req) {
      const r = await call(agentId, { case: "registryList", value: create(RegistryListRequestSchema, req) }, "registryList", operationTimeoutMs);
      return { key: r.key, subkeys: [...r.subkeys], values: r.values.map((v) => fromWireValue(v)) };
    },
    async readRegistry(agentId, req) {
      const r = await call(agentId, { case: "registryRead", value: create(RegistryReadRequestSchema, req) }, "registryRead", operationTimeoutMs);
      if (r.value === undefined) throw new GuruError("internal", "the agent answered a registry read without a value");
      return { key: r.key, value: fromWireValue(r.value) };
    },
    async writeRegistry(agentId, req) {
      const value = create(RegistryWriteRequestSchema, {
        sessionId: req.sessionId,
        key: req.key,
        valueName: req.value.name,
        value: toWireValue(req.value),
        dryRun: req.dryRun,
      });
      const r = await call(agentId, { case: "registryWrite", value }, "registryWrite", operationTimeoutMs);
      const after = fromWireValue(r.after);
      if (after === undefined) throw new GuruError("internal", "the agent answered a registry write without the value after");
      return { key: r.key, before: fromWireValue(r.before), after, dryRun: r.dryRun };
    },
    async deleteRegistryValue(agentId, req) {
      const r = await call(agentId, { case: "registryDelete", value: create(RegistryDeleteRequestSchema, req) }, "registryDelete", operationTimeoutMs);
      const before = fromWireValue(r.before);
      if (before === undefined) throw new GuruError("internal", "the agent answered a registry delete without the value before");
      return { key: r.key, before, dryRun: r.dryRun };
    },
  };
}
