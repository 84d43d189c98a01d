// The tunnel of a command that names only its agent (RunCommand and
// StreamCommand with agent_id): the caller's active tunnel to the agent, or
// one opened for the command and closed when it ends. Opening and closing go
// through the session service, so they are checked, refused and audited as
// OpenTunnel and CloseTunnel are. A tunnel opened here stays open while other
// such commands of the same caller still run in it, on any server of a
// cluster: the database counts them (tunnel_sessions.command_users), and
// whichever command ends last closes it. A tunnel the caller opened
// themselves is never closed here.
import { GuruError, isGuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { SessionsRepository } from "../store/sessions.ts";
import type { Principal } from "./principal.ts";
import type { SessionService } from "./sessions.ts";

export interface CommandTunnel {
  sessionId: string;
  /** The command ended: closes the tunnel if it was opened for commands and this was the last one in it. */
  release(): Promise<void>;
}

/** How often a command looks again after its tunnel ended under it or another server opened one. */
const maxAttempts = 5;

export function createCommandTunnels(
  sessions: Pick<SessionService, "open" | "close" | "list">,
  uses: Pick<SessionsRepository, "joinCommands" | "leaveCommands">,
  logger: Logger,
) {
  /** Opens in progress here, by technician and agent: a concurrent command joins the same tunnel. */
  const opening = new Map<string, Promise<string>>();

  function held(principal: Principal, sessionId: string): CommandTunnel {
    let released = false;
    return {
      sessionId,
      async release() {
        if (released) return;
        released = true;
        try {
          if ((await uses.leaveCommands(sessionId)) === 0) await sessions.close(principal, sessionId);
        } catch (err) {
          // The command's answer stands; the tunnel ends by idle expiry if it could not be closed now.
          logger.warn({ err, sessionId }, "could not close the tunnel opened for a command");
        }
      },
    };
  }

  /** Joins the tunnel if it is one for commands; undefined when it ended (or its last command is closing it). */
  async function join(principal: Principal, sessionId: string): Promise<CommandTunnel | undefined> {
    const joined = await uses.joinCommands(sessionId);
    if (joined === "joined") return held(principal, sessionId);
    if (joined === "not_for_commands") return { sessionId, release: async () => {} };
    // Its last command ended: closing it is that command's job, but the
    // server running it may have died in between. Closing twice is harmless.
    await sessions.close(principal, sessionId).catch(() => undefined);
    return undefined;
  }

  /** Opens a tunnel for commands, once per technician and agent at a time here: the opener holds its first use, the others join. */
  async function openFor(principal: Principal, agentId: string): Promise<CommandTunnel | undefined> {
    const key = `${principal.technicianId}/${agentId}`;
    const pending = opening.get(key);
    if (pending !== undefined) return join(principal, await pending);
    const opened = sessions
      .open(principal, agentId, { forCommands: true })
      .then((session) => session.id)
      .finally(() => opening.delete(key));
    opening.set(key, opened);
    return held(principal, await opened);
  }

  async function acquire(principal: Principal, agentId: string): Promise<CommandTunnel> {
    for (let attempt = 1; ; attempt++) {
      if (!opening.has(`${principal.technicianId}/${agentId}`)) {
        const [active] = await sessions.list(principal, { agentId, status: "active" });
        const joined = active === undefined ? undefined : await join(principal, active.id);
        if (joined !== undefined) return joined;
      }
      try {
        const opened = await openFor(principal, agentId);
        if (opened !== undefined) return opened;
      } catch (err) {
        // Opened in between by another command of the caller's (on another server): join that one.
        const holder = isGuruError(err) && err.reason === "TUNNEL_ACTIVE" ? err.details.holderTechnicianId : undefined;
        if (holder !== principal.technicianId || attempt >= maxAttempts) throw err;
        continue;
      }
      // The tunnel this command was to join ended before it could.
      if (attempt >= maxAttempts) throw new GuruError("unavailable", "the tunnel for this command kept closing while it opened; retry");
    }
  }

  return { acquire };
}

export type CommandTunnels = ReturnType<typeof createCommandTunnels>;
