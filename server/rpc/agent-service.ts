import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentService } from "../../gen/guru/api/v1/agents_pb.js";
import type { RemoteAgents } from "../domain/remote-agents.ts";
import type { Store } from "../store/index.ts";
import { principalOf } from "./context.ts";
import { toApiAgent } from "./convert.ts";

export function agentServiceImpl(deps: { store: Store; agents: RemoteAgents }): Partial<ServiceImpl<typeof AgentService>> {
  return {
    async listAgents(req, ctx) {
      principalOf(ctx);
      const agents = await deps.store.agents.list({ nameContains: req.nameContains || undefined, agentId: req.agentId || undefined });
      return { agents: agents.map((a) => toApiAgent(a, deps.agents.lastSeen(a.id))) };
    },
  };
}
