// The terminal socket's second way in: a viewer token minted through the
// integration API, presented by the web viewer a partner's page embeds. The
// terminal opens on the token's partner session, as the technician that
// session carries; an attended session still waiting for consent makes the
// terminal wait (the client is told) until it is approved, denied or ended.
import { GuruError } from "../../lib/errors.ts";
import type { RedeemedViewerToken } from "../auth/viewer-tokens.ts";
import type { Principal } from "../domain/principal.ts";
import type { SessionEvents, SessionEvent } from "../domain/session-events.ts";
import type { Store } from "../store/index.ts";
import { terminalInput, type TerminalAuthenticator, type TerminalRequestContext } from "./terminal-socket.ts";

export interface ViewerAuthenticatorOptions {
  viewerTokens: { redeemViewerToken(token: string, origin: string): Promise<RedeemedViewerToken> };
  store: Pick<Store, "partnerSessions">;
  events: Pick<SessionEvents, "subscribe">;
  /** Opens with technician tokens: every open message without a viewer token goes here. */
  technician: TerminalAuthenticator;
  /** Longest wait for a pending session to become active (the consent timeout and a margin). */
  maxPendingWaitMs: number;
}

/**
 * The origin a viewer token is checked against. A browser sets the Origin
 * header itself: a socket from the server's own viewer page (Origin = the
 * host it connects to) presents the embedding page's origin the viewer saw on
 * the token's postMessage, which only a page allowed to frame the viewer can
 * send; any other page presents its own origin.
 */
function presentedOrigin(open: { viewerOrigin: string }, context: Pick<TerminalRequestContext, "origin" | "host">): string {
  const origin = context.origin ?? "";
  let fromServerPage = false;
  try {
    fromServerPage = context.host !== undefined && new URL(origin).host === context.host.toLowerCase();
  } catch {
    fromServerPage = false;
  }
  return fromServerPage && open.viewerOrigin !== "" ? open.viewerOrigin : origin;
}

export function createViewerAuthenticator(options: ViewerAuthenticatorOptions): TerminalAuthenticator {
  const { store, events } = options;

  /** Resolves once the session is active; refuses when it ends, is denied, or waits too long. */
  async function untilActive(redeemed: RedeemedViewerToken, context: TerminalRequestContext): Promise<void> {
    let settle: ((event: SessionEvent) => void) | undefined;
    const decided = new Promise<SessionEvent>((resolve) => (settle = resolve));
    const unsubscribe = events.subscribe(redeemed.keyId, (event) => {
      if (event.session.id === redeemed.sessionId && ["active", "denied", "timed_out", "closed"].includes(event.type)) settle?.(event);
    });
    try {
      // Subscribed first, then read: an answer between the two is not missed.
      const session = await store.partnerSessions.get(redeemed.sessionId);
      if (session?.status === "active") return;
      if (session === undefined || session.status !== "pending") {
        throw new GuruError("failed_precondition", "the viewer token's session has ended", { reason: "SESSION_ENDED" });
      }
      context.waiting("consent", "waiting for the person at the endpoint to allow the session");
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), options.maxPendingWaitMs)));
      const event = await Promise.race([decided, timedOut]).finally(() => clearTimeout(timer));
      if (event === undefined)
        throw new GuruError("timeout", `the session was not allowed within ${options.maxPendingWaitMs} ms`, {
          reason: "TIMEOUT",
          metadata: { timeoutMs: options.maxPendingWaitMs },
        });
      if (event.type === "denied")
        throw new GuruError("denied", `the person at the endpoint denied the session${event.reason ? `: ${event.reason}` : ""}`, { reason: "CONSENT_DENIED" });
      if (event.type === "timed_out") throw new GuruError("denied", "the person at the endpoint did not answer in time", { reason: "CONSENT_TIMED_OUT" });
      if (event.type === "closed")
        throw new GuruError("failed_precondition", `the session ended${event.reason ? `: ${event.reason}` : ""}`, { reason: "SESSION_ENDED" });
    } finally {
      unsubscribe();
    }
  }

  return async (open, context) => {
    if (open.viewerToken === "") return options.technician(open, context);
    if (open.token !== "") throw new GuruError("invalid", "give either a technician token or a viewer token, not both");
    const redeemed = await options.viewerTokens.redeemViewerToken(open.viewerToken, presentedOrigin(open, context));
    if (open.sessionId !== "" && open.sessionId !== redeemed.sessionId) {
      throw new GuruError("invalid", `the viewer token is for session ${redeemed.sessionId}, not ${open.sessionId}`);
    }
    // A terminal runs commands: a session granted no exec gets none.
    if (!redeemed.capabilities.includes("exec")) {
      throw new GuruError("denied", `session ${redeemed.sessionId} was not granted the exec capability a terminal needs`);
    }
    await untilActive(redeemed, context);
    const principal: Principal = { technicianId: redeemed.technicianId, name: redeemed.technicianName, role: "tech", tokenId: redeemed.jti };
    return { principal, origin: redeemed.origin, input: terminalInput(open, redeemed.sessionId) };
  };
}
