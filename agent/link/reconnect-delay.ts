// How long the agent waits before dialling again. After an ordinary loss the
// reconnect backoff applies (backoff.ts: quick and spread after a lost link,
// growing while the server is unreachable, the server's Retry-After when it
// gives one). After the server
// closed the link as `replaced` — another process connected with this agent's
// key — dialling at once would push that process out, which would do the same
// back: two agents fighting, each link living milliseconds. So a replaced
// agent waits long (at least replacedMinMs, doubling while it keeps being
// replaced, up to replacedMaxMs), jittered so two such agents drift apart.
import { closeCodes } from "../../lib/wire/close-codes.ts";
import { createReconnectBackoff, type ReconnectBackoff, type ReconnectBackoffOptions } from "./backoff.ts";

const defaultReplacedMaxMs = 15 * 60_000;

export interface ReconnectDelayOptions {
  backoff: ReconnectBackoffOptions;
  replacedMinMs: number;
  replacedMaxMs?: number;
  random?: () => number;
}

export interface ReconnectDelay extends Pick<ReconnectBackoff, "connected" | "linkLost" | "failed"> {
  /** The pause before the next dial; `closeCode` is how the last link closed (undefined when the dial itself failed). */
  next(closeCode: number | undefined): { delayMs: number; replaced: boolean };
}

export function createReconnectDelay(options: ReconnectDelayOptions): ReconnectDelay {
  const random = options.random ?? Math.random;
  const backoff = createReconnectBackoff({ random, ...options.backoff });
  const replacedMaxMs = Math.max(options.replacedMinMs, options.replacedMaxMs ?? defaultReplacedMaxMs);
  let replacedInARow = 0;
  return {
    connected: () => backoff.connected(),
    linkLost: () => backoff.linkLost(),
    failed: (retryAfterMs) => backoff.failed(retryAfterMs),
    next(closeCode) {
      if (closeCode !== closeCodes.replaced) {
        replacedInARow = 0;
        return { delayMs: backoff.nextDelayMs(), replaced: false };
      }
      const floorMs = Math.min(replacedMaxMs, options.replacedMinMs * 2 ** Math.min(replacedInARow, 30));
      replacedInARow++;
      // Between the floor and twice it: never short, never in step with the other process.
      const delayMs = Math.floor(floorMs + random() * floorMs);
      return { delayMs, replaced: true };
    },
  };
}
