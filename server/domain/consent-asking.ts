// Asking the person at an endpoint, for partner sessions and attended
// technician tunnels alike: the question with its deadline, the answer (no
// answer in time is a denial), the receipt that is kept, and the refusals.
import { GuruError, toGuruError } from "../../lib/errors.ts";
import type { ConsentReceipt } from "../store/partner-sessions.ts";
import type { ConsentAnswer, ConsentQuestion, RemoteConsent } from "./remote-consent.ts";

// The agent's own deadline is the question's expiresAt; the link waits this
// much longer for the answer to arrive.
const consentGraceMs = 2_000;

export type ConsentOutcome = "approved" | "denied" | "timed_out";

export interface AskedConsent {
  answer: ConsentAnswer;
  receipt: ConsentReceipt;
  outcome: ConsentOutcome;
}

/** Asks and waits; throws agent_offline when the link goes before an answer (the caller decides what that means). */
export async function askForConsent(
  consent: RemoteConsent,
  agentId: string,
  question: Omit<ConsentQuestion, "expiresAt">,
  timeoutMs: number,
): Promise<AskedConsent> {
  const askedAt = new Date();
  let answer: ConsentAnswer;
  try {
    answer = await consent.ask(agentId, { ...question, expiresAt: new Date(askedAt.getTime() + timeoutMs) }, timeoutMs + consentGraceMs);
  } catch (err) {
    const failure = toGuruError(err);
    if (failure.kind !== "timeout") throw failure;
    answer = { approved: false, responder: "", reason: `no answer within ${Math.round(timeoutMs / 1000)} s`, timedOut: true };
  }
  const approved = answer.approved && !answer.timedOut;
  return {
    answer,
    outcome: approved ? "approved" : answer.timedOut ? "timed_out" : "denied",
    receipt: {
      technician: question.technician,
      partner: question.partner,
      capabilities: question.capabilities,
      approved,
      responder: answer.responder,
      reason: answer.reason,
      askedAt: askedAt.toISOString(),
      answeredAt: new Date().toISOString(),
    },
  };
}

/** Why a session or tunnel the person did not approve was refused. */
export function consentRefusal(asked: AskedConsent, sessionId: string): GuruError {
  const why = consentRefusalReason(asked);
  return new GuruError("denied", `the person at the endpoint did not approve the session (${why})`, {
    reason: asked.outcome === "timed_out" ? "CONSENT_TIMED_OUT" : "CONSENT_DENIED",
    details: { sessionId, responder: asked.answer.responder },
  });
}

/** The close reason of a session the person did not approve. */
export function consentRefusalReason(asked: AskedConsent): string {
  const { reason } = asked.answer;
  return asked.outcome === "timed_out" ? `consent timed out: ${reason}` : `consent denied${reason ? `: ${reason}` : ""}`;
}

export function policyRequiresConsent(agentName: string, hint: string): GuruError {
  return new GuruError(
    "denied",
    `agent ${agentName}'s local policy (consent.mode "ask") requires the approval of the person at the endpoint for every session; ${hint}`,
    { reason: "CONSENT_REQUIRED_BY_POLICY", details: { policy: "consent.mode=ask" } },
  );
}

export function cannotAsk(agentName: string): GuruError {
  return new GuruError("failed_precondition", `agent ${agentName} cannot ask for consent (it is too old to); upgrade it for attended sessions`, {
    reason: "CONSENT_NOT_SUPPORTED",
  });
}
