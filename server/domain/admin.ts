// Administration: technicians, their tokens, and agent identities.
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { generateAgentKey, hashAgentKey } from "../auth/agent-keys.ts";
import { maxTokenTtlSeconds, type TokenService } from "../auth/tokens.ts";
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

  async function existingTechnician(technicianId: string) {
    requireUuid(technicianId, "technician id");
    const tech = await store.technicians.get(technicianId);
    if (tech === undefined) throw new GuruError("not_found", `no technician ${technicianId}`, { reason: "TECHNICIAN_NOT_FOUND", metadata: { technicianId } });
    return tech;
  }

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
      if (ttlSeconds !== undefined && ttlSeconds > maxTokenTtlSeconds) {
        throw new GuruError("invalid", `ttlSeconds is at most ${maxTokenTtlSeconds} (30 days); got ${ttlSeconds}`, {
          metadata: { field: "ttlSeconds", maxTtlSeconds: maxTokenTtlSeconds },
        });
      }
      const issued = await tokens.issue(technicianId, ttlSeconds || undefined);
      logger.info({ technicianId, tokenId: issued.tokenId, by: principal.technicianId }, "token issued");
      return issued;
    },

    /** Revokes the token and ends the tunnels opened with it, and whatever runs with it. */
    async revokeToken(principal: Principal, tokenId: string) {
      requireAdmin(principal);
      requireUuid(tokenId, "token id");
      if (!(await tokens.revoke(tokenId))) throw new GuruError("not_found", `no token ${tokenId}`, { reason: "TOKEN_NOT_FOUND", metadata: { tokenId } });
      const closed = await deps.sessions.endFor({ tokenId }, `its token was revoked by ${principal.name}`, principal.technicianId);
      logger.info({ tokenId, closedSessions: closed, by: principal.technicianId }, "token revoked");
    },

    /** Issued tokens with their holders; the token text is never stored, so never listed. */
    async listTokens(principal: Principal, filter: { technicianId?: string; includeInactive?: boolean }) {
      requireAdmin(principal);
      if (filter.technicianId) {
        requireUuid(filter.technicianId, "technician id");
        if ((await store.technicians.get(filter.technicianId)) === undefined)
          throw new GuruError("not_found", `no technician ${filter.technicianId}`, {
            reason: "TECHNICIAN_NOT_FOUND",
            metadata: { technicianId: filter.technicianId },
          });
      }
      return store.tokens.list({ technicianId: filter.technicianId || undefined, includeInactive: filter.includeInactive });
    },

    /** Every live token of the technician, and their tunnels. */
    async revokeTechnicianTokens(principal: Principal, technicianId: string) {
      requireAdmin(principal);
      const tech = await existingTechnician(technicianId);
      const revoked = await tokens.revokeAllFor(tech.id);
      const closedSessions = await deps.sessions.endFor(
        { technicianId: tech.id },
        `the technician's tokens were revoked by ${principal.name}`,
        principal.technicianId,
      );
      logger.info({ technicianId: tech.id, revoked, closedSessions, by: principal.technicianId }, "technician's tokens revoked");
      return { revoked, closedSessions };
    },

    /** Disables the technician: tokens refused at once, tunnels ended, no new tokens. */
    async disableTechnician(principal: Principal, technicianId: string, reason: string) {
      requireAdmin(principal);
      const tech = await existingTechnician(technicianId);
      if (tech.id === principal.technicianId) throw new GuruError("invalid", "an admin cannot disable themselves; ask another admin");
      const disabled = await tokens.disableTechnician(tech.id);
      if (disabled === undefined)
        throw new GuruError("not_found", `no technician ${technicianId}`, { reason: "TECHNICIAN_NOT_FOUND", metadata: { technicianId } });
      // Revoked too, so the tokens stay dead should the technician ever be re-enabled by hand.
      const revoked = await tokens.revokeAllFor(tech.id);
      const why = `technician disabled by ${principal.name}${reason ? `: ${reason}` : ""}`;
      const closedSessions = await deps.sessions.endFor({ technicianId: tech.id }, why, principal.technicianId);
      logger.info({ technicianId: tech.id, revoked, closedSessions, by: principal.technicianId }, "technician disabled");
      return { disabledAt: disabled.disabledAt as Date, revoked, closedSessions };
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
      if (!(await store.agents.revokeKey(agentId)))
        throw new GuruError("not_found", `no agent ${agentId}`, { reason: "AGENT_NOT_FOUND", metadata: { agentId } });
      deps.agents.disconnect(agentId, "the agent's key was revoked");
      await deps.sessions.agentDisconnected(agentId, "the agent's key was revoked");
      logger.info({ agentId, by: principal.technicianId }, "agent key revoked");
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
