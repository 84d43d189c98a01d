// Administration: technicians, their tokens, and agent identities.
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { generateAgentKey, hashAgentKey } from "../auth/agent-keys.ts";
import type { TokenService } from "../auth/tokens.ts";
import type { Store } from "../store/index.ts";
import { requireUuid } from "./ids.ts";
import { requireAdmin, type Principal, type Role } from "./principal.ts";
import type { RemoteAgents } from "./remote-agents.ts";
import type { SessionService } from "./sessions.ts";

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

function requireName(name: string, what: string): string {
  if (!namePattern.test(name)) {
    throw new GuruError("invalid", `${what} name "${name}" must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit`);
  }
  return name;
}

export function createAdminService(deps: { store: Store; tokens: TokenService; agents: RemoteAgents; sessions: SessionService; logger: Logger }) {
  const { store, tokens, logger } = deps;

  return {
    async createTech(principal: Principal, name: string, role: Role) {
      requireAdmin(principal);
      const tech = await store.technicians.create({ name: requireName(name, "technician"), role });
      logger.info({ technicianId: tech.id, role, by: principal.technicianId }, "technician created");
      return tech;
    },

    async issueToken(principal: Principal, technicianId: string, ttlSeconds?: number) {
      requireAdmin(principal);
      requireUuid(technicianId, "technician id");
      return tokens.issue(technicianId, ttlSeconds || undefined);
    },

    async revokeToken(principal: Principal, tokenId: string) {
      requireAdmin(principal);
      requireUuid(tokenId, "token id");
      if (!(await tokens.revoke(tokenId))) throw new GuruError("not_found", `no token ${tokenId}`, { reason: "TOKEN_NOT_FOUND", metadata: { tokenId } });
    },

    /** Creates the agent identity and returns its key; only the hash is kept. */
    async enrollAgent(principal: Principal, name: string) {
      requireAdmin(principal);
      const agentKey = generateAgentKey();
      const agent = await store.agents.enroll({ name: requireName(name, "agent"), keyHash: hashAgentKey(agentKey) });
      logger.info({ agentId: agent.id, agent: agent.name, by: principal.technicianId }, "agent enrolled");
      return { agentId: agent.id, agentKey };
    },

    async revokeAgentKey(principal: Principal, agentId: string) {
      requireAdmin(principal);
      requireUuid(agentId, "agent id");
      if (!(await store.agents.revokeKey(agentId))) throw new GuruError("not_found", `no agent ${agentId}`, { reason: "AGENT_NOT_FOUND", metadata: { agentId } });
      deps.agents.disconnect(agentId, "the agent's key was revoked");
      await deps.sessions.agentDisconnected(agentId, "the agent's key was revoked");
      logger.info({ agentId, by: principal.technicianId }, "agent key revoked");
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
