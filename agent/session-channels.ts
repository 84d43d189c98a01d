// The channels each tunnel's operations run on, so that leaving a tunnel ends
// its work: on TunnelClose every channel of that session is ended with a
// "canceled" error, which aborts its signal (a command's process tree is
// killed, a download stops reading) and ends an upload's channel without
// deleting the partial (a later tunnel resumes it).
import type { ChannelOpen } from "../gen/guru/wire/v1/wire_pb.js";
import { GuruError } from "../lib/errors.ts";
import type { Channel } from "../lib/wire/link.ts";

/** The tunnel an operation says it belongs to; every operation request carries one. */
export function sessionOf(open: ChannelOpen): string | undefined {
  const value = open.request.value as { sessionId?: unknown } | undefined;
  return typeof value?.sessionId === "string" && value.sessionId !== "" ? value.sessionId : undefined;
}

export function createSessionChannels() {
  const bySession = new Map<string, Set<Channel>>();

  return {
    /** Tracks the channel until it ends. */
    add(sessionId: string, channel: Channel): void {
      let set = bySession.get(sessionId);
      if (set === undefined) {
        set = new Set();
        bySession.set(sessionId, set);
      }
      set.add(channel);
      void channel.done.then(() => {
        set.delete(channel);
        if (set.size === 0 && bySession.get(sessionId) === set) bySession.delete(sessionId);
      });
    },

    /** Ends every channel of the session not already canceled; returns how many it ended. */
    abortSession(sessionId: string, reason: string): number {
      const set = bySession.get(sessionId);
      if (set === undefined) return 0;
      bySession.delete(sessionId);
      let ended = 0;
      for (const channel of set) {
        // Already canceled by the server: it is stopping, and answers with its result.
        if (channel.signal.aborted) continue;
        channel.sendError(new GuruError("canceled", `the tunnel closed: ${reason}`));
        ended++;
      }
      return ended;
    },

    count(sessionId: string): number {
      return bySession.get(sessionId)?.size ?? 0;
    },
  };
}

export type SessionChannels = ReturnType<typeof createSessionChannels>;
