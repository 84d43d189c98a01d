// Reconnect delays with full jitter, capped at maxMs (GURU_BACKOFF_MAX_MS).
// Tuned for the day every agent reconnects at once (a server restart):
// - the first redial after a link that was up ends is drawn from
//   [0, spreadMs): quick, but spread, so 10,000 agents do not all knock in
//   the same half second while the server is still starting;
// - while the server cannot be reached, the ceiling is half the time spent
//   offline (at least spreadMs, at most maxMs), not a power of the attempt
//   count: with full jitter an attempt counter runs far ahead of the time
//   actually waited, and an agent that had reached a 60 s ceiling during a
//   10 s restart would come back up to a minute after the server did;
// - a server that is up but busy (503 with Retry-After) hands out staggered
//   times to come back; the agent waits that long plus up to a second of
//   jitter, so the server sees its own pace instead of a swarm.
export interface ReconnectBackoff {
  /** The link is up (the server's HelloAck came). */
  connected(): void;
  /** A link that was up has ended: the next delay is a short, spread one. */
  linkLost(): void;
  /** A dial failed; `retryAfterMs` when the server said when to come back. */
  failed(retryAfterMs?: number): void;
  /** The pause before the next dial. */
  nextDelayMs(): number;
}

export interface ReconnectBackoffOptions {
  maxMs: number;
  /** Ceiling of the first redial after a link ends (capped at maxMs). */
  spreadMs?: number;
  random?: () => number;
  now?: () => number;
}

const defaultReconnectSpreadMs = 5_000;

export function createReconnectBackoff(options: ReconnectBackoffOptions): ReconnectBackoff {
  const random = options.random ?? Math.random;
  const now = options.now ?? (() => performance.now());
  const spreadMs = Math.min(options.maxMs, options.spreadMs ?? defaultReconnectSpreadMs);
  // An agent starting up is offline since now, and its first dial is immediate.
  let offlineSinceMs = now();
  let next: { retryAfterMs: number } | "spread" | "first" | "grow" = "first";

  return {
    connected() {
      next = "spread";
    },
    linkLost() {
      offlineSinceMs = now();
      next = "spread";
    },
    failed(retryAfterMs) {
      next = retryAfterMs !== undefined && retryAfterMs >= 0 ? { retryAfterMs } : "grow";
    },
    nextDelayMs() {
      const current = next;
      next = "grow";
      if (current === "first") return 0;
      if (current === "spread") return Math.floor(random() * spreadMs);
      if (current !== "grow") return Math.min(options.maxMs, current.retryAfterMs + Math.floor(random() * 1000));
      const ceilingMs = Math.min(options.maxMs, Math.max(spreadMs, (now() - offlineSinceMs) / 2));
      return Math.floor(random() * ceilingMs);
    },
  };
}
