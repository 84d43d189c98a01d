// The audit rows of service and registry operations (migrations/0008).
import type { AuditFilter, AuditOutcome } from "./audit.ts";
import type { Db } from "./db.ts";
import { validIds } from "./sessions.ts";

export interface SystemAuditInput {
  technicianId?: string | null;
  agentId?: string | null;
  sessionId?: string | null;
  operation: string;
  target?: string | null;
  action?: string | null;
  dryRun: boolean;
  outcome: AuditOutcome;
  error?: string | null;
  before?: unknown;
  after?: unknown;
  durationMs?: number | null;
}
export interface SystemAuditRecord extends Required<SystemAuditInput> {
  id: number;
  at: Date;
}

export interface SystemAuditRepository {
  record(row: SystemAuditInput): Promise<SystemAuditRecord>;
  list(filter?: AuditFilter): Promise<SystemAuditRecord[]>;
  /** Deletes rows older than olderThanMs; returns how many. */
  sweep(olderThanMs: number): Promise<number>;
}

const columns = `id, at, technician_id AS "technicianId", agent_id AS "agentId", session_id AS "sessionId", operation, target,
  action, dry_run AS "dryRun", outcome, error, before, after, duration_ms AS "durationMs"`;

const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));

export function createSystemAuditRepository(db: Db): SystemAuditRepository {
  return {
    async record(r) {
      const { rows } = await db.query<SystemAuditRecord>(
        `INSERT INTO system_audit (technician_id, agent_id, session_id, operation, target, action, dry_run, outcome, error, before, after, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${columns}`,
        [
          r.technicianId ?? null,
          r.agentId ?? null,
          r.sessionId ?? null,
          r.operation,
          r.target ?? null,
          r.action ?? null,
          r.dryRun,
          r.outcome,
          r.error ?? null,
          json(r.before),
          json(r.after),
          r.durationMs ?? null,
        ],
      );
      return rows[0];
    },
    async list(f = {}) {
      if (!validIds(f.sessionId, f.agentId, f.technicianId)) return [];
      const { rows } = await db.query<SystemAuditRecord>(
        `SELECT ${columns} FROM system_audit
         WHERE ($1::uuid IS NULL OR session_id = $1) AND ($2::uuid IS NULL OR agent_id = $2) AND ($3::uuid IS NULL OR technician_id = $3)
         ORDER BY id DESC LIMIT $4`,
        [f.sessionId ?? null, f.agentId ?? null, f.technicianId ?? null, f.limit ?? 1000],
      );
      return rows;
    },
    async sweep(olderThanMs) {
      const r = await db.query(`DELETE FROM system_audit WHERE at < now() - $1::float8 * interval '1 millisecond'`, [olderThanMs]);
      return r.rowCount;
    },
  };
}
