// `guru agents` and `guru tunnel`: plain lines for people, --json for scripts.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { SessionStatus } from "../gen/guru/api/v1/sessions_pb.js";
import { GuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { connect, resolveAgent, sayAsking, str } from "./connection.ts";

const out = (line: string) => process.stdout.write(`${line}\n`);

export async function agentsCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, ["json"]);
  const api = connect(flags);
  const { agents } = await api.agents.listAgents({ nameContains: str(flags.name) ?? "" });
  if (flags.json) {
    out(
      JSON.stringify(
        agents.map((a) => ({
          id: a.agentId,
          name: a.name,
          online: a.online,
          os: a.os,
          hostname: a.hostname,
          lastSeenAt: a.lastSeenAt ? timestampDate(a.lastSeenAt).toISOString() : null,
        })),
      ),
    );
    return 0;
  }
  if (agents.length === 0) out("no agents enrolled; an admin enrols one with 'guru admin enroll NAME'");
  for (const a of agents) {
    const seen = a.lastSeenAt ? timestampDate(a.lastSeenAt).toISOString() : "never";
    out(`${a.name.padEnd(20)} ${a.agentId}  ${a.online ? "online " : "offline"}  ${(a.os || "-").padEnd(7)} ${a.hostname || "-"}  last seen ${seen}`);
  }
  return 0;
}

export async function tunnelCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, ["json", "attended", "all"]);
  const [action, target] = positionals;
  const api = connect(flags);
  switch (action) {
    case "open": {
      if (!target) throw new GuruError("invalid", "usage: guru tunnel open AGENT [--attended [--capabilities exec,files]]");
      const agent = await resolveAgent(api, target);
      const attended = flags.attended === true;
      const capabilities = (str(flags.capabilities) ?? "").split(",").filter((c) => c !== "");
      if (capabilities.length > 0 && !attended)
        throw new GuruError("invalid", "--capabilities is what the person at the endpoint approves: use it with --attended");
      if (attended) sayAsking(agent.name, capabilities);
      const { sessionId } = await api.sessions.openTunnel({ agentId: agent.agentId, attended, capabilities });
      out(flags.json ? JSON.stringify({ sessionId }) : sessionId);
      return 0;
    }
    case "close": {
      if (!target) throw new GuruError("invalid", "usage: guru tunnel close SESSION_ID");
      await api.sessions.closeTunnel({ sessionId: target });
      return 0;
    }
    case "list":
    case undefined: {
      const { sessions } = await api.sessions.listSessions({ status: flags.all ? SessionStatus.UNSPECIFIED : SessionStatus.ACTIVE });
      for (const s of sessions)
        out(`${s.sessionId}  agent ${s.agentId}  ${SessionStatus[s.status].toLowerCase()}${s.closeReason ? `  (${s.closeReason})` : ""}`);
      return 0;
    }
    default:
      throw new GuruError("invalid", `unknown tunnel action "${action}"; use open, close or list`);
  }
}
