// Terminal audit rows and their recordings (migrations/0009). A terminal's
// row is written when it opens (or is refused) and completed when it ends;
// its recording is appended as numbered chunks of asciicast text while it runs.
import type { Db } from "./db.ts";
import { validIds } from "./sessions.ts";

export type TerminalOutcome = "running" | "exited" | "failed" | "refused";

export interface TerminalAuditInput {
  id: string;
  technicianId: string | null;
  agentId: string | null;
  sessionId: string | null;
  shell: string | null;
  command: string | null;
  workingDir: string | null;
  columns: number | null;
  rows: number | null;
  outcome: TerminalOutcome;
  refusalReason?: string | null;
  /** Set for a terminal that is recorded (every one that starts). */
  recordingId?: string | null;
}

export interface TerminalCompletion {
  outcome: "exited" | "failed" | "refused";
  channelId: number | null;
  exitCode: number | null;
  exitReason: string | null;
  signal: string | null;
  durationMs: number;
  inputBytes: number;
  outputBytes: number;
  refusalReason?: string | null;
  recordingTruncated: boolean;
}

export interface TerminalRecord extends Required<TerminalAuditInput> {
  at: Date;
  channelId: number | null;
  exitCode: number | null;
  exitReason: string | null;
  signal: string | null;
  endedAt: Date | null;
  durationMs: number | null;
  inputBytes: number;
  outputBytes: number;
  recordingBytes: number;
  recordingTruncated: boolean;
}

export interface TerminalFilter {
  sessionId?: string;
  agentId?: string;
  technicianId?: string;
  /** Only rows with a recording. */
  recorded?: boolean;
  /** Newest first; default 100. */
  limit?: number;
}

export interface TerminalsRepository {
  insert(row: TerminalAuditInput): Promise<TerminalRecord>;
  complete(id: string, result: TerminalCompletion): Promise<TerminalRecord | undefined>;
  get(id: string): Promise<TerminalRecord | undefined>;
  list(filter?: TerminalFilter): Promise<TerminalRecord[]>;
  /** Appends chunk `seq` of a recording (stored bytes) and adds the size of the text it holds to the row, in one statement. */
  appendChunk(recordingId: string, seq: number, data: Uint8Array, textBytes: number): Promise<void>;
  /** Chunks after `afterSeq`, in order, at most `limit`. */
  readChunks(recordingId: string, afterSeq: number, limit: number): Promise<{ seq: number; data: Uint8Array }[]>;
  /** Deletes rows (and their recordings) older than olderThanMs; returns the rows removed. */
  sweep(olderThanMs: number): Promise<number>;
}

const columns = `id, at, technician_id AS "technicianId", agent_id AS "agentId", session_id AS "sessionId",
  channel_id AS "channelId", shell, command, working_dir AS "workingDir", columns, rows, outcome,
  refusal_reason AS "refusalReason", exit_code AS "exitCode", exit_reason AS "exitReason", signal,
  ended_at AS "endedAt", duration_ms AS "durationMs", input_bytes AS "inputBytes", output_bytes AS "outputBytes",
  recording_id AS "recordingId", recording_bytes AS "recordingBytes", recording_truncated AS "recordingTruncated"`;

export function createTerminalsRepository(db: Db): TerminalsRepository {
  const first = async (sql: string, params: unknown[]) => (await db.query<TerminalRecord>(sql, params)).rows[0];
  return {
    insert: (r) =>
      first(
        `INSERT INTO terminal_audit (id, technician_id, agent_id, session_id, shell, command, working_dir, columns, rows,
           outcome, refusal_reason, recording_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${columns}`,
        [
          r.id,
          r.technicianId,
          r.agentId,
          r.sessionId,
          r.shell,
          r.command,
          r.workingDir,
          r.columns,
          r.rows,
          r.outcome,
          r.refusalReason ?? null,
          r.recordingId ?? null,
        ],
      ),
    complete: (id, c) =>
      first(
        `UPDATE terminal_audit SET outcome = $2, channel_id = $3, exit_code = $4, exit_reason = $5, signal = $6,
           ended_at = now(), duration_ms = $7, input_bytes = $8, output_bytes = $9,
           refusal_reason = COALESCE($10, refusal_reason), recording_truncated = $11
         WHERE id = $1 RETURNING ${columns}`,
        [
          id,
          c.outcome,
          c.channelId,
          c.exitCode,
          c.exitReason,
          c.signal,
          c.durationMs,
          c.inputBytes,
          c.outputBytes,
          c.refusalReason ?? null,
          c.recordingTruncated,
        ],
      ),
    get: async (id) => (validIds(id) ? first(`SELECT ${columns} FROM terminal_audit WHERE id = $1`, [id]) : undefined),
    async list(f = {}) {
      if (!validIds(f.sessionId, f.agentId, f.technicianId)) return [];
      const { rows } = await db.query<TerminalRecord>(
        `SELECT ${columns} FROM terminal_audit
         WHERE ($1::uuid IS NULL OR session_id = $1) AND ($2::uuid IS NULL OR agent_id = $2)
           AND ($3::uuid IS NULL OR technician_id = $3) AND (NOT $4 OR recording_id IS NOT NULL)
         ORDER BY at DESC, id LIMIT $5`,
        [f.sessionId ?? null, f.agentId ?? null, f.technicianId ?? null, f.recorded ?? false, f.limit ?? 100],
      );
      return rows;
    },
    async appendChunk(recordingId, seq, data, textBytes) {
      await db.query(
        `WITH chunk AS (INSERT INTO terminal_recording_chunks (recording_id, seq, data) VALUES ($1, $2, $3) RETURNING recording_id)
         UPDATE terminal_audit SET recording_bytes = recording_bytes + $4 WHERE id = (SELECT recording_id FROM chunk)`,
        [recordingId, seq, data, textBytes],
      );
    },
    async readChunks(recordingId, afterSeq, limit) {
      if (!validIds(recordingId)) return [];
      const { rows } = await db.query<{ seq: number; data: Uint8Array }>(
        "SELECT seq, data FROM terminal_recording_chunks WHERE recording_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        [recordingId, afterSeq, limit],
      );
      return rows;
    },
    async sweep(olderThanMs) {
      const r = await db.query("DELETE FROM terminal_audit WHERE at < now() - $1::float8 * interval '1 millisecond' AND outcome <> 'running'", [olderThanMs]);
      return r.rowCount;
    },
  };
}
