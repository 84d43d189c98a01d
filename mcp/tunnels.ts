// Tunnels held by `guru mcp`, one per agent. The first tool call on an agent
// opens one (or reuses the technician's active one); later calls lease it; it
// closes after idleMs with no lease and no call; closeAll() closes every one
// on exit and waits for the CloseTunnel calls, so the server never keeps a
// tunnel that no one will use.
import { GuruError } from "../lib/errors.ts";
import type { Logger } from "../lib/logging.ts";
import type { GuruApi } from "./api.ts";

export interface TunnelLease {
  sessionId: string;
  /** The server refused the session (closed or expired under us): the next lease opens a new one. */
  invalidate(): void;
  release(): void;
}

interface Entry {
  agentId: string;
  agentName: string;
  session: Promise<string>;
  sessionId?: string;
  leases: number;
  idleTimer?: NodeJS.Timeout;
}

export function createTunnelManager(deps: { api: Pick<GuruApi, "openOrReuseTunnel" | "closeTunnel">; idleMs: number; logger: Logger }) {
  const { api, logger } = deps;
  const entries = new Map<string, Entry>();
  // Closes in flight per agent: a new lease waits for them, or ListSessions
  // could hand back the session being closed.
  const closing = new Map<string, Promise<void>>();
  let shutDown = false;

  function closeEntry(entry: Entry, why: string): Promise<void> {
    clearTimeout(entry.idleTimer);
    if (entries.get(entry.agentId) === entry) entries.delete(entry.agentId);
    const done = entry.session
      .then(async (sessionId) => {
        await api.closeTunnel(sessionId);
        logger.info({ agent: entry.agentName, sessionId, why }, "tunnel closed");
      })
      .catch((err: unknown) => {
        // Already closed (expired, agent gone) is the common case here; nothing to undo.
        logger.debug({ err, agent: entry.agentName, why }, "tunnel close skipped");
      })
      .finally(() => {
        if (closing.get(entry.agentId) === done) closing.delete(entry.agentId);
      });
    closing.set(entry.agentId, done);
    return done;
  }

  function armIdle(entry: Entry): void {
    clearTimeout(entry.idleTimer);
    if (entry.leases > 0 || shutDown) return;
    entry.idleTimer = setTimeout(() => void closeEntry(entry, "idle"), deps.idleMs);
    // An idle timer alone must not keep the process alive after stdin ends.
    entry.idleTimer.unref();
  }

  return {
    async acquire(agent: { id: string; name: string }): Promise<TunnelLease> {
      if (shutDown) throw new GuruError("unavailable", "guru mcp is shutting down");
      let entry = entries.get(agent.id);
      if (entry === undefined) {
        const pending = closing.get(agent.id);
        const created: Entry = {
          agentId: agent.id,
          agentName: agent.name,
          leases: 0,
          session: (async () => {
            if (pending) await pending;
            const { sessionId, opened } = await api.openOrReuseTunnel(agent.id);
            logger.info({ agent: agent.name, sessionId, opened }, opened ? "tunnel opened" : "reusing the technician's active tunnel");
            return sessionId;
          })(),
        };
        entry = created;
        entries.set(agent.id, created);
        // A failed open leaves nothing behind: the next call tries again.
        created.session.then(
          (id) => (created.sessionId = id),
          () => {
            if (entries.get(agent.id) === created) entries.delete(agent.id);
          },
        );
      }
      const held = entry;
      held.leases++;
      clearTimeout(held.idleTimer);
      let sessionId: string;
      try {
        sessionId = await held.session;
      } catch (err) {
        held.leases--;
        throw err;
      }
      let released = false;
      return {
        sessionId,
        invalidate() {
          if (entries.get(held.agentId) === held) entries.delete(held.agentId);
          clearTimeout(held.idleTimer);
        },
        release() {
          if (released) return;
          released = true;
          held.leases--;
          if (entries.get(held.agentId) === held) armIdle(held);
        },
      };
    },

    /** A tunnel to this agent is open (not merely being opened). */
    holds(agentId: string): boolean {
      return entries.get(agentId)?.sessionId !== undefined;
    },

    /** The tunnels held now, for tests and logs. */
    active(): { agentId: string; agentName: string; sessionId?: string; leases: number }[] {
      return [...entries.values()].map((e) => ({ agentId: e.agentId, agentName: e.agentName, sessionId: e.sessionId, leases: e.leases }));
    },

    /** Closes every tunnel and waits for the calls (bounded by timeoutMs). */
    async closeAll(timeoutMs = 5000): Promise<void> {
      shutDown = true;
      const all = [...entries.values()].map((e) => closeEntry(e, "guru mcp exiting"));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([Promise.allSettled([...all, ...closing.values()]), timeout]);
      clearTimeout(timer);
    },
  };
}

export type TunnelManager = ReturnType<typeof createTunnelManager>;
