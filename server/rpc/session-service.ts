import type { ServiceImpl } from "@connectrpc/connect";
import type { SessionService as SessionApi } from "../../gen/guru/api/v1/sessions_pb.js";
import type { SessionService } from "../domain/sessions.ts";
import { principalOf } from "./context.ts";
import { sessionStatusFromApi, toApiSession } from "./convert.ts";

export function sessionServiceImpl(sessions: SessionService): ServiceImpl<typeof SessionApi> {
  return {
    async openTunnel(req, ctx) {
      const session = await sessions.open(principalOf(ctx), req.agentId, {
        attended: req.attended,
        capabilities: req.capabilities,
        signal: ctx.signal,
      });
      return { sessionId: session.id, session: toApiSession(session) };
    },
    async closeTunnel(req, ctx) {
      return { session: toApiSession(await sessions.close(principalOf(ctx), req.sessionId)) };
    },
    async getTunnelStatus(req, ctx) {
      return { session: toApiSession(await sessions.get(principalOf(ctx), req.sessionId)) };
    },
    async listSessions(req, ctx) {
      const list = await sessions.list(principalOf(ctx), {
        agentId: req.agentId,
        status: sessionStatusFromApi(req.status),
        allTechnicians: req.allTechnicians,
      });
      return { sessions: list.map(toApiSession) };
    },
  };
}
