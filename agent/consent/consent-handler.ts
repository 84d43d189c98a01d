// The agent's side of attended sessions. The local policy decides how a
// consent request is answered (ask the person, approve, deny) and the server
// cannot change that. An approval holds for the one session it names and the
// capabilities it listed; a tunnel for a session nobody approved is refused
// when the policy wants a person's approval for every session.
import type { Logger } from "../../lib/logging.ts";
import type { LocalPolicy } from "../policy/local-policy.ts";
import type { ConsentAnswer, ConsentPrompter, ConsentQuestion } from "./prompter.ts";

export interface ConsentRequestIn extends ConsentQuestion {
  expiresAt: Date;
}

export type TunnelConsent = { ok: true; capabilities?: string[] } | { ok: false; reason: string };

export function createConsentHandler(deps: { policy: LocalPolicy["consent"]; prompter: ConsentPrompter; logger: Logger; now?: () => number }) {
  const { policy, prompter, logger } = deps;
  const now = deps.now ?? Date.now;
  const grants = new Map<string, string[]>();
  const asking = new Map<string, AbortController>();

  async function answer(request: ConsentRequestIn): Promise<ConsentAnswer> {
    if (policy.mode === "auto-approve") return { approved: true, responder: "local policy (auto-approve)", reason: "", timedOut: false };
    if (policy.mode === "deny")
      return { approved: false, responder: "local policy", reason: "the agent's local policy denies attended sessions (consent.mode deny)", timedOut: false };
    const waitMs = request.expiresAt.getTime() - now();
    if (waitMs <= 0) return { approved: false, responder: "", reason: "the request expired before it arrived", timedOut: true };
    // A second request for the same session replaces the first prompt.
    asking.get(request.sessionId)?.abort();
    const controller = new AbortController();
    asking.set(request.sessionId, controller);
    const timer = setTimeout(() => controller.abort(), waitMs);
    try {
      const result = await prompter.ask(request, controller.signal);
      return result.timedOut ? { ...result, reason: `no answer within ${Math.round(waitMs / 1000)} s` } : result;
    } finally {
      clearTimeout(timer);
      if (asking.get(request.sessionId) === controller) asking.delete(request.sessionId);
    }
  }

  return {
    async handle(request: ConsentRequestIn): Promise<ConsentAnswer> {
      const result = await answer(request);
      if (result.approved) grants.set(request.sessionId, [...request.capabilities]);
      logger.info(
        {
          sessionId: request.sessionId,
          technician: request.technician,
          partner: request.partner,
          approved: result.approved,
          responder: result.responder,
          reason: result.reason,
        },
        "consent answered",
      );
      return result;
    },
    /** May a tunnel open for this session, and with which capabilities. */
    tunnel(sessionId: string): TunnelConsent {
      const granted = grants.get(sessionId);
      if (granted !== undefined) return { ok: true, capabilities: granted };
      if (policy.requiredForEverySession) {
        return { ok: false, reason: "the local policy (consent.mode ask) needs the approval of the person at this computer for every session" };
      }
      return { ok: true };
    },
    /** The session ended: withdraw its prompt and its approval. */
    forget(sessionId: string): void {
      asking.get(sessionId)?.abort();
      grants.delete(sessionId);
    },
    /** The link went: nothing asked or approved over it holds. */
    clear(): void {
      for (const c of asking.values()) c.abort();
      asking.clear();
      grants.clear();
    },
  };
}

export type ConsentHandler = ReturnType<typeof createConsentHandler>;
