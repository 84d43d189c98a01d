// Tunnel sessions: a technician's exclusive, audited hold on one agent. The
// database is the source of truth (one active tunnel per agent is a partial
// unique index), so this works the same with several server processes.
import type { Logger } from "../../lib/logging.ts";
import { GuruError, toGuruError } from "../../lib/errors.ts";
import type { Store } from "../store/index.ts";
import type { SessionRecord } from "../store/sessions.ts";
import type { Principal } from "./principal.ts";
import { requireAdmin } from "./principal.ts";
import { askForConsent, cannotAsk, consentRefusal, consentRefusalReason, policyRequiresConsent, type AskedConsent } from "./consent-asking.ts";
import { requireCapabilities } from "./partner-key.ts";
import type { RemoteAgents } from "./remote-agents.ts";
import type { RemoteConsent } from "./remote-consent.ts";
import { isUuid, requireUuid } from "./ids.ts";
import type { TechnicianRateLimit } from "./rate-limit.ts";
import type { SessionWork } from "./session-work.ts";

export interface SessionServiceOptions {
  store: Store;
  agents: RemoteAgents;
  logger: Logger;
  tunnelOpenTimeoutMs: number;
  sessionIdleMs: number;
  /** What runs in each tunnel; a tunnel that ends cancels it. */
  work: SessionWork;
  /** Tunnel opens per technician. */
  openRateLimit?: TechnicianRateLimit;
  /** Asks the person at the endpoint before an attended tunnel opens, waiting up to timeoutMs for the answer. */
  consent?: { port: RemoteConsent; timeoutMs: number };
  /** Counts tunnels that opened (metrics). */
  onOpened?(): void;
  /** Sessions that just ended, whoever ended them (partner events, viewer token revocation). */
  onClosed?(sessions: SessionRecord[], reason: string): Promise<void>;
}

function notOwned(sessionId: string, hint = ""): GuruError {
  return new GuruError("denied", `session ${sessionId} belongs to another technician${hint}`, { reason: "SESSION_NOT_OWNED", metadata: { sessionId } });
}

export function createSessionService(options: SessionServiceOptions) {
  const { store, agents, logger } = options;

  async function audit(
    event: string,
    outcome: string,
    fields: { sessionId?: string; agentId?: string; technicianId?: string; reason?: string; detail?: Record<string, unknown> },
  ) {
    await store.audit.tunnel({ event, outcome, ...fields });
  }

  /**
   * forCommands: a tunnel for commands that name only their agent, closed by
   * the last of them (see command-tunnels.ts). attended: the person at the
   * endpoint approves `capabilities` first (all when empty); the tunnel is
   * pending, holding the agent, while they decide.
   */
  async function open(
    principal: Principal,
    agentId: string,
    purpose: { forCommands?: boolean; attended?: boolean; capabilities?: string[]; signal?: AbortSignal } = {},
  ): Promise<SessionRecord> {
    const refuse = async (err: GuruError): Promise<never> => {
      await audit("open", "refused", { agentId: isUuid(agentId) ? agentId : undefined, technicianId: principal.technicianId, reason: err.message });
      throw err;
    };
    if (!isUuid(agentId)) return refuse(new GuruError("invalid", `agent id "${agentId}" is not a UUID`, { metadata: { field: "agentId" } }));
    try {
      await options.openRateLimit?.hit(principal.technicianId);
    } catch (err) {
      return refuse(toGuruError(err));
    }
    const agent = await store.agents.get(agentId);
    if (agent === undefined) return refuse(new GuruError("not_found", `no agent ${agentId}`, { reason: "AGENT_NOT_FOUND", metadata: { agentId } }));
    if (agent.revokedAt !== null)
      return refuse(new GuruError("denied", `agent ${agent.name} has a revoked key`, { reason: "AGENT_REVOKED", metadata: { agentId } }));
    if (!agents.isOnline(agentId)) {
      const since = agent.lastSeenAt === null ? "" : ` since ${agent.lastSeenAt.toISOString()}`;
      return refuse(
        new GuruError("agent_offline", `agent ${agent.name} is offline${since}`, {
          metadata: { agentId, agentName: agent.name, lastSeenAt: agent.lastSeenAt?.toISOString() },
        }),
      );
    }
    // What the agent said about consent in its Hello.
    const consentPolicy = await store.partnerAgents.get(agentId);
    let capabilities: string[] | undefined;
    if (purpose.attended) {
      try {
        capabilities = requireCapabilities(purpose.capabilities ?? []);
      } catch (err) {
        return refuse(toGuruError(err));
      }
      if (consentPolicy?.consentMode == null || options.consent === undefined) return refuse(cannotAsk(agent.name));
    } else if (consentPolicy?.requiresConsent) {
      return refuse(policyRequiresConsent(agent.name, "open the tunnel attended (`guru tunnel open --attended`, OpenTunnelRequest.attended)"));
    }
    let session: SessionRecord;
    try {
      session = await store.sessions.open({
        agentId,
        technicianId: principal.technicianId,
        tokenId: principal.tokenId,
        forCommands: purpose.forCommands,
        attended: capabilities === undefined ? undefined : { capabilities },
      });
    } catch (err) {
      return refuse(toGuruError(err));
    }
    const fail = async (failure: GuruError): Promise<never> => {
      const reason = `tunnel open failed: ${failure.message}`;
      if (capabilities === undefined) await store.sessions.close(session.id, { status: "closed", reason });
      else await store.sessions.closePending(session.id, reason);
      await audit("open", "failed", { sessionId: session.id, agentId, technicianId: principal.technicianId, reason: failure.message });
      throw failure;
    };
    if (capabilities !== undefined) {
      // A caller that gives up while the person decides leaves nothing to open.
      const pending = session;
      const gaveUp = () => void closeWhileAsking(pending, "the technician stopped waiting for the answer").catch(() => undefined);
      purpose.signal?.addEventListener("abort", gaveUp, { once: true });
      try {
        await askThePerson(principal, session, capabilities, fail);
      } finally {
        purpose.signal?.removeEventListener("abort", gaveUp);
      }
    }
    try {
      await agents.openTunnel(
        agentId,
        { sessionId: session.id, technicianId: principal.technicianId, technicianName: principal.name },
        options.tunnelOpenTimeoutMs,
      );
    } catch (err) {
      return fail(toGuruError(err));
    }
    if (capabilities !== undefined) {
      const active = await store.sessions.activate(session.id);
      if (active === undefined) {
        // Ended while the agent opened it: it must not stay in tunnel mode.
        await agents.closeTunnel(agentId, session.id, "the tunnel ended while it opened");
        throw new GuruError("failed_precondition", `tunnel ${session.id} ended while it opened`, { metadata: { sessionId: session.id } });
      }
      session = active;
    }
    await audit("open", "ok", { sessionId: session.id, agentId, technicianId: principal.technicianId });
    options.onOpened?.();
    logger.info({ sessionId: session.id, agentId, technicianId: principal.technicianId }, "tunnel opened");
    return session;
  }

  /** Asks the person at the endpoint about a pending attended tunnel; returns once they approved, else closes it and throws. */
  async function askThePerson(
    principal: Principal,
    session: SessionRecord,
    capabilities: string[],
    fail: (failure: GuruError) => Promise<never>,
  ): Promise<void> {
    let asked: AskedConsent;
    try {
      // open() refuses an attended tunnel before this when the server has no way to ask.
      const { port, timeoutMs } = options.consent as NonNullable<SessionServiceOptions["consent"]>;
      asked = await askForConsent(port, session.agentId, { sessionId: session.id, technician: principal.name, partner: "", capabilities }, timeoutMs);
    } catch (err) {
      return fail(toGuruError(err));
    }
    const { answer, receipt, outcome } = asked;
    const stillPending = await store.sessions.recordConsent(session.id, outcome, receipt);
    await audit("consent", receipt.approved ? "ok" : "refused", {
      sessionId: session.id,
      agentId: session.agentId,
      technicianId: principal.technicianId,
      reason: answer.reason,
      detail: { receipt },
    });
    if (!stillPending) {
      const closed = await store.sessions.get(session.id);
      throw new GuruError(
        "failed_precondition",
        `tunnel ${session.id} was closed while the person at the endpoint decided (${closed?.closeReason ?? "closed"})`,
        {
          reason: "SESSION_NOT_ACTIVE",
          metadata: { sessionId: session.id },
        },
      );
    }
    if (receipt.approved) return;
    await store.sessions.closePending(session.id, consentRefusalReason(asked));
    logger.info({ sessionId: session.id, agentId: session.agentId, outcome }, "attended tunnel not approved");
    throw consentRefusal(asked, session.id);
  }

  /** The session, if the principal may see it (their own, or any for an admin). */
  async function get(principal: Principal, sessionId: string): Promise<SessionRecord> {
    requireUuid(sessionId, "session id");
    const session = await store.sessions.get(sessionId);
    if (session === undefined) throw new GuruError("not_found", `no session ${sessionId}`, { reason: "SESSION_NOT_FOUND", metadata: { sessionId } });
    if (session.technicianId !== principal.technicianId && principal.role !== "admin") {
      throw notOwned(sessionId);
    }
    return session;
  }

  async function finish(session: SessionRecord, status: "closed" | "expired", reason: string, event: string, actor?: string) {
    const closed = await store.sessions.close(session.id, { status, reason });
    if (closed === undefined) return store.sessions.get(session.id) as Promise<SessionRecord>;
    await audit(event, "ok", { sessionId: session.id, agentId: session.agentId, technicianId: actor ?? session.technicianId, reason });
    await endWork(closed, reason);
    logger.info({ sessionId: session.id, agentId: session.agentId, reason }, "tunnel closed");
    await options.onClosed?.([closed], reason);
    return closed;
  }

  /** The tunnel ended: its operations here are canceled, and the agent stops what it runs for it. */
  async function endWork(session: SessionRecord, reason: string): Promise<void> {
    const canceled = options.work.cancel({ sessionId: session.id }, reason);
    if (canceled > 0) logger.info({ sessionId: session.id, operations: canceled, reason }, "canceled the tunnel's operations");
    await agents.closeTunnel(session.agentId, session.id, reason);
  }

  /**
   * Ends the active tunnels of a technician (all their tokens revoked, or
   * disabled) or only those opened with one token (it was revoked), and
   * cancels operations started with the token(s) wherever they run.
   */
  async function endFor(holder: { technicianId: string } | { tokenId: string }, reason: string, actor: string): Promise<number> {
    const closed = await store.sessions.closeActiveFor(holder, reason);
    for (const s of closed) {
      await audit("force_close", "ok", { sessionId: s.id, agentId: s.agentId, technicianId: actor, reason });
      await endWork(s, reason);
    }
    options.work.cancel(holder, reason);
    return closed.length;
  }

  async function close(principal: Principal, sessionId: string): Promise<SessionRecord> {
    const session = await get(principal, sessionId);
    if (session.technicianId !== principal.technicianId) {
      await audit("close", "refused", { sessionId, agentId: session.agentId, technicianId: principal.technicianId, reason: "not the owner" });
      throw notOwned(sessionId, "; admins use ForceCloseTunnel");
    }
    if (session.status === "pending") return closeWhileAsking(session, "closed by the technician");
    if (session.status !== "active") return session;
    return finish(session, "closed", "closed by the technician", "close");
  }

  /** An attended tunnel closed while its person decides: the answer, when it comes, opens nothing. */
  async function closeWhileAsking(session: SessionRecord, reason: string): Promise<SessionRecord> {
    if (await store.sessions.closePending(session.id, reason)) {
      await audit("close", "ok", { sessionId: session.id, agentId: session.agentId, technicianId: session.technicianId, reason });
    }
    return (await store.sessions.get(session.id)) ?? session;
  }

  async function forceClose(principal: Principal, sessionId: string, reason: string): Promise<SessionRecord> {
    requireAdmin(principal);
    const session = await get(principal, sessionId);
    if (session.status !== "active") return session;
    return finish(session, "closed", `force-closed by ${principal.name}${reason ? `: ${reason}` : ""}`, "force_close", principal.technicianId);
  }

  async function list(principal: Principal, filter: { agentId?: string; status?: SessionRecord["status"]; allTechnicians?: boolean }) {
    if (filter.agentId) requireUuid(filter.agentId, "agent id");
    if (filter.allTechnicians) requireAdmin(principal);
    return store.sessions.list({
      agentId: filter.agentId || undefined,
      status: filter.status,
      technicianId: filter.allTechnicians ? undefined : principal.technicianId,
    });
  }

  /**
   * The active session an operation runs in: the caller's own and active.
   * Moves last_activity so idle expiry counts from the latest operation.
   */
  async function requireActive(principal: Principal, sessionId: string): Promise<SessionRecord> {
    requireUuid(sessionId, "session id");
    // One round trip on the path every operation takes; the reads below only explain a refusal.
    const touched = await store.sessions.touchOwnedActive(sessionId, principal.technicianId);
    if (touched !== undefined) return touched;
    const session = await get(principal, sessionId);
    if (session.technicianId !== principal.technicianId) throw notOwned(sessionId);
    throw new GuruError(
      "failed_precondition",
      `session ${sessionId} is ${session.status}${session.closeReason ? ` (${session.closeReason})` : ""}; open a new tunnel`,
      {
        reason: "SESSION_NOT_ACTIVE",
        metadata: { sessionId, status: session.status, agentId: session.agentId },
      },
    );
  }

  /** The agent's link went away: its sessions end at once. */
  async function agentDisconnected(agentId: string, reason: string): Promise<void> {
    const closed = await store.sessions.closeActiveForAgent(agentId, reason);
    for (const s of closed) {
      await audit("close", "ok", { sessionId: s.id, agentId, technicianId: s.technicianId, reason });
      options.work.cancel({ sessionId: s.id }, reason);
      logger.info({ sessionId: s.id, agentId, reason }, "tunnel closed by agent disconnect");
    }
    if (closed.length > 0) await options.onClosed?.(closed, reason);
  }

  async function expireIdle(): Promise<number> {
    const expired = await store.sessions.expireIdle(options.sessionIdleMs);
    for (const s of expired) {
      await audit("expire", "ok", { sessionId: s.id, agentId: s.agentId, technicianId: s.technicianId, reason: s.closeReason ?? "idle" });
      await endWork(s, "expired after inactivity");
    }
    if (expired.length > 0) await options.onClosed?.(expired, "expired after inactivity");
    return expired.length;
  }

  /** At start: sessions a previous process left active have no live link here. */
  async function reconcileAtStart(): Promise<number> {
    const reason = "server restarted";
    const closed = await store.sessions.closeAllActive(reason);
    for (const s of closed) await audit("close", "ok", { sessionId: s.id, agentId: s.agentId, technicianId: s.technicianId, reason });
    if (closed.length > 0) await options.onClosed?.(closed, reason);
    return closed.length;
  }

  /** Ends an active session for whoever owns it (a partner's EndSession); the record as it is after. */
  async function end(session: SessionRecord, reason: string, event: string): Promise<SessionRecord> {
    return finish(session, "closed", reason, event);
  }

  return { open, get, close, forceClose, endFor, end, list, requireActive, agentDisconnected, expireIdle, reconcileAtStart };
}

export type SessionService = ReturnType<typeof createSessionService>;
