// Resumable uploads: the committed offset is what the agent acknowledged as
// durably written, so a transfer resumes from it after a reconnect.
import { isUuid, type Db } from "./db.ts";

export type UploadStatus = "active" | "finished" | "aborted" | "failed";

export interface UploadInput {
  sessionId?: string | null;
  agentId: string;
  technicianId?: string | null;
  path: string;
  size: number;
  sha256?: string | null;
  overwrite?: boolean;
  /** Null or absent: the agent's default. */
  keepBackup?: boolean | null;
}

export interface UploadRecord {
  id: string;
  sessionId: string | null;
  agentId: string;
  technicianId: string | null;
  path: string;
  size: number;
  sha256: string | null;
  overwrite: boolean;
  keepBackup: boolean | null;
  committedOffset: number;
  status: UploadStatus;
  createdAt: Date;
  updatedAt: Date;
  error: string | null;
}

export interface UploadsRepository {
  create(row: UploadInput): Promise<UploadRecord>;
  /**
   * Creates the row unless the technician already has maxActive active
   * uploads to the agent; then answers how many they have. Checked and
   * inserted under a lock per technician and agent, so racing starts (from
   * any server process) cannot pass the cap together.
   */
  createCapped(row: UploadInput & { technicianId: string }, maxActive: number): Promise<{ created: UploadRecord } | { activeCount: number }>;
  get(id: string): Promise<UploadRecord | undefined>;
  /** Records the acknowledged offset of an active upload; false when not active. */
  setCommitted(id: string, offset: number): Promise<boolean>;
  setStatus(id: string, status: UploadStatus, error?: string): Promise<UploadRecord | undefined>;
  /** One statement for a verified upload: its size as committed, its SHA-256 (kept if StartUpload declared it), status finished. */
  markFinished(id: string, size: number, sha256: string): Promise<void>;
  /** Active uploads not updated for more than olderThanMs, oldest first. */
  listStale(olderThanMs: number): Promise<UploadRecord[]>;
}

const columns = `id, session_id AS "sessionId", agent_id AS "agentId", technician_id AS "technicianId", path, size, sha256,
  overwrite, keep_backup AS "keepBackup", committed_offset AS "committedOffset", status, created_at AS "createdAt", updated_at AS "updatedAt", error`;

export function createUploadsRepository(db: Db): UploadsRepository {
  const rows = async (sql: string, params: unknown[]) => (await db.query<UploadRecord>(sql, params)).rows;
  return {
    async create(u) {
      const r = await rows(
        `INSERT INTO uploads (session_id, agent_id, technician_id, path, size, sha256, overwrite, keep_backup)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${columns}`,
        [u.sessionId ?? null, u.agentId, u.technicianId ?? null, u.path, u.size, u.sha256 ?? null, u.overwrite ?? false, u.keepBackup ?? null],
      );
      return r[0];
    },
    async createCapped(u, maxActive) {
      return db.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('guru.uploads'), hashtext($1))", [`${u.technicianId}/${u.agentId}`]);
        const counted = await tx.query<{ n: string }>("SELECT count(*) AS n FROM uploads WHERE technician_id = $1 AND agent_id = $2 AND status = 'active'", [
          u.technicianId,
          u.agentId,
        ]);
        const activeCount = Number(counted.rows[0].n);
        if (activeCount >= maxActive) return { activeCount };
        const r = await tx.query<UploadRecord>(
          `INSERT INTO uploads (session_id, agent_id, technician_id, path, size, sha256, overwrite, keep_backup)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${columns}`,
          [u.sessionId ?? null, u.agentId, u.technicianId, u.path, u.size, u.sha256 ?? null, u.overwrite ?? false, u.keepBackup ?? null],
        );
        return { created: r.rows[0] };
      });
    },
    async get(id) {
      if (!isUuid(id)) return undefined;
      return (await rows(`SELECT ${columns} FROM uploads WHERE id = $1`, [id]))[0];
    },
    async setCommitted(id, offset) {
      if (!isUuid(id)) return false;
      const r = await db.query("UPDATE uploads SET committed_offset = $2, updated_at = now() WHERE id = $1 AND status = 'active'", [id, offset]);
      return r.rowCount > 0;
    },
    async setStatus(id, status, error) {
      if (!isUuid(id)) return undefined;
      const r = await rows(`UPDATE uploads SET status = $2, error = $3, updated_at = now() WHERE id = $1 RETURNING ${columns}`, [id, status, error ?? null]);
      return r[0];
    },
    async markFinished(id, size, sha256) {
      await db.query(
        "UPDATE uploads SET committed_offset = $2, sha256 = COALESCE(sha256, $3), status = 'finished', error = NULL, updated_at = now() WHERE id = $1",
        [id, size, sha256],
      );
    },
    listStale(olderThanMs) {
      return rows(
        `SELECT ${columns} FROM uploads
         WHERE status = 'active' AND updated_at < now() - $1::float8 * interval '1 millisecond' ORDER BY updated_at`,
        [olderThanMs],
      );
    },
  };
}
