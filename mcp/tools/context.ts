// What every tool gets, and the two steps most of them share: find an agent
// that can take the call, and run on its tunnel.
import { z } from "zod";
import type { Logger } from "../../lib/logging.ts";
import type { AgentInfo, GuruApi } from "../api.ts";
import { fromApiError, guruError, isStaleSession } from "../errors.ts";
import type { JobStore } from "../jobs.ts";
import type { McpOptions } from "../options.ts";
import type { TunnelManager } from "../tunnels.ts";

export interface ToolDeps {
  api: GuruApi;
  tunnels: TunnelManager;
  jobs: JobStore;
  options: McpOptions;
  logger: Logger;
}

export const agentParam = z.string().min(1).describe("the agent's name or id, as list_agents shows them");

function since(date: Date | null): string {
  if (date === null) return " and has never connected";
  return ` since ${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** The agent, if it can take a call now; otherwise an error naming the next step. */
export async function onlineAgent(deps: Pick<ToolDeps, "api" | "tunnels">, nameOrId: string): Promise<AgentInfo> {
  // With a tunnel held, the agent was online a moment ago; if it has gone
  // since, the call on the tunnel fails and says so.
  const recent = deps.api.recentAgent(nameOrId);
  if (recent !== undefined && deps.tunnels.holds(recent.id)) return recent;
  const agent = await deps.api.resolveAgent(nameOrId);
  if (agent.revoked)
    throw guruError(
      "denied",
      `agent ${agent.name} has a revoked key`,
      "list_agents shows the agents that can be used; an admin must enrol this endpoint again",
    );
  if (!agent.online)
    throw guruError(
      "agent_offline",
      `agent ${agent.name} is offline${since(agent.lastSeenAt)}`,
      "list_agents shows which agents are online; try this one again when it is back",
    );
  return agent;
}

/**
 * Runs fn with a session id on the agent's tunnel. A session the server no
 * longer accepts (expired, force-closed) is replaced once by a new tunnel.
 */
export async function onTunnel<T>(deps: Pick<ToolDeps, "tunnels">, agent: AgentInfo, fn: (sessionId: string) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const lease = await deps.tunnels.acquire(agent);
    try {
      return await fn(lease.sessionId);
    } catch (err) {
      const e = fromApiError(err);
      if (attempt === 0 && isStaleSession(e)) {
        lease.invalidate();
        continue;
      }
      throw e;
    } finally {
      lease.release();
    }
  }
}
