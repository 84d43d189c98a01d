// A token bucket: `capacity` at once, refilled at `refillPerSecond`. The link
// takes one token per control frame from the peer, so a peer that floods
// heartbeats (each of which we would answer) is cut off without a timer.

export interface TokenBucket {
  /** Takes a token; false when the bucket is empty. */
  take(): boolean;
}

export function createTokenBucket(options: { capacity: number; refillPerSecond: number; now?: () => number }): TokenBucket {
  const { capacity, refillPerSecond } = options;
  const now = options.now ?? (() => performance.now());
  let tokens = capacity;
  let refilledAtMs = now();
  return {
    take() {
      const at = now();
      tokens = Math.min(capacity, tokens + ((at - refilledAtMs) / 1000) * refillPerSecond);
      refilledAtMs = at;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}
