// Agent keys a partner provisions for its own devices: one agent per
// external id and key, a second call rotates the key (the old link drops).
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { generateAgentKey, hashAgentKey } from "../auth/agent-keys.ts";
import type { Store } from "../store/index.ts";
import { resolvePartnerAgent, type AgentRef, type PartnerKey } from "./partner-key.ts";
import type { PartnerSessions } from "./partner-sessions.ts";
import type { RemoteAgents } from "./remote-agents.ts";
import type { SessionService } from "./sessions.ts";

const externalIdPattern = /^[\x21-\x7e]{1,128}$/;
const agentNamePattern = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function createPartnerAgents(deps: { store: Store; agents: RemoteAgents; sessions: SessionService; partnerSessions: PartnerSessions; logger: Logger }) {
  const { store, logger } = deps;

  /** The live link and active tunnel go at once; pending sessions wait for the agent with its new key. */
  async function dropLink(agentId: string, reason: string): Promise<void> {
    deps.agents.disconnect(agentId, reason);
    await deps.sessions.agentDisconnected(agentId, reason);
  }

  return {
    async provision(key: PartnerKey, input: { externalId: string; name: string }) {
      if (!externalIdPattern.test(input.externalId)) {
        throw new GuruError("invalid", "externalId must be 1-128 printable ASCII characters without spaces", { reason: "INVALID_EXTERNAL_ID" });
      }
      const agentKey = generateAgentKey();
      const existing = await store.partnerAgents.findByExternalId(key.keyId, input.externalId);
      if (existing !== undefined) {
        await store.agents.rotateKey(existing.id, hashAgentKey(agentKey));
        await dropLink(existing.id, "the agent's key was rotated");
        logger.info({ agentId: existing.id, partner: key.name }, "partner agent key rotated");
        return { agentId: existing.id, agentKey, rotated: true };
      }
      const name = input.name === "" ? `${input.externalId}-${key.name}` : input.name;
      if (!agentNamePattern.test(name)) {
        throw new GuruError(
          "invalid",
          `agent name "${name}" must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit; pass a name`,
          {
            reason: "INVALID_AGENT_NAME",
          },
        );
      }
      const agent = await store.partnerAgents.provision({ keyId: key.keyId, externalId: input.externalId, name, keyHash: hashAgentKey(agentKey) });
      logger.info({ agentId: agent.id, agent: name, partner: key.name }, "partner agent provisioned");
      return { agentId: agent.id, agentKey, rotated: false };
    },

    async revoke(key: PartnerKey, ref: AgentRef) {
      const agent = await resolvePartnerAgent(store, key, ref);
      await store.agents.revokeKey(agent.id);
      const reason = "the agent's key was revoked";
      await dropLink(agent.id, reason);
      await deps.partnerSessions.agentRevoked(agent.id, reason);
      logger.info({ agentId: agent.id, partner: key.name }, "partner agent key revoked");
      return agent;
    },
  };
}

export type PartnerAgents = ReturnType<typeof createPartnerAgents>;
