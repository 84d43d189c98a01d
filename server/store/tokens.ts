// Issued technician tokens, by jti, so a JWT can be revoked before it expires.
import { isUuid, type Db } from "./db.ts";

export interface TokenRecord {
  jti: string;
  technicianId: string;
  issuedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
}

export interface TokensRepository {
  record(input: { jti: string; technicianId: string; expiresAt: Date }): Promise<TokenRecord>;
  get(jti: string): Promise<TokenRecord | undefined>;
  /** True when the token existed and was not yet revoked. */
  revoke(jti: string): Promise<boolean>;
  /** Revokes every live token of one technician; returns how many. */
  revokeAllForTechnician(technicianId: string): Promise<number>;
  /** True only for a recorded token that was revoked; unknown jti → false (check `get` to tell). */
  isRevoked(jti: string): Promise<boolean>;
  /** The token's technician and revocation in one query, for checking a presented token; undefined for an unknown jti. */
  findHolder(jti: string): Promise<TokenHolder | undefined>;
  /** Tokens with their holder, newest first; never the token text (it is not stored). */
  list(filter: { technicianId?: string; includeInactive?: boolean }): Promise<TokenListing[]>;
  /** Deletes tokens that expired more than graceMs ago; returns how many. */
  sweepExpired(graceMs?: number): Promise<number>;
}

export interface TokenHolder {
  technicianId: string;
  name: string;
  role: "admin" | "tech";
  revokedAt: Date | null;
  /** The holder is disabled: the token is refused whatever its own state. */
  disabledAt: Date | null;
}

export interface TokenListing extends TokenRecord {
  technicianName: string;
  role: "admin" | "tech";
  technicianDisabledAt: Date | null;
}

const columns = `jti, technician_id AS "technicianId", issued_at AS "issuedAt", expires_at AS "expiresAt", revoked_at AS "revokedAt"`;

export function createTokensRepository(db: Db): TokensRepository {
  return {
    async record({ jti, technicianId, expiresAt }) {
      const r = await db.query<TokenRecord>(`INSERT INTO issued_tokens (jti, technician_id, expires_at) VALUES ($1, $2, $3) RETURNING ${columns}`, [
        jti,
        technicianId,
        expiresAt,
      ]);
      return r.rows[0];
    },
    async get(jti) {
      return (await db.query<TokenRecord>(`SELECT ${columns} FROM issued_tokens WHERE jti = $1`, [jti])).rows[0];
    },
    async revoke(jti) {
      const r = await db.query("UPDATE issued_tokens SET revoked_at = now() WHERE jti = $1 AND revoked_at IS NULL", [jti]);
      return r.rowCount > 0;
    },
    async revokeAllForTechnician(technicianId) {
      const r = await db.query("UPDATE issued_tokens SET revoked_at = now() WHERE technician_id = $1 AND revoked_at IS NULL AND expires_at > now()", [
        technicianId,
      ]);
      return r.rowCount;
    },
    async isRevoked(jti) {
      const r = await db.query("SELECT 1 FROM issued_tokens WHERE jti = $1 AND revoked_at IS NOT NULL", [jti]);
      return r.rowCount > 0;
    },
    async findHolder(jti) {
      const r = await db.query<TokenHolder>(
        `SELECT t.id AS "technicianId", t.name, t.role, tok.revoked_at AS "revokedAt", t.disabled_at AS "disabledAt"
         FROM issued_tokens tok JOIN technicians t ON t.id = tok.technician_id WHERE tok.jti = $1`,
        [jti],
      );
      return r.rows[0];
    },
    async list({ technicianId, includeInactive = false }) {
      if (technicianId !== undefined && !isUuid(technicianId)) return [];
      const r = await db.query<TokenListing>(
        `SELECT tok.jti, tok.technician_id AS "technicianId", tok.issued_at AS "issuedAt", tok.expires_at AS "expiresAt",
                tok.revoked_at AS "revokedAt", t.name AS "technicianName", t.role, t.disabled_at AS "technicianDisabledAt"
         FROM issued_tokens tok JOIN technicians t ON t.id = tok.technician_id
         WHERE ($1::uuid IS NULL OR tok.technician_id = $1)
           AND ($2 OR (tok.revoked_at IS NULL AND tok.expires_at > now() AND t.disabled_at IS NULL))
         ORDER BY tok.issued_at DESC, tok.jti`,
        [technicianId ?? null, includeInactive],
      );
      return r.rows;
    },
    async sweepExpired(graceMs = 0) {
      const r = await db.query("DELETE FROM issued_tokens WHERE expires_at < now() - $1::float8 * interval '1 millisecond'", [graceMs]);
      return r.rowCount;
    },
  };
}
