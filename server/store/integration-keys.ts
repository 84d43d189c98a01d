// Integration keys: what lets a partner's server call guru.integration.v1.
// Only a hash of each key is stored; the audit of every partner call sits
// here too, as it is keyed by the integration key.
import { GuruError } from "../../lib/errors.ts";
import { isUniqueViolation, isUuid, type Db } from "./db.ts";

export interface IntegrationKeyRecord {
  id: string;
  name: string;
  allowedOrigins: string[];
  createdAt: Date;
  createdBy: string | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export interface IntegrationAuditInput {
  keyId?: string | null;
  method: string;
  outcome: "ok" | "refused" | "failed";
  sessionId?: string | null;
  agentId?: string | null;
  reason?: string | null;
  detail?: Record<string, unknown> | null;
}

export interface IntegrationAuditRecord extends Required<IntegrationAuditInput> {
  id: number;
  at: Date;
}

export interface IntegrationKeysRepository {
  /** Duplicate name → GuruError "conflict". */
  create(input: { name: string; keyHash: string; allowedOrigins: string[]; createdBy: string }): Promise<IntegrationKeyRecord>;
  /** Also finds revoked keys, so auth can say "revoked" rather than "unknown". */
  findByHash(keyHash: string): Promise<IntegrationKeyRecord | undefined>;
  get(id: string): Promise<IntegrationKeyRecord | undefined>;
  list(): Promise<IntegrationKeyRecord[]>;
  /** True when the key was live and is now revoked. */
  revoke(id: string): Promise<boolean>;
  markUsed(id: string): Promise<void>;
  audit(input: IntegrationAuditInput): Promise<void>;
  /** Removes audit rows older than olderThanMs; returns how many. */
  sweepAudit(olderThanMs: number): Promise<number>;
  /** Newest first. */
  listAudit(filter: { keyId?: string; sessionId?: string; limit?: number }): Promise<IntegrationAuditRecord[]>;
}

const columns = `id, name, allowed_origins AS "allowedOrigins", created_at AS "createdAt", created_by AS "createdBy",
  revoked_at AS "revokedAt", last_used_at AS "lastUsedAt"`;
const auditColumns = `id, at, integration_key_id AS "keyId", method, outcome, session_id AS "sessionId", agent_id AS "agentId", reason, detail`;

export function createIntegrationKeysRepository(db: Db): IntegrationKeysRepository {
  const one = async (sql: string, params: unknown[]) => (await db.query<IntegrationKeyRecord>(sql, params)).rows[0];
  const uuidOrNull = (id: string | null | undefined) => (id && isUuid(id) ? id : null);
  return {
    async create({ name, keyHash, allowedOrigins, createdBy }) {
      try {
        return await one(`INSERT INTO integration_keys (name, key_hash, allowed_origins, created_by) VALUES ($1, $2, $3, $4) RETURNING ${columns}`, [
          name,
          keyHash,
          allowedOrigins,
          uuidOrNull(createdBy),
        ]);
      } catch (err) {
        if (isUniqueViolation(err, "integration_keys_name_key")) {
          throw new GuruError("conflict", `an integration key named "${name}" already exists`, { cause: err, details: { name } });
        }
        throw err;
      }
    },
    findByHash: (keyHash) => one(`SELECT ${columns} FROM integration_keys WHERE key_hash = $1`, [keyHash]),
    get: async (id) => (isUuid(id) ? one(`SELECT ${columns} FROM integration_keys WHERE id = $1`, [id]) : undefined),
    async list() {
      return (await db.query<IntegrationKeyRecord>(`SELECT ${columns} FROM integration_keys ORDER BY name`)).rows;
    },
    async revoke(id) {
      if (!isUuid(id)) return false;
      const r = await db.query("UPDATE integration_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", [id]);
      return r.rowCount > 0;
    },
    async markUsed(id) {
      // At most once a minute per key: the column says "recently", not every call.
      await db.query(
        "UPDATE integration_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        [id],
      );
    },
    async audit(input) {
      await db.query(
        `INSERT INTO integration_audit (integration_key_id, method, outcome, session_id, agent_id, reason, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          uuidOrNull(input.keyId),
          input.method,
          input.outcome,
          uuidOrNull(input.sessionId),
          uuidOrNull(input.agentId),
          input.reason ?? null,
          input.detail ?? null,
        ],
      );
    },
    async sweepAudit(olderThanMs) {
      const r = await db.query("DELETE FROM integration_audit WHERE at < now() - $1::float8 * interval '1 millisecond'", [olderThanMs]);
      return r.rowCount;
    },
    async listAudit(filter) {
      if ((filter.keyId && !isUuid(filter.keyId)) || (filter.sessionId && !isUuid(filter.sessionId))) return [];
      const r = await db.query<IntegrationAuditRecord>(
        `SELECT ${auditColumns} FROM integration_audit
         WHERE ($1::uuid IS NULL OR integration_key_id = $1) AND ($2::uuid IS NULL OR session_id = $2)
         ORDER BY id DESC LIMIT $3`,
        [filter.keyId ?? null, filter.sessionId ?? null, filter.limit ?? 1000],
      );
      return r.rows;
    },
  };
}
