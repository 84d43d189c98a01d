// Partner sessions: created through guru.integration.v1, possibly before the
// agent is online (pending), bound when it connects. Binding an attended
// session asks the person at the endpoint first; nothing is sent to the agent
// for the session (no TunnelOpen) before they approve. The database keeps
// every state, so a pending session outlives a server restart.
import { GuruError, toGuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { Store } from "../store/index.ts";
import type { PartnerSessionRecord, SessionMode } from "../store/partner-sessions.ts";
import type { SessionRecord, SessionStatus } from "../store/sessions.ts";
import { requireUuid } from "./ids.ts";
import { partnerTechnicianName, requireCapabilities, resolvePartnerAgent, type AgentRef, type PartnerKey } from "./partner-key.ts";
import { askForConsent, cannotAsk, consentRefusal, consentRefusalReason, policyRequiresConsent, type AskedConsent } from "./consent-asking.ts";
import type { ConsentAnswer, RemoteConsent } from "./remote-consent.ts";
import type { RemoteAgents } from "./remote-agents.ts";
import type { SessionEvents, SessionEventType } from "./session-events.ts";
import type { SessionService } from "./sessions.ts";

export interface PartnerSessionsOptions {
  store: Store;
  sessions: SessionService;
  agents: RemoteAgents;
  consent: RemoteConsent;
  events: SessionEvents;
  logger: Logger;
  consentTimeoutMs: number;
  tunnelOpenTimeoutMs: number;
}

export function createPartnerSessions(options: PartnerSessionsOptions) {
  const { store, agents, events, logger } = options;
  // One bind at a time per session: a reconnect during a consent prompt must not ask twice.
  const binding = new Map<string, Promise<PartnerSessionRecord>>();

  async function emit(type: SessionEventType, session: PartnerSessionRecord, reason = ""): Promise<void> {
    events.publish({ type, session, reason, at: new Date() });
  }

  async function tunnelAudit(event: string, outcome: string, s: PartnerSessionRecord, reason?: string, detail?: Record<string, unknown>) {
    await store.audit.tunnel({
      event,
      outcome,
      sessionId: s.id,
      agentId: s.agentId,
      technicianId: s.technicianId,
      reason,
      detail: { partnerKeyId: s.keyId, mode: s.mode, ...detail },
    });
  }

  /** Sessions that ended, by any path: partner events and viewer tokens. */
  async function sessionsClosed(ids: string[], reason: string): Promise<void> {
    if (ids.length === 0) return;
    await store.viewerTokens.revokeForSessions(ids);
    for (const id of ids) {
      const s = await store.partnerSessions.get(id);
      if (s !== undefined) await emit("closed", s, s.closeReason ?? reason);
    }
  }

  async function closePendingSession(s: PartnerSessionRecord, reason: string): Promise<void> {
    if (await store.partnerSessions.closeOnePending(s.id, reason)) {
      await tunnelAudit("close", "ok", s, reason);
      await sessionsClosed([s.id], reason);
    }
  }

  async function create(
    key: PartnerKey,
    input: { agent: AgentRef; mode: SessionMode; technician: string; capabilities: string[] },
  ): Promise<PartnerSessionRecord> {
    const capabilities = requireCapabilities(input.capabilities);
    const technicianName = partnerTechnicianName(key, input.technician);
    const agent = await resolvePartnerAgent(store, key, input.agent);
    if (agent.revokedAt !== null) throw new GuruError("denied", `agent ${agent.name} has a revoked key; provision it again`, { reason: "AGENT_REVOKED" });
    if (input.mode === "unattended" && agent.requiresConsent) throw policyRequiresConsent(agent.name, "create an attended session");
    if (input.mode === "attended" && agent.consentMode === null && agent.lastSeenAt !== null) throw cannotAsk(agent.name);
    const technician = await store.partnerAgents.ownedTechnician(key.keyId, technicianName);
    const session = await store.partnerSessions.create({
      agentId: agent.id,
      technicianId: technician.id,
      keyId: key.keyId,
      mode: input.mode,
      capabilities,
      consentState: input.mode === "attended" ? "waiting" : "not_required",
    });
    await tunnelAudit("create", "ok", session, undefined, { capabilities });
    await emit("pending", session, agents.isOnline(agent.id) ? "" : "waiting for the agent to connect");
    logger.info({ sessionId: session.id, agentId: agent.id, mode: input.mode, partner: key.name }, "partner session created");
    if (!agents.isOnline(agent.id)) return session;
    return bind(session, key.name);
  }

  function bind(session: PartnerSessionRecord, partner: string): Promise<PartnerSessionRecord> {
    let running = binding.get(session.id);
    if (running === undefined) {
      running = doBind(session, partner).finally(() => binding.delete(session.id));
      binding.set(session.id, running);
    }
    return running;
  }

  async function doBind(session: PartnerSessionRecord, partner: string): Promise<PartnerSessionRecord> {
    const agent = await store.partnerAgents.get(session.agentId);
    if (agent === undefined) throw new GuruError("not_found", `no agent ${session.agentId}`);
    if (session.mode === "unattended" && agent.requiresConsent) {
      const refusal = policyRequiresConsent(agent.name, "create an attended session");
      await closePendingSession(session, refusal.message);
      throw refusal;
    }
    if (session.mode === "attended") {
      if (agent.consentMode === null) {
        const refusal = cannotAsk(agent.name);
        await closePendingSession(session, refusal.message);
        throw refusal;
      }
      const answered = await askConsent(session, partner);
      if (answered === undefined) return current(session.id);
    }
    try {
      await agents.openTunnel(
        session.agentId,
        { sessionId: session.id, technicianId: session.technicianId, technicianName: session.technicianName },
        options.tunnelOpenTimeoutMs,
      );
    } catch (err) {
      const failure = toGuruError(err);
      if (failure.kind === "agent_offline") return backToWaiting(session);
      await closePendingSession(session, `tunnel open failed: ${failure.message}`);
      throw failure;
    }
    const active = await store.partnerSessions.activate(session.id);
    if (active === undefined) {
      // Ended while the agent was answering: it must not stay in tunnel mode.
      await agents.closeTunnel(session.agentId, session.id, "the session ended");
      return current(session.id);
    }
    await tunnelAudit("open", "ok", active);
    await emit("active", active);
    logger.info({ sessionId: active.id, agentId: active.agentId }, "partner session active");
    return active;
  }

  /** Asks and records the answer; undefined when the agent went away before answering (the session waits again). */
  async function askConsent(session: PartnerSessionRecord, partner: string): Promise<ConsentAnswer | undefined> {
    const asked = await store.partnerSessions.setConsent(session.id, "asked");
    if (asked === undefined) return undefined;
    await emit("consent_asked", asked);
    let result: AskedConsent;
    try {
      result = await askForConsent(
        options.consent,
        session.agentId,
        { sessionId: session.id, technician: session.technicianName, partner, capabilities: session.capabilities },
        options.consentTimeoutMs,
      );
    } catch (err) {
      const failure = toGuruError(err);
      if (failure.kind !== "agent_offline") throw failure;
      await backToWaiting(session);
      return undefined;
    }
    const { answer, receipt, outcome } = result;
    const recorded = await store.partnerSessions.setConsent(session.id, outcome, receipt);
    await tunnelAudit("consent", receipt.approved ? "ok" : "refused", session, answer.reason, { receipt });
    if (recorded === undefined) throw new GuruError("failed_precondition", `session ${session.id} ended while the person at the endpoint was deciding`);
    if (receipt.approved) {
      await emit("approved", recorded, answer.reason);
      return answer;
    }
    await emit(outcome === "timed_out" ? "timed_out" : "denied", recorded, answer.reason);
    await closePendingSession(recorded, consentRefusalReason(result));
    throw consentRefusal(result, session.id);
  }

  async function backToWaiting(session: PartnerSessionRecord): Promise<PartnerSessionRecord> {
    if (session.mode === "attended") await store.partnerSessions.setConsent(session.id, "waiting");
    logger.info({ sessionId: session.id }, "agent went away while binding; the session waits for it");
    return current(session.id);
  }

  async function current(id: string): Promise<PartnerSessionRecord> {
    const s = await store.partnerSessions.get(id);
    if (s === undefined) throw new GuruError("not_found", `no session ${id}`);
    return s;
  }

  /** The agent connected (this process holds its link): bind its pending session, if any. */
  async function agentConnected(agentId: string): Promise<void> {
    const pending = await store.partnerSessions.pendingForAgent(agentId);
    if (pending === undefined) return;
    const key = await store.integrationKeys.get(pending.keyId);
    if (key === undefined || key.revokedAt !== null) return;
    try {
      await bind(pending, key.name);
    } catch (err) {
      const failure = toGuruError(err);
      if (failure.kind === "internal") logger.error({ err, sessionId: pending.id }, "binding a pending session failed");
      else logger.info({ sessionId: pending.id, reason: failure.message }, "pending session refused");
    }
  }

  async function get(key: PartnerKey, sessionId: string): Promise<PartnerSessionRecord> {
    requireUuid(sessionId, "session id");
    const s = await store.partnerSessions.get(sessionId);
    if (s === undefined || s.keyId !== key.keyId)
      throw new GuruError("not_found", `no session ${sessionId} of this integration key`, { reason: "SESSION_NOT_FOUND" });
    return s;
  }

  async function list(key: PartnerKey, filter: { agent?: AgentRef; status?: SessionStatus }): Promise<PartnerSessionRecord[]> {
    const agentId = filter.agent === undefined ? undefined : (await resolvePartnerAgent(store, key, filter.agent)).id;
    return store.partnerSessions.list({ keyId: key.keyId, agentId, status: filter.status });
  }

  async function end(key: PartnerKey, sessionId: string, reason: string): Promise<PartnerSessionRecord> {
    const s = await get(key, sessionId);
    const why = `ended by ${key.name}${reason ? `: ${reason}` : ""}`;
    if (s.status === "pending") {
      await closePendingSession(s, why);
      // A prompt may be on the screen: the agent withdraws it.
      await agents.closeTunnel(s.agentId, s.id, why);
    } else if (s.status === "active") {
      await options.sessions.end(toSessionRecord(s), why, "end");
    }
    return current(s.id);
  }

  /** Every live session of a key ends (the key was revoked). */
  async function endAllForKey(keyId: string, reason: string): Promise<void> {
    const pending = await store.partnerSessions.closePending({ keyId }, reason);
    await sessionsClosed(pending, reason);
    for (const s of await store.partnerSessions.list({ keyId, status: "active" })) await options.sessions.end(toSessionRecord(s), reason, "end");
  }

  /** Pending sessions of an agent whose key was revoked can never bind. */
  async function agentRevoked(agentId: string, reason: string): Promise<void> {
    await sessionsClosed(await store.partnerSessions.closePending({ agentId }, reason), reason);
  }

  return {
    create,
    get,
    list,
    end,
    endAllForKey,
    agentConnected,
    agentRevoked,
    /** For the session service's onClosed hook. */
    sessionsClosed: (closed: SessionRecord[], reason: string) =>
      sessionsClosed(
        closed.map((s) => s.id),
        reason,
      ),
  };
}

export type PartnerSessions = ReturnType<typeof createPartnerSessions>;

function toSessionRecord(s: PartnerSessionRecord): SessionRecord {
  return {
    id: s.id,
    agentId: s.agentId,
    technicianId: s.technicianId,
    status: s.status,
    openedAt: s.openedAt,
    lastActivityAt: s.openedAt,
    closedAt: s.closedAt,
    closeReason: s.closeReason,
  };
}
