// Viewer tokens by JWT id: bound to one session and one origin, redeemed at
// most once (a conditional update decides, so two racing redemptions cannot
// both win), revoked when their session ends.
import type { Db } from "./db.ts";

export interface ViewerTokenRecord {
  jti: string;
  sessionId: string;
  keyId: string;
  origin: string;
  issuedAt: Date;
  expiresAt: Date;
  redeemedAt: Date | null;
  revokedAt: Date | null;
}

export interface ViewerTokensRepository {
  record(input: { jti: string; sessionId: string; keyId: string; origin: string; expiresAt: Date }): Promise<void>;
  get(jti: string): Promise<ViewerTokenRecord | undefined>;
  /** Marks the token used if it is unused, unrevoked and unexpired; the record when this call won, else undefined. */
  redeem(jti: string): Promise<ViewerTokenRecord | undefined>;
  /** Revokes every unredeemed token of these sessions; returns how many. */
  revokeForSessions(sessionIds: string[]): Promise<number>;
}

const columns = `jti, session_id AS "sessionId", integration_key_id AS "keyId", origin, issued_at AS "issuedAt",
  expires_at AS "expiresAt", redeemed_at AS "redeemedAt", revoked_at AS "revokedAt"`;

export function createViewerTokensRepository(db: Db): ViewerTokensRepository {
  return {
    async record({ jti, sessionId, keyId, origin, expiresAt }) {
      await db.query("INSERT INTO viewer_tokens (jti, session_id, integration_key_id, origin, expires_at) VALUES ($1, $2, $3, $4, $5)", [
        jti,
        sessionId,
        keyId,
        origin,
        expiresAt,
      ]);
    },
    async get(jti) {
      return (await db.query<ViewerTokenRecord>(`SELECT ${columns} FROM viewer_tokens WHERE jti = $1`, [jti])).rows[0];
    },
    async redeem(jti) {
      const r = await db.query<ViewerTokenRecord>(
        `UPDATE viewer_tokens SET redeemed_at = now()
         WHERE jti = $1 AND redeemed_at IS NULL AND revoked_at IS NULL AND expires_at > now() RETURNING ${columns}`,
        [jti],
      );
      return r.rows[0];
    },
    async revokeForSessions(sessionIds) {
      if (sessionIds.length === 0) return 0;
      const r = await db.query(
        "UPDATE viewer_tokens SET revoked_at = now() WHERE session_id = ANY($1::uuid[]) AND revoked_at IS NULL AND redeemed_at IS NULL",
        [sessionIds],
      );
      return r.rowCount;
    },
  };
}
