// Liveness for one link. A half-open TCP connection (peer's machine gone,
// NAT entry dropped) never reports a close; only silence shows it. Any frame
// from the peer counts as a sign of life, so a busy link needs no heartbeats
// to stay up.
//
// Deadlines are checked by one sweep timer per deadline value for all links
// of the process, not one timer per link: a server with 19,000 links re-arming
// their own timers at scattered times woke up a few hundred times a second for
// nothing, and each timer of a distinct duration costs a timer list of its
// own. A sweep every deadlineMs/10 (at most 1 s) walks the links in a Set;
// a dead link is found between deadlineMs and deadlineMs plus one sweep.

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

interface Watched {
  lastReceivedMs: number;
  onDeadline: (silentMs: number) => void;
}

const sweepers = new Map<number, { watched: Set<Watched>; timer: NodeJS.Timeout }>();

function watch(deadlineMs: number, entry: Watched): () => void {
  let sweeper = sweepers.get(deadlineMs);
  if (sweeper === undefined) {
    const watched = new Set<Watched>();
    const sweepMs = Math.max(5, Math.min(1_000, Math.floor(deadlineMs / 10)));
    const timer = setInterval(() => {
      const now = performance.now();
      for (const w of watched) {
        const silentMs = now - w.lastReceivedMs;
        if (silentMs >= deadlineMs) {
          watched.delete(w);
          w.onDeadline(Math.round(silentMs));
        }
      }
      if (watched.size === 0) stopSweeper(deadlineMs);
    }, sweepMs);
    timer.unref();
    sweeper = { watched, timer };
    sweepers.set(deadlineMs, sweeper);
  }
  sweeper.watched.add(entry);
  const { watched } = sweeper;
  return () => {
    watched.delete(entry);
    if (watched.size === 0 && sweepers.get(deadlineMs)?.watched === watched) stopSweeper(deadlineMs);
  };
}

function stopSweeper(deadlineMs: number): void {
  const sweeper = sweepers.get(deadlineMs);
  if (sweeper === undefined) return;
  clearInterval(sweeper.timer);
  sweepers.delete(deadlineMs);
}

export function createHeartbeat(deps: {
  options: HeartbeatOptions;
  sendHeartbeat: (sequence: bigint) => void;
  /** The peer was silent for `silentMs` ≥ deadlineMs. Called once. */
  onDeadline: (silentMs: number) => void;
}): Heartbeat {
  const { intervalMs, deadlineMs, send } = deps.options;
  let sequence = 0n;
  let stopped = false;
  const entry: Watched = {
    lastReceivedMs: performance.now(),
    onDeadline: (silentMs) => {
      if (stopped) return;
      stop();
      deps.onDeadline(silentMs);
    },
  };
  const unwatch = watch(deadlineMs, entry);

  let sendTimer: NodeJS.Timeout | undefined;
  if (send) {
    sendTimer = setInterval(() => deps.sendHeartbeat(++sequence), intervalMs);
    sendTimer.unref();
  }

  function stop(): void {
    stopped = true;
    unwatch();
    if (sendTimer) clearInterval(sendTimer);
  }

  return {
    received() {
      entry.lastReceivedMs = performance.now();
    },
    stop,
  };
}
