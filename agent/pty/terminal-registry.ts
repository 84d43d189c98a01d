// The terminals running on this agent, by tunnel session, so that closing a
// tunnel (or losing the link) ends every terminal opened in it at once, with
// its whole process tree, even if the server never cancels their channels.
import { GuruError } from "../../lib/errors.ts";

export interface TerminalRegistry {
  /** Registers a terminal; abort() is called when its session ends. Returns the unregister function. */
  add(sessionId: string, abort: (reason: GuruError) => void): () => void;
  endSession(sessionId: string, reason: string): number;
  endAll(reason: string): number;
  readonly size: number;
}

export function createTerminalRegistry(): TerminalRegistry {
  const bySession = new Map<string, Set<(reason: GuruError) => void>>();
  const end = (sessionId: string, reason: string): number => {
    const aborts = bySession.get(sessionId);
    if (aborts === undefined) return 0;
    bySession.delete(sessionId);
    for (const abort of aborts) abort(new GuruError("canceled", reason));
    return aborts.size;
  };
  return {
    add(sessionId, abort) {
      let set = bySession.get(sessionId);
      if (set === undefined) {
        set = new Set();
        bySession.set(sessionId, set);
      }
      set.add(abort);
      return () => {
        set.delete(abort);
        if (set.size === 0 && bySession.get(sessionId) === set) bySession.delete(sessionId);
      };
    },
    endSession: end,
    endAll(reason) {
      let n = 0;
      for (const sessionId of [...bySession.keys()]) n += end(sessionId, reason);
      return n;
    },
    get size() {
      let n = 0;
      for (const set of bySession.values()) n += set.size;
      return n;
    },
  };
}
