// The operations running in each tunnel on this server process: commands,
// downloads and upload channels. When a tunnel ends (closed, force-closed,
// expired, its token revoked, its technician disabled, its agent gone) its
// work ends with it: each operation is told why and cancels its agent channel.
// The agent does the same on its side when TunnelClose arrives, so work also
// stops when the tunnel was ended by another server process.
import { GuruError } from "../../lib/errors.ts";

export interface WorkOwner {
  sessionId: string;
  technicianId: string;
  /** The token the operation was started with; revoking it cancels the operation. */
  tokenId?: string;
}

export type WorkMatch = { sessionId: string } | { tokenId: string } | { technicianId: string };

interface Entry extends WorkOwner {
  cancel(reason: string): void;
}

export function createSessionWork() {
  const entries = new Set<Entry>();

  function matches(entry: Entry, match: WorkMatch): boolean {
    if ("sessionId" in match) return entry.sessionId === match.sessionId;
    if ("tokenId" in match) return entry.tokenId === match.tokenId;
    return entry.technicianId === match.technicianId;
  }

  /** Registers an operation; call the returned function when it ends. */
  function track(owner: WorkOwner, cancel: (reason: string) => void): () => void {
    const entry: Entry = { ...owner, cancel };
    entries.add(entry);
    return () => entries.delete(entry);
  }

  /**
   * A signal that aborts (with a GuruError "canceled" naming the reason) when
   * the operation's tunnel ends, or when `also` aborts. Release it when done.
   */
  function signalFor(owner: WorkOwner, also?: AbortSignal): { signal: AbortSignal; release(): void } {
    const controller = new AbortController();
    const release = track(owner, (reason) => controller.abort(tunnelEnded(reason)));
    const signal = also === undefined ? controller.signal : AbortSignal.any([also, controller.signal]);
    return { signal, release };
  }

  /** Cancels every matching operation; returns how many were told. */
  function cancel(match: WorkMatch, reason: string): number {
    let n = 0;
    for (const entry of [...entries]) {
      if (!matches(entry, match)) continue;
      entries.delete(entry);
      entry.cancel(reason);
      n++;
    }
    return n;
  }

  return {
    track,
    signalFor,
    cancel,
    /** Operations running in one tunnel (tests, metrics). */
    count: (match?: WorkMatch) => (match === undefined ? entries.size : [...entries].filter((e) => matches(e, match)).length),
  };
}

export type SessionWork = ReturnType<typeof createSessionWork>;

/** The abort reason (and error) of an operation whose tunnel ended. */
function tunnelEnded(reason: string): GuruError {
  return new GuruError("canceled", `the tunnel ended (${reason})`, { reason: "TUNNEL_ENDED", details: { tunnelEnded: reason } });
}

/** The GuruError a signal aborted with, when it was the tunnel ending. */
export function tunnelEndedError(signal: AbortSignal | undefined): GuruError | undefined {
  const reason: unknown = signal?.aborted ? signal.reason : undefined;
  return reason instanceof GuruError && reason.details.tunnelEnded !== undefined ? reason : undefined;
}
