// The caller of guru.integration.v1 once its integration key checked out,
// and how a partner names agents and technicians.
import { GuruError } from "../../lib/errors.ts";
import type { Store } from "../store/index.ts";
import type { PartnerAgentRecord } from "../store/partner-agents.ts";
import { isUuid } from "./ids.ts";

export interface PartnerKey {
  keyId: string;
  name: string;
  allowedOrigins: string[];
}

/** An agent by the server's id or the partner's device id. */
export type AgentRef = { agentId: string } | { externalId: string } | undefined;

/** Session capabilities a partner may ask for today. */
const sessionCapabilities = ["exec", "files"] as const;

const technicianPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/;

/** The key's own agent, or not_found: another partner's agents do not exist for this key. */
export async function resolvePartnerAgent(store: Store, key: PartnerKey, ref: AgentRef): Promise<PartnerAgentRecord> {
  if (ref === undefined) throw new GuruError("invalid", "agent is required: give agentId or externalId", { reason: "AGENT_REQUIRED" });
  let agent: PartnerAgentRecord | undefined;
  if ("agentId" in ref) {
    if (!isUuid(ref.agentId)) throw new GuruError("invalid", `agent id "${ref.agentId}" is not a UUID`);
    agent = await store.partnerAgents.getOwned(key.keyId, ref.agentId);
  } else {
    agent = ref.externalId === "" ? undefined : await store.partnerAgents.findByExternalId(key.keyId, ref.externalId);
  }
  const name = "agentId" in ref ? ref.agentId : `with external id ${ref.externalId}`;
  if (agent === undefined) throw new GuruError("not_found", `no agent ${name} provisioned by this integration key`, { reason: "AGENT_NOT_FOUND" });
  return agent;
}

/** "<technician>@<key name>": a partner's people never collide with another's or with the server's own technicians. */
export function partnerTechnicianName(key: PartnerKey, technician: string): string {
  const name = technician === "" ? "partner" : technician;
  if (!technicianPattern.test(name)) {
    throw new GuruError("invalid", `technician "${name}" must be 1-48 letters, digits, '.', '_' or '-', starting with a letter or digit`, {
      reason: "INVALID_TECHNICIAN",
    });
  }
  return `${name}@${key.name}`;
}

export function requireCapabilities(asked: string[]): string[] {
  if (asked.length === 0) return [...sessionCapabilities];
  const unknown = asked.filter((c) => !(sessionCapabilities as readonly string[]).includes(c));
  if (unknown.length > 0) {
    throw new GuruError("invalid", `unknown capabilities ${unknown.join(", ")}; known: ${sessionCapabilities.join(", ")}`, { reason: "UNKNOWN_CAPABILITY" });
  }
  return [...new Set(asked)].sort();
}
