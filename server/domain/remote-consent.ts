// The domain's port for asking the person at an endpoint: server/link
// implements it over the agent link (ConsentRequest / ConsentResponse on the
// control channel).

export interface ConsentQuestion {
  sessionId: string;
  technician: string;
  partner: string;
  capabilities: string[];
  expiresAt: Date;
}

export interface ConsentAnswer {
  approved: boolean;
  responder: string;
  reason: string;
  /** Nobody answered before expiresAt. */
  timedOut: boolean;
}

/** What the agent's local policy said about consent in its hello. */
export interface AgentConsentPolicy {
  mode: "ask" | "auto-approve" | "deny" | null;
  requiresConsent: boolean;
}

export interface RemoteConsent {
  /** The agent's answer; throws agent_offline when the link goes, timeout when no answer came within timeoutMs. */
  ask(agentId: string, question: ConsentQuestion, timeoutMs: number): Promise<ConsentAnswer>;
}
