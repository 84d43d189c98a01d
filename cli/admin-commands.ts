// `guru admin …`: technicians, tokens, agent enrolment. Admin token needed.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Role } from "../gen/guru/api/v1/admin_pb.js";
import { GuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { connect, resolveAgent, str } from "./connection.ts";
import { integrationKeyCommand } from "./integration-key-commands.ts";

const out = (line: string) => process.stdout.write(`${line}\n`);
const iso = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString() : "");

export async function adminCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, ["admin", "all", "json"]);
  const [action, arg] = positionals;
  const api = connect(flags);
  const need = (what: string) => {
    if (!arg) throw new GuruError("invalid", `usage: guru admin ${action} ${what}`);
    return arg;
  };
  switch (action) {
    case "create-tech": {
      const { technicianId } = await api.admin.createTech({ name: need("NAME [--admin]"), role: flags.admin ? Role.ADMIN : Role.TECH });
      out(technicianId);
      return 0;
    }
    case "issue-token": {
      const ttl = str(flags.ttl);
      const issued = await api.admin.issueToken({ technicianId: need("TECHNICIAN_ID [--ttl SECONDS]"), ttlSeconds: ttl ? Number(ttl) : 0 });
      process.stderr.write(`token ${issued.tokenId}, expires ${issued.expiresAt ? timestampDate(issued.expiresAt).toISOString() : "?"}\n`);
      out(issued.token);
      return 0;
    }
    case "revoke-token":
      await api.admin.revokeToken({ tokenId: need("TOKEN_ID") });
      return 0;
    case "enroll": {
      const { agentId, agentKey } = await api.admin.enrollAgent({ name: need("NAME") });
      process.stderr.write(`agent ${agentId} enrolled. Its key is shown once; start the agent with:\n  GURU_AGENT_KEY=<key> guru agent --server URL\n`);
      out(agentKey);
      return 0;
    }
    case "revoke-agent": {
      const agent = await resolveAgent(api, need("AGENT"));
      await api.admin.revokeAgentKey({ agentId: agent.agentId });
      return 0;
    }
    case "force-close":
      await api.admin.forceCloseTunnel({ sessionId: need("SESSION_ID"), reason: str(flags.reason) ?? "" });
      return 0;
    case "list-tokens": {
      // Ids, holders and dates only: the token text is never stored, so never shown.
      const { tokens } = await api.admin.listTokens({ technicianId: arg ?? "", includeInactive: flags.all === true });
      if (flags.json) {
        out(
          JSON.stringify(
            tokens.map((t) => ({
              tokenId: t.tokenId,
              technicianId: t.technicianId,
              technician: t.technicianName,
              role: t.role === Role.ADMIN ? "admin" : "tech",
              issuedAt: iso(t.issuedAt),
              expiresAt: iso(t.expiresAt),
              revokedAt: iso(t.revokedAt) || null,
              technicianDisabledAt: iso(t.technicianDisabledAt) || null,
            })),
          ),
        );
        return 0;
      }
      for (const t of tokens) {
        const state = t.technicianDisabledAt
          ? "disabled"
          : t.revokedAt
            ? "revoked"
            : t.expiresAt && timestampDate(t.expiresAt) < new Date()
              ? "expired"
              : "live";
        out(`${t.tokenId}  ${t.technicianName} (${t.technicianId})  ${state}  expires ${iso(t.expiresAt)}`);
      }
      return 0;
    }
    case "revoke-tech-tokens": {
      const done = await api.admin.revokeTechnicianTokens({ technicianId: need("TECHNICIAN_ID") });
      out(`revoked ${done.revoked} token(s), closed ${done.closedSessions} tunnel(s)`);
      return 0;
    }
    case "disable-tech": {
      const done = await api.admin.disableTechnician({ technicianId: need("TECHNICIAN_ID [--reason TEXT]"), reason: str(flags.reason) ?? "" });
      out(`disabled at ${iso(done.disabledAt)}; revoked ${done.revoked} token(s), closed ${done.closedSessions} tunnel(s)`);
      return 0;
    }
    case "create-integration-key":
    case "list-integration-keys":
    case "revoke-integration-key":
      return integrationKeyCommand(api, action, arg, flags);
    default:
      throw new GuruError(
        "invalid",
        "usage: guru admin create-tech|issue-token|revoke-token|list-tokens|revoke-tech-tokens|disable-tech|enroll|revoke-agent|force-close|create-integration-key|list-integration-keys|revoke-integration-key …",
      );
  }
}
