// Reconnect delays: exponential with full jitter, capped (the AWS
// architecture blog's "full jitter"), so a server restart does not get every
// agent back in the same second.
export interface Backoff {
  /** The delay before the next attempt; each call grows the ceiling. */
  next(): number;
  /** A connection succeeded: start small again. */
  reset(): void;
}

export function createBackoff(options: { baseMs: number; maxMs: number; random?: () => number }): Backoff {
  const random = options.random ?? Math.random;
  let attempt = 0;
  return {
    next() {
      const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** attempt);
      attempt = Math.min(attempt + 1, 30);
      return Math.floor(random() * ceiling);
    },
    reset() {
      attempt = 0;
    },
  };
}
