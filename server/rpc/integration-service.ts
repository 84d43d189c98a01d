// guru.integration.v1.IntegrationService: thin adapters over the partner
// domain; every call but GetCapabilities is audited under the caller's key.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  LimitsSchema,
  WatchSessionsResponseSchema,
  type IntegrationService,
  type WatchSessionsResponse,
} from "../../gen/guru/integration/v1/integration_pb.js";
import type { ViewerTokens } from "../auth/viewer-tokens.ts";
import { requireUuid } from "../domain/ids.ts";
import type { PartnerAgents } from "../domain/partner-agents.ts";
import type { PartnerAudit } from "../domain/partner-audit.ts";
import type { PartnerSessions } from "../domain/partner-sessions.ts";
import type { SessionEvent, SessionEvents } from "../domain/session-events.ts";
import { partnerKeyOf } from "./partner-auth.ts";
import { agentRefFromApi, modeFromApi, optionalAgentRef, statusFromApi, toApiPartnerSession, toApiSessionEvent } from "./partner-convert.ts";
import { timestamp } from "./convert.ts";

export interface CapabilitiesInfo {
  contractVersion: string;
  serverVersion: string;
  features: string[];
  wireProtocol: string;
  packageVersions: Record<string, string>;
  limits: { maxUploadChunkBytes: number; maxCommandOutputBytes: number; sessionIdleMs: number; consentTimeoutMs: number; maxViewerTokenTtlSeconds: number };
}

export interface IntegrationDeps {
  info: CapabilitiesInfo;
  partnerAgents: PartnerAgents;
  partnerSessions: PartnerSessions;
  events: SessionEvents;
  viewerTokens: ViewerTokens;
  audit: PartnerAudit;
  viewerUrl(sessionId: string): string;
  /** How often a quiet WatchSessions stream gets a heartbeat. */
  watchHeartbeatMs: number;
  /** Aborted when the server closes: open streams end. */
  shutdownSignal: AbortSignal;
}

export function integrationServiceImpl(deps: IntegrationDeps): ServiceImpl<typeof IntegrationService> {
  const { partnerSessions: sessions, audit } = deps;
  const run = <T>(
    ctx: HandlerContext,
    method: string,
    asked: { sessionId?: string; agentId?: string },
    fn: () => Promise<T>,
    targetOf?: (r: T) => { sessionId?: string; agentId?: string },
  ) => audit.run(partnerKeyOf(ctx), method, asked, fn, targetOf);

  return {
    getCapabilities() {
      const { limits, ...info } = deps.info;
      return {
        ...info,
        limits: create(LimitsSchema, {
          maxUploadChunkBytes: limits.maxUploadChunkBytes,
          maxCommandOutputBytes: BigInt(limits.maxCommandOutputBytes),
          sessionIdleMs: BigInt(limits.sessionIdleMs),
          consentTimeoutMs: BigInt(limits.consentTimeoutMs),
          maxViewerTokenTtlSeconds: limits.maxViewerTokenTtlSeconds,
        }),
      };
    },

    async provisionAgentKey(req, ctx) {
      const key = partnerKeyOf(ctx);
      return run(
        ctx,
        "ProvisionAgentKey",
        {},
        () => deps.partnerAgents.provision(key, { externalId: req.externalId, name: req.name }),
        (r) => ({ agentId: r.agentId }),
      );
    },

    async revokeAgentKey(req, ctx) {
      const key = partnerKeyOf(ctx);
      await run(
        ctx,
        "RevokeAgentKey",
        {},
        () => deps.partnerAgents.revoke(key, agentRefFromApi(req.agent)),
        (a) => ({ agentId: a.id }),
      );
      return {};
    },

    async createSession(req, ctx) {
      const key = partnerKeyOf(ctx);
      const session = await run(
        ctx,
        "CreateSession",
        {},
        () =>
          sessions.create(key, { agent: agentRefFromApi(req.agent), mode: modeFromApi(req.mode), technician: req.technician, capabilities: req.capabilities }),
        (s) => ({ sessionId: s.id, agentId: s.agentId }),
      );
      return { session: toApiPartnerSession(session) };
    },

    async startRemoteControl(req, ctx) {
      const key = partnerKeyOf(ctx);
      const session = await run(
        ctx,
        "StartRemoteControl",
        {},
        () => sessions.create(key, { agent: agentRefFromApi(req.agent), mode: modeFromApi(req.mode), technician: req.technician, capabilities: [] }),
        (s) => ({ sessionId: s.id, agentId: s.agentId }),
      );
      return { session: toApiPartnerSession(session), viewerUrl: deps.viewerUrl(session.id) };
    },

    async getSession(req, ctx) {
      const key = partnerKeyOf(ctx);
      const session = await run(ctx, "GetSession", { sessionId: validId(req.sessionId) }, () => sessions.get(key, req.sessionId));
      return { session: toApiPartnerSession(session) };
    },

    async listSessions(req, ctx) {
      const key = partnerKeyOf(ctx);
      const list = await run(ctx, "ListSessions", {}, async () =>
        sessions.list(key, { agent: optionalAgentRef(req.agent), status: statusFromApi(req.status) }),
      );
      return { sessions: list.map(toApiPartnerSession) };
    },

    async endSession(req, ctx) {
      const key = partnerKeyOf(ctx);
      const session = await run(
        ctx,
        "EndSession",
        { sessionId: validId(req.sessionId) },
        () => sessions.end(key, req.sessionId, req.reason),
        (s) => ({ agentId: s.agentId }),
      );
      return { session: toApiPartnerSession(session) };
    },

    async *watchSessions(req, ctx) {
      const key = partnerKeyOf(ctx);
      await run(ctx, "WatchSessions", { sessionId: validId(req.sessionId) }, async () => {
        if (req.sessionId !== "") await sessions.get(key, requireUuid(req.sessionId, "session id"));
      });
      yield* watch(deps, key.keyId, req.sessionId, AbortSignal.any([ctx.signal, deps.shutdownSignal]));
    },

    async mintViewerToken(req, ctx) {
      const key = partnerKeyOf(ctx);
      const minted = await run(ctx, "MintViewerToken", { sessionId: validId(req.sessionId) }, () =>
        deps.viewerTokens.mint(key, { sessionId: req.sessionId, origin: req.origin, ttlSeconds: req.ttlSeconds }),
      );
      return { token: minted.token, viewerUrl: minted.viewerUrl, expiresAt: timestamp(minted.expiresAt) };
    },
  };
}

/** An id fit for the audit row, or nothing (the call itself refuses a malformed one). */
function validId(id: string): string | undefined {
  return /^[0-9a-f-]{36}$/i.test(id) ? id : undefined;
}

async function* watch(deps: IntegrationDeps, keyId: string, sessionId: string, signal: AbortSignal): AsyncGenerator<WatchSessionsResponse> {
  const queue: SessionEvent[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = deps.events.subscribe(keyId, (event) => {
    if (sessionId !== "" && event.session.id !== sessionId) return;
    queue.push(event);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    yield create(WatchSessionsResponseSchema, { message: { case: "started", value: {} } });
    while (!signal.aborted) {
      const next = queue.shift();
      if (next !== undefined) {
        yield create(WatchSessionsResponseSchema, { message: { case: "event", value: toApiSessionEvent(next) } });
        continue;
      }
      const timedOut = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), deps.watchHeartbeatMs);
        wake = () => {
          clearTimeout(timer);
          resolve(false);
        };
      });
      wake = undefined;
      if (timedOut && !signal.aborted) {
        yield create(WatchSessionsResponseSchema, { message: { case: "heartbeat", value: { at: timestampFromDate(new Date()) } } });
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    unsubscribe();
  }
}
