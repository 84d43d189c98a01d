// Retry-After values for agents refused during a reconnect storm.
/**
 * Staggered Retry-After values for agents refused because the handshake slots
 * are full (a reconnect storm). Throughput is estimated by Little's law from
 * the slots and the recent handshake time; each refused agent gets the next
 * free second at that pace, so they come back about as fast as they can be
 * served instead of all at once.
 */
export function createHandshakePacer(maxConcurrentHandshakes: number, now: () => number = () => performance.now()) {
  let averageMs = 10;
  let nextSlotMs = 0;
  return {
    handshakeDone(durationMs: number) {
      averageMs = 0.9 * averageMs + 0.1 * Math.max(0.1, durationMs);
    },
    retryAfterSeconds(): number {
      const perSecond = (maxConcurrentHandshakes * 1000) / averageMs;
      const t = now();
      nextSlotMs = Math.max(nextSlotMs, t) + 1000 / perSecond;
      return Math.min(600, Math.max(1, Math.ceil((nextSlotMs - t) / 1000)));
    },
  };
}
