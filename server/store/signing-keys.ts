// The server's JWT signing keys, generated on first start and kept in the
// database so every server process signs and verifies with the same keys.
import type { Db } from "./db.ts";

export type Jwk = Record<string, unknown>;

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  privateJwk: Jwk;
  publicJwk: Jwk;
  createdAt: Date;
}

export type PublicSigningKey = Omit<SigningKeyRecord, "privateJwk">;

export interface SigningKeysRepository {
  /** The newest key not retired. */
  getCurrent(): Promise<SigningKeyRecord | undefined>;
  /**
   * Stores the key only if there is no current key, then returns the current
   * one: servers starting at once each generate a key, and all end up using
   * whichever was stored first.
   */
  insertIfAbsent(key: { kid: string; alg: string; privateJwk: Jwk; publicJwk: Jwk }): Promise<SigningKeyRecord>;
  /** Every stored key's public half (retired ones too, to verify older tokens), newest first. */
  listPublic(): Promise<PublicSigningKey[]>;
}

const LOCK_CLASS = "guru.signing_keys";
const columns = `kid, alg, private_jwk AS "privateJwk", public_jwk AS "publicJwk", created_at AS "createdAt"`;
const currentSql = `SELECT ${columns} FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1`;

export function createSigningKeysRepository(db: Db): SigningKeysRepository {
  return {
    async getCurrent() {
      return (await db.query<SigningKeyRecord>(currentSql)).rows[0];
    },
    insertIfAbsent(key) {
      return db.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [LOCK_CLASS]);
        const current = (await tx.query<SigningKeyRecord>(currentSql)).rows[0];
        if (current) return current;
        const r = await tx.query<SigningKeyRecord>(
          `INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4) RETURNING ${columns}`,
          [key.kid, key.alg, JSON.stringify(key.privateJwk), JSON.stringify(key.publicJwk)],
        );
        return r.rows[0];
      });
    },
    async listPublic() {
      const r = await db.query<PublicSigningKey>(
        `SELECT kid, alg, public_jwk AS "publicJwk", created_at AS "createdAt" FROM signing_keys ORDER BY created_at DESC, kid`,
      );
      return r.rows;
    },
  };
}
