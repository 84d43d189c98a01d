// Heartbeat mode or tunnel mode: the agent holds at most one tunnel, and
// operations run only inside it.
import { GuruError } from "../lib/errors.ts";

export interface ActiveTunnel {
  sessionId: string;
  technicianId: string;
  technicianName: string;
  openedAt: Date;
  /** What the person at the endpoint approved; undefined: no consent was asked, the policy alone decides. */
  capabilities?: string[];
}

export function createTunnelState() {
  let active: ActiveTunnel | undefined;
  return {
    get active() {
      return active;
    },
    /** Enters tunnel mode; returns why not when another tunnel is active. */
    open(tunnel: Omit<ActiveTunnel, "openedAt">): { ok: true } | { ok: false; reason: string } {
      if (active !== undefined && active.sessionId !== tunnel.sessionId) {
        return { ok: false, reason: `another tunnel (session ${active.sessionId}) is active` };
      }
      active ??= { ...tunnel, openedAt: new Date() };
      return { ok: true };
    },
    close(sessionId?: string): boolean {
      if (active === undefined || (sessionId !== undefined && active.sessionId !== sessionId)) return false;
      active = undefined;
      return true;
    },
    /** An approval covers the capabilities it listed and no others. */
    requireCapability(capability: string): void {
      if (active?.capabilities !== undefined && !active.capabilities.includes(capability)) {
        throw new GuruError(
          "denied",
          `the person at the endpoint approved ${active.capabilities.join(", ") || "nothing"} for this session, not ${capability}`,
          {
            details: { capability },
          },
        );
      }
    },
    /** The tunnel an operation claims to belong to must be the active one. */
    require(sessionId: string): ActiveTunnel {
      if (active === undefined)
        throw new GuruError("failed_precondition", "the agent has no active tunnel", { reason: "SESSION_NOT_ACTIVE", metadata: { sessionId } });
      if (active.sessionId !== sessionId) throw new GuruError("denied", `session ${sessionId} is not the agent's active tunnel`, { metadata: { sessionId } });
      return active;
    },
  };
}

export type TunnelState = ReturnType<typeof createTunnelState>;
