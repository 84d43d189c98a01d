// Services and the registry on the agent of the caller's active tunnel.
// Checks here: the session (the caller's, active) and, for anything that
// changes the endpoint (service control, registry writes and deletes, dry
// runs included), the technician's rate limit on that agent, shared with
// commands. The agent checks names, its local policy and what its OS offers.
// Every call is audited in system_audit, allowed or refused, with the values
// before and after and the dry-run flag.
import { GuruError, toGuruError, type ErrorKind } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { registryValueTypes, serviceActions, type RegistryValue, type ServiceAction } from "../../lib/system-types.ts";
import type { AuditOutcome } from "../store/audit.ts";
import type { Store } from "../store/index.ts";
import type { SystemAuditInput } from "../store/system-audit.ts";
import type { Principal } from "./principal.ts";
import type { RemoteSystem } from "./remote-system.ts";
import type { SessionService } from "./sessions.ts";

export interface SystemLimits {
  rateLimit: number;
  rateWindowMs: number;
  defaultWaitMs: number;
  maxWaitMs: number;
}

export interface SystemServiceOptions {
  store: Pick<Store, "systemAudit" | "rateLimits">;
  sessions: Pick<SessionService, "requireActive">;
  remote: RemoteSystem;
  logger: Logger;
  limits: SystemLimits;
}

// Agent answers that mean "a check said no", not "it broke".
const refusalKinds = new Set<ErrorKind>(["denied", "invalid", "failed_precondition", "rate_limited"]);

type AuditBase = Pick<SystemAuditInput, "operation" | "target" | "action" | "dryRun">;

export function createSystemService(options: SystemServiceOptions) {
  const { store, sessions, remote, logger, limits } = options;

  /** Session check, rate limit where it applies, the call, and one audit row either way. */
  async function audited<T>(
    principal: Principal,
    sessionId: string,
    base: AuditBase,
    rateLimited: boolean,
    check: () => void,
    run: (agentId: string) => Promise<{ result: T; before?: unknown; after?: unknown }>,
  ): Promise<T> {
    const started = Date.now();
    let agentId: string | undefined;
    try {
      agentId = (await sessions.requireActive(principal, sessionId)).agentId;
      // Bad input is refused before it costs the technician a rate-limit hit.
      check();
      if (rateLimited) await hitRateLimit(principal.technicianId, agentId);
      const { result, before, after } = await run(agentId);
      await record({ ...base, technicianId: principal.technicianId, agentId, sessionId, outcome: "allowed", before, after, durationMs: Date.now() - started });
      return result;
    } catch (err) {
      const error = toGuruError(err);
      const outcome: AuditOutcome = refusalKinds.has(error.kind) ? "refused" : "failed";
      await record({
        ...base,
        technicianId: principal.technicianId,
        agentId,
        sessionId: agentId ? sessionId : null,
        outcome,
        error: error.message,
        durationMs: Date.now() - started,
      });
      logger.info(
        { technicianId: principal.technicianId, agentId, operation: base.operation, target: base.target, kind: error.kind, reason: error.message },
        `system operation ${outcome}`,
      );
      throw error;
    }
  }

  async function record(row: SystemAuditInput): Promise<void> {
    await store.systemAudit.record(row).catch((err: unknown) => logger.error({ err, operation: row.operation }, "system audit failed"));
  }

  async function hitRateLimit(technicianId: string, agentId: string): Promise<void> {
    // The key commands use (migrations/0003): one budget per technician per agent.
    const hit = await store.rateLimits.hit(`exec:${technicianId}:${agentId}`, { limit: limits.rateLimit, windowMs: limits.rateWindowMs });
    if (!hit.allowed) {
      throw new GuruError(
        "rate_limited",
        `rate limit: at most ${limits.rateLimit} commands and control operations per ${limits.rateWindowMs / 1000} s per technician per agent; retry in ${(hit.retryAfterMs / 1000).toFixed(1)} s (${hit.retryAfterMs} ms)`,
        { details: { retryAfterMs: hit.retryAfterMs, limit: limits.rateLimit, windowMs: limits.rateWindowMs } },
      );
    }
  }

  function requireText(value: string, what: string): void {
    if (typeof value !== "string" || value.trim() === "") throw new GuruError("invalid", `${what} is required`);
    if (value.includes("\0")) throw new GuruError("invalid", `${what} must not contain NUL characters`);
  }

  function listServices(principal: Principal, req: { sessionId: string; filter: string }) {
    return audited(
      principal,
      req.sessionId,
      { operation: "service_list", target: req.filter || null, dryRun: false },
      false,
      () => {},
      async (agentId) => {
        const result = await remote.listServices(agentId, req);
        return { result, after: { count: result.services.length } };
      },
    );
  }

  function controlService(
    principal: Principal,
    req: { sessionId: string; name: string; action: string; dryRun: boolean; waitMs: number },
    signal?: AbortSignal,
  ) {
    const check = () => {
      requireText(req.name, "a service name");
      if (!serviceActions.includes(req.action as ServiceAction))
        throw new GuruError("invalid", `action must be one of ${serviceActions.join(", ")}`, { details: { action: req.action } });
      if (!Number.isInteger(req.waitMs) || req.waitMs < 0) throw new GuruError("invalid", "waitMs must be a non-negative integer");
    };
    return audited(
      principal,
      req.sessionId,
      { operation: "service_control", target: req.name, action: req.action, dryRun: req.dryRun },
      true,
      check,
      async (agentId) => {
        const waitMs = Math.min(req.waitMs === 0 ? limits.defaultWaitMs : req.waitMs, limits.maxWaitMs);
        const result = await remote.controlService(agentId, { ...req, action: req.action as ServiceAction, waitMs }, signal);
        return { result, before: result.before, after: result.after };
      },
    );
  }

  function listRegistry(principal: Principal, req: { sessionId: string; key: string }) {
    return audited(
      principal,
      req.sessionId,
      { operation: "registry_list", target: req.key, dryRun: false },
      false,
      () => requireText(req.key, "a registry key"),
      async (agentId) => {
        const result = await remote.listRegistry(agentId, req);
        return { result, after: { subkeys: result.subkeys.length, values: result.values.length } };
      },
    );
  }

  function readRegistry(principal: Principal, req: { sessionId: string; key: string; valueName: string }) {
    return audited(
      principal,
      req.sessionId,
      { operation: "registry_read", target: `${req.key}\\${req.valueName}`, dryRun: false },
      false,
      () => requireText(req.key, "a registry key"),
      async (agentId) => {
        const result = await remote.readRegistry(agentId, req);
        return { result, after: result.value };
      },
    );
  }

  function writeRegistry(principal: Principal, req: { sessionId: string; key: string; value: RegistryValue; dryRun: boolean }) {
    const base = { operation: "registry_write", target: `${req.key}\\${req.value.name}`, action: req.value.type, dryRun: req.dryRun };
    const check = () => {
      requireText(req.key, "a registry key");
      if (!registryValueTypes.includes(req.value.type))
        throw new GuruError("invalid", `type must be one of ${registryValueTypes.map((t) => t.toUpperCase()).join(", ")}`);
    };
    return audited(principal, req.sessionId, base, true, check, async (agentId) => {
      const result = await remote.writeRegistry(agentId, req);
      return { result, before: result.before ?? null, after: result.after };
    });
  }

  function deleteRegistryValue(principal: Principal, req: { sessionId: string; key: string; valueName: string; dryRun: boolean }) {
    return audited(
      principal,
      req.sessionId,
      { operation: "registry_delete", target: `${req.key}\\${req.valueName}`, dryRun: req.dryRun },
      true,
      () => requireText(req.key, "a registry key"),
      async (agentId) => {
        const result = await remote.deleteRegistryValue(agentId, req);
        return { result, before: result.before, after: req.dryRun ? result.before : null };
      },
    );
  }

  return { listServices, controlService, listRegistry, readRegistry, writeRegistry, deleteRegistryValue };
}

export type SystemService = ReturnType<typeof createSystemService>;
