// The audit log: every tunnel event, command and file operation, allowed or
// refused. Rows are append-only until the retention sweep removes them.
import type { Db } from "./db.ts";
import { validIds } from "./sessions.ts";

export type AuditOutcome = "allowed" | "refused" | "failed";

export interface TunnelAuditInput {
  /** open, close, expire, refuse, force_close, ... */
  event: string;
  sessionId?: string | null;
  agentId?: string | null;
  technicianId?: string | null;
  outcome?: string | null;
  reason?: string | null;
  detail?: Record<string, unknown> | null;
}
export interface TunnelAuditRecord extends Required<TunnelAuditInput> {
  id: number;
  at: Date;
}

export interface CommandAuditInput {
  technicianId?: string | null;
  agentId?: string | null;
  sessionId?: string | null;
  channelId?: number | null;
  shell?: string | null;
  workingDir?: string | null;
  command: string;
  /** The variables the command was given, secret values redacted by the caller; null for none. */
  env?: Record<string, string> | null;
  outcome: AuditOutcome;
  refusalReason?: string | null;
  exitCode?: number | null;
  exitReason?: string | null;
  signal?: string | null;
  durationMs?: number | null;
  stdoutBytes?: number | null;
  stderrBytes?: number | null;
  truncated?: boolean;
}
export interface CommandAuditRecord extends Required<CommandAuditInput> {
  id: number;
  at: Date;
}
/** What is known once a command ends, for a row written when it started. */
export type CommandCompletion = Pick<
  CommandAuditInput,
  "outcome" | "exitCode" | "exitReason" | "signal" | "durationMs" | "stdoutBytes" | "stderrBytes" | "truncated" | "refusalReason" | "channelId"
>;

export interface FileAuditInput {
  technicianId?: string | null;
  agentId?: string | null;
  sessionId?: string | null;
  /** stat, list, read, upload, ... */
  operation: string;
  path?: string | null;
  /** "upload" (to the agent) or "download" (from it); null for stat and list. */
  direction?: string | null;
  bytes?: number | null;
  sha256?: string | null;
  outcome: AuditOutcome;
  error?: string | null;
  durationMs?: number | null;
}
export interface FileAuditRecord extends Required<FileAuditInput> {
  id: number;
  at: Date;
}

export interface AuditFilter {
  sessionId?: string;
  agentId?: string;
  technicianId?: string;
  /** Newest first; default 1000. */
  limit?: number;
}

export interface SweepResult {
  tunnel: number;
  commands: number;
  files: number;
}

export interface AuditRepository {
  tunnel(event: TunnelAuditInput): Promise<TunnelAuditRecord>;
  command(row: CommandAuditInput): Promise<CommandAuditRecord>;
  /** Fills in the result of a command whose row was written when it started; false when there is no such row. */
  completeCommand(id: number, result: CommandCompletion): Promise<boolean>;
  file(row: FileAuditInput): Promise<FileAuditRecord>;
  listTunnel(filter?: AuditFilter): Promise<TunnelAuditRecord[]>;
  listCommands(filter?: AuditFilter): Promise<CommandAuditRecord[]>;
  listFiles(filter?: AuditFilter): Promise<FileAuditRecord[]>;
  /** Deletes rows older than olderThanMs; returns the count removed per table. */
  sweep(olderThanMs: number): Promise<SweepResult>;
  /** Commands refused or failed within the last sinceMs milliseconds, for alerting. */
  countFailedCommandsSince(input: { technicianId?: string; agentId?: string; sinceMs: number }): Promise<number>;
}

const tunnelColumns = `id, at, event, session_id AS "sessionId", agent_id AS "agentId", technician_id AS "technicianId",
  outcome, reason, detail`;
const commandColumns = `id, at, technician_id AS "technicianId", agent_id AS "agentId", session_id AS "sessionId",
  channel_id AS "channelId", shell, working_dir AS "workingDir", command, env, outcome, refusal_reason AS "refusalReason",
  exit_code AS "exitCode", exit_reason AS "exitReason", signal, duration_ms AS "durationMs",
  stdout_bytes AS "stdoutBytes", stderr_bytes AS "stderrBytes", truncated`;
const fileColumns = `id, at, technician_id AS "technicianId", agent_id AS "agentId", session_id AS "sessionId",
  operation, path, direction, bytes, sha256, outcome, error, duration_ms AS "durationMs"`;

// The three filters every list shares, as parameters $1..$3 and a limit as $4.
const filterWhere = `($1::uuid IS NULL OR session_id = $1) AND ($2::uuid IS NULL OR agent_id = $2)
  AND ($3::uuid IS NULL OR technician_id = $3)`;
const filterParams = (f: AuditFilter) => [f.sessionId ?? null, f.agentId ?? null, f.technicianId ?? null, f.limit ?? 1000];

export function createAuditRepository(db: Db): AuditRepository {
  const first = async <R>(sql: string, params: unknown[]) => (await db.query<R>(sql, params)).rows[0];
  const list = async <R>(table: string, cols: string, f: AuditFilter) =>
    !validIds(f.sessionId, f.agentId, f.technicianId)
      ? []
      : (await db.query<R>(`SELECT ${cols} FROM ${table} WHERE ${filterWhere} ORDER BY id DESC LIMIT $4`, filterParams(f))).rows;

  return {
    tunnel: (e) =>
      first<TunnelAuditRecord>(
        `INSERT INTO tunnel_audit (event, session_id, agent_id, technician_id, outcome, reason, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${tunnelColumns}`,
        [
          e.event,
          e.sessionId ?? null,
          e.agentId ?? null,
          e.technicianId ?? null,
          e.outcome ?? null,
          e.reason ?? null,
          e.detail == null ? null : JSON.stringify(e.detail),
        ],
      ),
    command: (c) =>
      first<CommandAuditRecord>(
        `INSERT INTO command_audit (technician_id, agent_id, session_id, channel_id, shell, working_dir, command, outcome,
           refusal_reason, exit_code, exit_reason, signal, duration_ms, stdout_bytes, stderr_bytes, truncated, env)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING ${commandColumns}`,
        [
          c.technicianId ?? null,
          c.agentId ?? null,
          c.sessionId ?? null,
          c.channelId ?? null,
          c.shell ?? null,
          c.workingDir ?? null,
          c.command,
          c.outcome,
          c.refusalReason ?? null,
          c.exitCode ?? null,
          c.exitReason ?? null,
          c.signal ?? null,
          c.durationMs ?? null,
          c.stdoutBytes ?? null,
          c.stderrBytes ?? null,
          c.truncated ?? false,
          c.env == null ? null : JSON.stringify(c.env),
        ],
      ),
    // Nothing returned: every command ends here, and reading the row back cost a third of the update.
    completeCommand: async (id, r) =>
      (
        await db.query(
          `UPDATE command_audit SET outcome = COALESCE($2, outcome), exit_code = $3, exit_reason = $4, signal = $5,
           duration_ms = $6, stdout_bytes = $7, stderr_bytes = $8, truncated = COALESCE($9, truncated),
           refusal_reason = COALESCE($10, refusal_reason), channel_id = COALESCE($11, channel_id)
         WHERE id = $1`,
          [
            id,
            r.outcome ?? null,
            r.exitCode ?? null,
            r.exitReason ?? null,
            r.signal ?? null,
            r.durationMs ?? null,
            r.stdoutBytes ?? null,
            r.stderrBytes ?? null,
            r.truncated ?? null,
            r.refusalReason ?? null,
            r.channelId ?? null,
          ],
        )
      ).rowCount > 0,
    file: (f) =>
      first<FileAuditRecord>(
        `INSERT INTO file_audit (technician_id, agent_id, session_id, operation, path, direction, bytes, sha256, outcome,
           error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${fileColumns}`,
        [
          f.technicianId ?? null,
          f.agentId ?? null,
          f.sessionId ?? null,
          f.operation,
          f.path ?? null,
          f.direction ?? null,
          f.bytes ?? null,
          f.sha256 ?? null,
          f.outcome,
          f.error ?? null,
          f.durationMs ?? null,
        ],
      ),
    listTunnel: (f = {}) => list<TunnelAuditRecord>("tunnel_audit", tunnelColumns, f),
    listCommands: (f = {}) => list<CommandAuditRecord>("command_audit", commandColumns, f),
    listFiles: (f = {}) => list<FileAuditRecord>("file_audit", fileColumns, f),
    async sweep(olderThanMs) {
      const del = async (table: string) =>
        (await db.query(`DELETE FROM ${table} WHERE at < now() - $1::float8 * interval '1 millisecond'`, [olderThanMs])).rowCount;
      return { tunnel: await del("tunnel_audit"), commands: await del("command_audit"), files: await del("file_audit") };
    },
    async countFailedCommandsSince({ technicianId, agentId, sinceMs }) {
      if (!validIds(technicianId, agentId)) return 0;
      const r = await db.query<{ n: number }>(
        `SELECT count(*) AS n FROM command_audit
         WHERE outcome IN ('refused', 'failed') AND at >= now() - $1::float8 * interval '1 millisecond'
           AND ($2::uuid IS NULL OR technician_id = $2) AND ($3::uuid IS NULL OR agent_id = $3)`,
        [sinceMs, technicianId ?? null, agentId ?? null],
      );
      return r.rows[0].n;
    },
  };
}
