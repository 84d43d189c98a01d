// A short memory of tokens that passed the full check (signature, expiry and
// the database's record of who holds them and whether they were revoked), so
// a burst of calls with one token costs one database round trip, not one
// each. The database stays the source of truth: an entry is trusted for at
// most `ttlMs`, a revocation through this process drops its entries at once,
// and one made by another process is seen within `ttlMs`. Expiry is checked
// on every use.
import type { Principal } from "../domain/principal.ts";

interface Entry {
  principal: Principal;
  /** The token's own expiry (its `exp`), in ms since the epoch. */
  expiresAtMs: number;
  /** When the database last confirmed it, in ms since the epoch. */
  checkedAtMs: number;
}

export interface CheckedTokensOptions {
  /** How long a confirmed token is trusted without asking the database again; 0 turns the memory off. */
  ttlMs: number;
  /** Entries kept at most; the oldest go first. */
  maxEntries?: number;
  now?: () => number;
}

export function createCheckedTokens(options: CheckedTokensOptions) {
  const { ttlMs, maxEntries = 10_000 } = options;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();

  return {
    /** The principal of a token confirmed within the last ttlMs and not yet expired. */
    get(token: string): Principal | undefined {
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      const t = now();
      if (t - entry.checkedAtMs >= ttlMs || t >= entry.expiresAtMs) {
        entries.delete(token);
        return undefined;
      }
      return entry.principal;
    },

    remember(token: string, principal: Principal, expiresAtMs: number): void {
      if (ttlMs <= 0) return;
      entries.delete(token);
      entries.set(token, { principal, expiresAtMs, checkedAtMs: now() });
      // Maps iterate in insertion order: the first key is the oldest entry.
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
    },

    /** Forgets every token with this id (revoked). */
    forgetTokenId(tokenId: string): void {
      for (const [token, entry] of entries) if (entry.principal.tokenId === tokenId) entries.delete(token);
    },

    /** Forgets every token of one technician (all revoked, or disabled). */
    forgetTechnician(technicianId: string): void {
      for (const [token, entry] of entries) if (entry.principal.technicianId === technicianId) entries.delete(token);
    },

    get size() {
      return entries.size;
    },
  };
}

export type CheckedTokens = ReturnType<typeof createCheckedTokens>;
