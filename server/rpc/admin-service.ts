import type { ServiceImpl } from "@connectrpc/connect";
import { Role, type AdminService as AdminApi } from "../../gen/guru/api/v1/admin_pb.js";
import { GuruError } from "../../lib/errors.ts";
import type { AdminService } from "../domain/admin.ts";
import type { IntegrationKeyAdmin } from "../domain/integration-keys.ts";
import type { SessionService } from "../domain/sessions.ts";
import { principalOf } from "./context.ts";
import { timestamp } from "./convert.ts";
import { integrationKeyMethods } from "./integration-key-methods.ts";

function roleFromApi(role: Role): "admin" | "tech" {
  if (role === Role.ADMIN) return "admin";
  if (role === Role.TECH || role === Role.UNSPECIFIED) return "tech";
  throw new GuruError("invalid", `unknown role ${role}`, { metadata: { field: "role" } });
}

export function adminServiceImpl(admin: AdminService, sessions: SessionService, integrationKeys: IntegrationKeyAdmin): ServiceImpl<typeof AdminApi> {
  return {
    async createTech(req, ctx) {
      const tech = await admin.createTech(principalOf(ctx), req.name, roleFromApi(req.role));
      return { technicianId: tech.id };
    },
    async issueToken(req, ctx) {
      const issued = await admin.issueToken(principalOf(ctx), req.technicianId, req.ttlSeconds);
      return { token: issued.token, tokenId: issued.tokenId, expiresAt: timestamp(issued.expiresAt) };
    },
    async revokeToken(req, ctx) {
      await admin.revokeToken(principalOf(ctx), req.tokenId);
      return {};
    },
    async enrollAgent(req, ctx) {
      return admin.enrollAgent(principalOf(ctx), req.name);
    },
    async revokeAgentKey(req, ctx) {
      await admin.revokeAgentKey(principalOf(ctx), req.agentId);
      return {};
    },
    async forceCloseTunnel(req, ctx) {
      await sessions.forceClose(principalOf(ctx), req.sessionId, req.reason);
      return {};
    },
    async listTokens(req, ctx) {
      const tokens = await admin.listTokens(principalOf(ctx), { technicianId: req.technicianId, includeInactive: req.includeInactive });
      return {
        tokens: tokens.map((t) => ({
          tokenId: t.jti,
          technicianId: t.technicianId,
          technicianName: t.technicianName,
          role: t.role === "admin" ? Role.ADMIN : Role.TECH,
          issuedAt: timestamp(t.issuedAt),
          expiresAt: timestamp(t.expiresAt),
          revokedAt: t.revokedAt ? timestamp(t.revokedAt) : undefined,
          technicianDisabledAt: t.technicianDisabledAt ? timestamp(t.technicianDisabledAt) : undefined,
        })),
      };
    },
    async revokeTechnicianTokens(req, ctx) {
      return admin.revokeTechnicianTokens(principalOf(ctx), req.technicianId);
    },
    async disableTechnician(req, ctx) {
      const done = await admin.disableTechnician(principalOf(ctx), req.technicianId, req.reason);
      return { disabledAt: timestamp(done.disabledAt), revoked: done.revoked, closedSessions: done.closedSessions };
    },
    ...integrationKeyMethods(integrationKeys),
  };
}
