// Liveness for one link. A half-open TCP connection (peer's machine gone,
// NAT entry dropped) never reports a close; only silence shows it. Any frame
// from the peer counts as a sign of life, so a busy link needs no heartbeats
// to stay up, and one deadline timer per link is re-armed lazily (no timer
// work per frame).

export interface HeartbeatOptions {
  /** How often this side sends a Heartbeat (when `send`). */
  intervalMs: number;
  /** Nothing received for this long closes the link (heartbeatTimeout). */
  deadlineMs: number;
  /** This side sends Heartbeats (the agent); the other answers each with HeartbeatAck. */
  send: boolean;
}

export interface Heartbeat {
  /** A frame arrived from the peer. */
  received(): void;
  stop(): void;
}

export function createHeartbeat(deps: {
  options: HeartbeatOptions;
  sendHeartbeat: (sequence: bigint) => void;
  /** The peer was silent for `silentMs` ≥ deadlineMs. Called once. */
  onDeadline: (silentMs: number) => void;
}): Heartbeat {
  const { intervalMs, deadlineMs, send } = deps.options;
  let lastReceivedMs = performance.now();
  let sequence = 0n;
  let stopped = false;

  const check = (): void => {
    if (stopped) return;
    const silentMs = performance.now() - lastReceivedMs;
    if (silentMs >= deadlineMs) {
      stop();
      deps.onDeadline(Math.round(silentMs));
      return;
    }
    deadlineTimer = setTimeout(check, deadlineMs - silentMs);
    deadlineTimer.unref();
  };

  let deadlineTimer: NodeJS.Timeout = setTimeout(check, deadlineMs);
  deadlineTimer.unref();

  let sendTimer: NodeJS.Timeout | undefined;
  if (send) {
    sendTimer = setInterval(() => deps.sendHeartbeat(++sequence), intervalMs);
    sendTimer.unref();
  }

  function stop(): void {
    stopped = true;
    clearTimeout(deadlineTimer);
    if (sendTimer) clearInterval(sendTimer);
  }

  return {
    received() {
      lastReceivedMs = performance.now();
    },
    stop,
  };
}
