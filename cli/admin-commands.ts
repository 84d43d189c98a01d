// `guru admin …`: technicians, tokens, agent enrolment. Admin token needed.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Role } from "../gen/guru/api/v1/admin_pb.js";
import { GuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { connect, resolveAgent, str } from "./connection.ts";
import { integrationKeyCommand } from "./integration-key-commands.ts";

const out = (line: string) => process.stdout.write(`${line}\n`);

export async function adminCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, ["admin", "json"]);
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
    case "create-integration-key":
    case "list-integration-keys":
    case "revoke-integration-key":
      return integrationKeyCommand(api, action, arg, flags);
    default:
      throw new GuruError("invalid", "usage: guru admin create-tech|issue-token|revoke-token|enroll|revoke-agent|force-close|create-integration-key|list-integration-keys|revoke-integration-key …");
  }
}
