// Where the technician commands find the server and their token: flags
// first, then GURU_URL / GURU_TOKEN (or GURU_TOKEN_FILE).
import { readFileSync } from "node:fs";
import { GuruError } from "../lib/errors.ts";
import { createApiClients, type ApiClients } from "../lib/api-client.ts";
import { SessionStatus } from "../gen/guru/api/v1/sessions_pb.js";

export function connect(flags: Record<string, string | string[] | boolean>): ApiClients {
  return createApiClients(credentials(flags));
}

/** The server's URL and the technician's token, for clients other than Connect (the terminal socket). */
export function credentials(flags: Record<string, string | string[] | boolean>): { url: string; token: string } {
  const url = str(flags.url) ?? process.env.GURU_URL;
  if (!url) throw new GuruError("invalid", "no server: pass --url or set GURU_URL (the quick start writes it to .guru/env)");
  const tokenFile = str(flags["token-file"]) ?? process.env.GURU_TOKEN_FILE;
  const token = tokenFile ? readFileSync(tokenFile, "utf8").trim() : (str(flags.token) ?? process.env.GURU_TOKEN);
  if (!token) throw new GuruError("invalid", "no token: set GURU_TOKEN (or --token-file FILE)");
  return { url, token };
}

export function str(value: string | string[] | boolean | undefined): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.at(-1);
  return undefined;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An agent by id or exact name (then by a unique partial name). The server
 * filters, so a call costs the same with ten agents or ten thousand; the id is
 * matched here too, as a server older than the agent_id filter answers all.
 */
export async function resolveAgent(api: ApiClients, nameOrId: string) {
  const byId = uuidPattern.test(nameOrId) ? (await api.agents.listAgents({ agentId: nameOrId })).agents.find((a) => a.agentId === nameOrId) : undefined;
  const named = byId === undefined ? (await api.agents.listAgents({ nameContains: nameOrId })).agents : [];
  const partial = named.filter((a) => a.name.toLowerCase().includes(nameOrId.toLowerCase()));
  const match = byId ?? named.find((a) => a.name === nameOrId) ?? (partial.length === 1 ? partial[0] : undefined);
  if (match === undefined) {
    throw new GuruError("not_found", uuidPattern.test(nameOrId) ? `no agent ${nameOrId}` : `no agent named "${nameOrId}"`, {
      reason: "AGENT_NOT_FOUND",
      metadata: { agent: nameOrId },
    });
  }
  return match;
}

/** Tells the technician whose answer an attended open waits for (empty capabilities: the server asks for all). */
export function sayAsking(agentName: string, capabilities: string[]): void {
  process.stderr.write(`asking the person at ${agentName} to approve ${capabilities.length > 0 ? capabilities.join(", ") : "exec, files"}…\n`);
}

/**
 * This technician's active tunnel to the agent, or a new one; `attended` asks
 * the person at the endpoint to approve `capabilities` before a new one opens
 * (an active tunnel is used as it is: it was approved, or needed no approval).
 */
export async function tunnelTo(
  api: ApiClients,
  agentId: string,
  attended?: { agentName: string; capabilities: string[] },
): Promise<{ sessionId: string; opened: boolean }> {
  const { sessions } = await api.sessions.listSessions({ agentId, status: SessionStatus.ACTIVE });
  if (sessions.length > 0) return { sessionId: sessions[0].sessionId, opened: false };
  if (attended !== undefined) sayAsking(attended.agentName, attended.capabilities);
  const { sessionId } = await api.sessions.openTunnel({ agentId, attended: attended !== undefined, capabilities: attended?.capabilities ?? [] });
  return { sessionId, opened: true };
}
