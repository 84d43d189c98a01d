// RemoteAgents (the domain's port) over the AgentRouter: converts domain
// requests to frames and frames back to domain results.
import { create } from "@bufbuild/protobuf";
import { TunnelCloseSchema, TunnelOpenSchema } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../../lib/errors.ts";
import { closeCodes } from "../../lib/wire/close-codes.ts";
import type { RemoteAgents } from "../domain/remote-agents.ts";
import type { AgentRouter } from "./agent-router.ts";

export function createRemoteAgents(router: AgentRouter): RemoteAgents {
  return {
    isOnline: (agentId) => router.isOnline(agentId),
    lastSeen: (agentId) => router.lastSeen(agentId),

    async openTunnel(agentId, request, timeoutMs) {
      const reply = await router.request(
        agentId,
        { case: "tunnelOpen", value: create(TunnelOpenSchema, request) },
        (frame) => frame.kind.case === "tunnelReady" && frame.kind.value.sessionId === request.sessionId,
        timeoutMs,
      );
      if (reply.kind.case === "tunnelReady" && reply.kind.value.refusedReason !== "") {
        throw new GuruError("conflict", `the agent refused the tunnel: ${reply.kind.value.refusedReason}`, { reason: "TUNNEL_REFUSED", metadata: { agentId } });
      }
    },

    async closeTunnel(agentId, sessionId, reason) {
      router.notify(agentId, { case: "tunnelClose", value: create(TunnelCloseSchema, { sessionId, reason }) });
    },

    disconnect(agentId, reason) {
      router.disconnect(agentId, closeCodes.revoked, reason);
    },
  };
}
