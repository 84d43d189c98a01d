// The database's part in starting a command, in one round trip (the SQL
// function guru_begin_command, migrations/0012): session check and touch,
// rate-limit hit, and the command's audit row.
import type { Db } from "./db.ts";

export interface BeginCommandInput {
  sessionId: string;
  technicianId: string;
  rateLimit: { limit: number; windowMs: number };
  shell: string | null;
  workingDir: string | null;
  command: string;
  /** The command's variables as the audit keeps them (secret values already redacted); null for none. */
  env: Record<string, string> | null;
  /** The session's last_activity moves only when it is older than this (idle expiry needs no finer clock). */
  touchAfterMs: number;
}

export type BeganCommand =
  /** The session is not the technician's active one (or does not exist). */
  | { status: "no_session" }
  | { status: "rate_limited"; agentId: string; retryAfterMs: number }
  /** Allowed: the audit row `auditId` (outcome "allowed") is written. */
  | { status: "started"; agentId: string; auditId: number };

export interface CommandsRepository {
  begin(input: BeginCommandInput): Promise<BeganCommand>;
}

export function createCommandsRepository(db: Db): CommandsRepository {
  return {
    async begin(c) {
      const { rows } = await db.query<{ agent_id: string; allowed: boolean; retry_after_ms: number; audit_id: string | number | null }>(
        "SELECT agent_id, allowed, retry_after_ms, audit_id FROM guru_begin_command($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
          c.sessionId,
          c.technicianId,
          c.rateLimit.limit,
          c.rateLimit.windowMs,
          c.shell,
          c.workingDir,
          c.command,
          c.env === null ? null : JSON.stringify(c.env),
          c.touchAfterMs,
        ],
      );
      const row = rows[0];
      if (row === undefined) return { status: "no_session" };
      if (!row.allowed) return { status: "rate_limited", agentId: row.agent_id, retryAfterMs: Number(row.retry_after_ms) };
      return { status: "started", agentId: row.agent_id, auditId: Number(row.audit_id) };
    },
  };
}
