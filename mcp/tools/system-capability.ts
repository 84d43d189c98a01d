// The step the services and registry tools share: run on the agent's tunnel,
// and when the agent cannot do it (its policy switches it off, its OS lacks
// it), say so and name the agents that can. Capabilities are per agent, so
// these tools are always offered and this is where "not here" is explained.
import type { GuruError } from "../../lib/errors.ts";
import type { AgentInfo } from "../api.ts";
import { fromApiError, guruError } from "../errors.ts";
import { onlineAgent, onTunnel, type ToolDeps } from "./context.ts";

export type SystemCapability = "services" | "registry";

/** An agent's answer that the capability itself is missing, not that one call was refused. */
function missingCapability(err: GuruError, capability: SystemCapability): boolean {
  if (err.kind === "failed_precondition") return /not available on this agent/.test(err.message);
  if (err.kind === "denied") return err.message.includes(`capabilities.${capability}`);
  return false;
}

export async function withSystemAgent<T>(
  deps: ToolDeps,
  nameOrId: string,
  capability: SystemCapability,
  fn: (sessionId: string, agent: AgentInfo) => Promise<T>,
): Promise<T> {
  const agent = await onlineAgent(deps, nameOrId);
  try {
    return await onTunnel(deps, agent, (sessionId) => fn(sessionId, agent));
  } catch (err) {
    const e = fromApiError(err);
    if (!missingCapability(e, capability)) throw e;
    const others = (await deps.api.listAgents().catch(() => [])).filter((a) => a.id !== agent.id && a.capabilities.includes(capability));
    const online = others.filter((a) => a.online).map((a) => a.name);
    const offline = others.filter((a) => !a.online).map((a) => `${a.name} (offline)`);
    const have = [...online, ...offline];
    const which = have.length > 0 ? `agents with the ${capability} capability: ${have.join(", ")}` : `no agent has the ${capability} capability`;
    const next =
      e.kind === "denied"
        ? `the endpoint's owner switched ${capability} off in the agent's local policy; use one of the agents that have it, or ask the technician`
        : `this agent's system cannot do it; use an agent that has it (list_agents shows each agent's capabilities)`;
    throw guruError(e.kind, `agent ${agent.name} lacks the ${capability} capability: ${e.message}; ${which}`, next, e);
  }
}

/** A page of lines within the output cap, and how many were left out. */
export function capLines(lines: string[], maxBytes: number): { text: string; omitted: number } {
  const kept: string[] = [];
  let bytes = 0;
  for (const line of lines) {
    if (bytes + line.length + 1 > maxBytes) break;
    kept.push(line);
    bytes += line.length + 1;
  }
  return { text: kept.join("\n"), omitted: lines.length - kept.length };
}
