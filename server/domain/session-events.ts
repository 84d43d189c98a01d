// Partner session events, fanned out to WatchSessions streams of the key
// that owns the session. In process: a partner watches the server it calls
// (with several server processes this becomes a bus subject per key).
import type { PartnerSessionRecord } from "../store/partner-sessions.ts";

export type SessionEventType = "pending" | "consent_asked" | "approved" | "denied" | "timed_out" | "active" | "closed";

export interface SessionEvent {
  type: SessionEventType;
  session: PartnerSessionRecord;
  reason: string;
  at: Date;
}

export type SessionEventListener = (event: SessionEvent) => void;

export function createSessionEvents() {
  const byKey = new Map<string, Set<SessionEventListener>>();
  return {
    publish(event: SessionEvent): void {
      for (const listener of byKey.get(event.session.keyId) ?? []) listener(event);
    },
    /** Returns the unsubscribe function. */
    subscribe(keyId: string, listener: SessionEventListener): () => void {
      const set = byKey.get(keyId) ?? new Set();
      byKey.set(keyId, set);
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) byKey.delete(keyId);
      };
    },
    get listenerCount(): number {
      let n = 0;
      for (const set of byKey.values()) n += set.size;
      return n;
    },
  };
}

export type SessionEvents = ReturnType<typeof createSessionEvents>;
