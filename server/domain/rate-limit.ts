// Per-technician sliding-window limits kept in the database (the same table
// and function as the command rate limit), so every server process counts the
// same events. A refusal names the limit and the setting that sets it.
import { GuruError } from "../../lib/errors.ts";
import type { Store } from "../store/index.ts";

export interface TechnicianRateLimitOptions {
  store: Pick<Store, "rateLimits">;
  /** Key prefix in rate_limit_events, e.g. "open_tunnel". */
  key: string;
  /** What is counted, for the message: "tunnel opens". */
  what: string;
  /** The variable that sets the limit, for the message. */
  setting: string;
  limit: number;
  windowMs: number;
}

export function createTechnicianRateLimit(options: TechnicianRateLimitOptions) {
  const { store, limit, windowMs } = options;
  return {
    /** Counts one event for the technician; throws rate_limited when the window is full. */
    async hit(technicianId: string): Promise<void> {
      const result = await store.rateLimits.hit(`${options.key}:${technicianId}`, { limit, windowMs });
      if (result.allowed) return;
      const retryAfterMs = result.retryAfterMs;
      throw new GuruError(
        "rate_limited",
        `rate limit: at most ${limit} ${options.what} per ${windowMs / 1000} s per technician (${options.setting}); retry in ${(retryAfterMs / 1000).toFixed(1)} s`,
        { metadata: { retryAfterMs, limit, windowMs }, details: { setting: options.setting } },
      );
    },
  };
}

export type TechnicianRateLimit = ReturnType<typeof createTechnicianRateLimit>;
