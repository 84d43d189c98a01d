// Failed authentications per client address. Past `limit` failures within
// `windowMs` the address is refused for `blockMs`, whatever it sends (a good
// token included), on the RPC routes and the agent WebSocket alike; other
// addresses are unaffected. Kept in this process's memory: a database write
// per bad guess would let the guessing load the database, and each process
// behind a load balancer then allows `limit` failures of its own.
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { isIP } from "node:net";
import { GuruError } from "../../lib/errors.ts";

export interface AuthFailureLimitOptions {
  limit: number;
  windowMs: number;
  blockMs: number;
  /** Addresses tracked at most; the least recently failing go first. */
  maxAddresses?: number;
  now?: () => number;
}

interface Entry {
  /** Failure times within the window, oldest first (at most `limit`). */
  failures: number[];
  blockedUntil: number;
}

export function createAuthFailureLimit(options: AuthFailureLimitOptions) {
  const { limit, windowMs, blockMs, maxAddresses = 100_000 } = options;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();

  return {
    /** Throws rate_limited while the address is blocked. */
    check(address: string): void {
      const entry = entries.get(address);
      if (entry === undefined) return;
      const retryAfterMs = entry.blockedUntil - now();
      if (retryAfterMs <= 0) return;
      throw new GuruError(
        "rate_limited",
        `too many failed authentications from ${address}: refused for ${Math.ceil(retryAfterMs / 1000)} s more (GURU_AUTH_FAILURE_LIMIT: ${limit} per ${windowMs / 1000} s)`,
        { reason: "AUTH_FAILURES_EXCEEDED", metadata: { retryAfterMs, limit, windowMs }, details: { setting: "GURU_AUTH_FAILURE_LIMIT" } },
      );
    },

    /** Records a failure; the address is blocked once it reaches the limit within the window. */
    fail(address: string): void {
      const t = now();
      let entry = entries.get(address);
      if (entry === undefined) {
        entry = { failures: [], blockedUntil: 0 };
      } else {
        entries.delete(address); // re-inserted below: the map stays ordered by last failure
      }
      entries.set(address, entry);
      while (entry.failures.length > 0 && entry.failures[0] <= t - windowMs) entry.failures.shift();
      entry.failures.push(t);
      if (entry.failures.length > limit) entry.failures.shift();
      if (entry.failures.length >= limit) entry.blockedUntil = t + blockMs;
      if (entries.size > maxAddresses) entries.delete(entries.keys().next().value as string);
    },

    get size() {
      return entries.size;
    },
  };
}

export type AuthFailureLimit = ReturnType<typeof createAuthFailureLimit>;

/** ::ffff:127.0.0.1 → 127.0.0.1, so one client has one key whichever socket family it came on. */
function normalize(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * The client's address: the socket's peer, or, when that peer is a trusted
 * proxy, the nearest X-Forwarded-For entry that is not one (a client can
 * prepend anything it likes to the header, so only proxies' additions count).
 */
export function clientAddress(req: IncomingMessage | Http2ServerRequest, trustedProxies: readonly string[]): string {
  const peer = normalize(req.socket?.remoteAddress ?? "unknown");
  if (trustedProxies.length === 0 || !trustedProxies.includes(peer)) return peer;
  const header = req.headers["x-forwarded-for"];
  const hops = (Array.isArray(header) ? header.join(",") : (header ?? ""))
    .split(",")
    .map((h) => normalize(h.trim()))
    .filter((h) => h !== "");
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trustedProxies.includes(hops[i])) return hops[i];
  }
  return peer;
}
