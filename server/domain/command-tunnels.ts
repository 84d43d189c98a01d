// The tunnel of a command that names only its agent (RunCommand and
// StreamCommand with agent_id): the caller's active tunnel to the agent, or
// one opened for the command and closed when it ends. Opening and closing go
// through the session service, so they are checked, refused and audited as
// OpenTunnel and CloseTunnel are. A tunnel opened here stays open while other
// such commands of the same caller on this server still run in it: the last
// one closes it (concurrent commands wait for one open rather than racing for
// the agent's one active tunnel). A tunnel the caller opened themselves is
// never closed here. Across servers of a cluster the count is per server: a
// command sharing a tunnel that another server opened for a command may end
// with that tunnel (canceled, as when CloseTunnel ends a tunnel in use).
import type { Logger } from "../../lib/logging.ts";
import { isGuruError } from "../../lib/errors.ts";
import type { Principal } from "./principal.ts";
import type { SessionService } from "./sessions.ts";

export interface CommandTunnel {
  sessionId: string;
  /** The command ended: closes the tunnel if it was opened for it and nothing else runs in it. */
  release(): Promise<void>;
}

export function createCommandTunnels(sessions: Pick<SessionService, "open" | "close" | "list">, logger: Logger) {
  /** Tunnels opened here, by session id: how many commands run in each. */
  const users = new Map<string, number>();
  /** Opens in progress, by technician and agent: a concurrent command waits for the same tunnel. */
  const opening = new Map<string, Promise<string>>();

  async function release(principal: Principal, sessionId: string): Promise<void> {
    const left = (users.get(sessionId) ?? 1) - 1;
    if (left > 0) {
      users.set(sessionId, left);
      return;
    }
    users.delete(sessionId);
    try {
      await sessions.close(principal, sessionId);
    } catch (err) {
      // The command's answer stands; the tunnel ends by idle expiry if it could not be closed now.
      logger.warn({ err, sessionId }, "could not close the tunnel opened for a command");
    }
  }

  /** A command runs in the tunnel: one more user of a tunnel opened here; a tunnel of the caller's own is never closed by us. */
  function borrow(principal: Principal, sessionId: string): CommandTunnel {
    const count = users.get(sessionId);
    if (count === undefined) return { sessionId, release: async () => {} };
    users.set(sessionId, count + 1);
    return { sessionId, release: () => release(principal, sessionId) };
  }

  /** Opens a tunnel for commands, once per technician and agent at a time; its users count from 0. */
  function openFor(principal: Principal, agentId: string): Promise<string> {
    const key = `${principal.technicianId}/${agentId}`;
    let pending = opening.get(key);
    if (pending === undefined) {
      pending = sessions
        .open(principal, agentId)
        .then((session) => {
          users.set(session.id, 0);
          return session.id;
        })
        .finally(() => opening.delete(key));
      opening.set(key, pending);
    }
    return pending;
  }

  async function acquire(principal: Principal, agentId: string): Promise<CommandTunnel> {
    const inProgress = opening.get(`${principal.technicianId}/${agentId}`);
    for (let attempt = 0; ; attempt++) {
      if (inProgress === undefined || attempt > 0) {
        const [active] = await sessions.list(principal, { agentId, status: "active" });
        if (active !== undefined) return borrow(principal, active.id);
      }
      try {
        const sessionId = await openFor(principal, agentId);
        return borrow(principal, sessionId);
      } catch (err) {
        // Opened in between by another command of the caller's (on another server): run in that one.
        const holder = isGuruError(err) && err.reason === "TUNNEL_ACTIVE" ? err.details.holderTechnicianId : undefined;
        if (attempt === 0 && holder === principal.technicianId) continue;
        throw err;
      }
    }
  }

  return { acquire };
}

export type CommandTunnels = ReturnType<typeof createCommandTunnels>;
