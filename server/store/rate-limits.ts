// Sliding-window rate limits kept in the database, so every server process
// counts the same events. One hit is one transaction holding an advisory lock
// on the key: concurrent hits on one key queue, hits on other keys do not.
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

// Two-int advisory keys live apart from the one-bigint keys used for migrations.
const LOCK_CLASS = "guru.rate_limit";

export function createRateLimitsRepository(db: Db): RateLimitsRepository {
  return {
    hit(key, { limit, windowMs }) {
      return db.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", [LOCK_CLASS, key]);
        // clock_timestamp(), not now(): now() is when the transaction began,
        // which for a hit that waited on the lock is before the hits it waited for.
        await tx.query(
          "DELETE FROM rate_limit_events WHERE key = $1 AND at <= clock_timestamp() - $2::float8 * interval '1 millisecond'",
          [key, windowMs],
        );
        const { rows } = await tx.query<{ count: number; oldest: Date | null; now: Date }>(
          "SELECT count(*) AS count, min(at) AS oldest, clock_timestamp() AS now FROM rate_limit_events WHERE key = $1",
          [key],
        );
        const { count, oldest, now } = rows[0];
        if (count < limit) {
          await tx.query("INSERT INTO rate_limit_events (key, at) VALUES ($1, clock_timestamp())", [key]);
          return { allowed: true, retryAfterMs: 0, count: count + 1 };
        }
        const retryAfterMs = oldest ? Math.max(1, Math.ceil(oldest.getTime() + windowMs - now.getTime())) : windowMs;
        return { allowed: false, retryAfterMs, count };
      });
    },
    async sweep(olderThanMs) {
      const r = await db.query(
        "DELETE FROM rate_limit_events WHERE at < clock_timestamp() - $1::float8 * interval '1 millisecond'",
        [olderThanMs],
      );
      return r.rowCount;
    },
  };
}
