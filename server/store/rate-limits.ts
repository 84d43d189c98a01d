// Sliding-window rate limits kept in the database, so every server process
// counts the same events. One hit is one transaction holding an advisory lock
// on the key: concurrent hits on one key queue, hits on other keys do not.
// The logic is the SQL function guru_rate_limit_hit (migrations/0002).
import type { Db } from "./db.ts";

export interface RateLimitResult {
  allowed: boolean;
  /** 0 when allowed; else when the oldest event in the window leaves it. */
  retryAfterMs: number;
  /** Events in the window after this hit (a refused hit is not recorded). */
  count: number;
}

export interface RateLimitsRepository {
  hit(key: string, limit: { limit: number; windowMs: number }): Promise<RateLimitResult>;
  /** Deletes events older than olderThanMs for every key (keys not hit again keep theirs). */
  sweep(olderThanMs: number): Promise<number>;
}

export function createRateLimitsRepository(db: Db): RateLimitsRepository {
  return {
    async hit(key, { limit, windowMs }) {
      // migrations/0002_rate_limit_hit.sql: lock, prune, count and record in one round trip.
      const { rows } = await db.query<{ allowed: boolean; retry_after_ms: number; event_count: number }>(
        "SELECT allowed, retry_after_ms, event_count FROM guru_rate_limit_hit($1, $2, $3)",
        [key, limit, windowMs],
      );
      const { allowed, retry_after_ms, event_count } = rows[0];
      return { allowed, retryAfterMs: Number(retry_after_ms), count: Number(event_count) };
    },
    async sweep(olderThanMs) {
      const r = await db.query("DELETE FROM rate_limit_events WHERE at < clock_timestamp() - $1::float8 * interval '1 millisecond'", [olderThanMs]);
      return r.rowCount;
    },
  };
}
