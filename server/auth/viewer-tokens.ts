// Viewer tokens: JWTs with their own audience (a technician token check
// refuses them and the viewer refuses technician tokens), bound to one
// session and one origin the partner's key allows, redeemable once within at
// most five minutes, revoked when the session ends.
import { randomUUID } from "node:crypto";
import { SignJWT, decodeJwt, jwtVerify, errors as joseErrors, type JWTPayload } from "jose";
import { GuruError, type ErrorReason } from "../../lib/errors.ts";
import { requireUuid } from "../domain/ids.ts";
import type { PartnerKey } from "../domain/partner-key.ts";
import type { Store } from "../store/index.ts";
import type { SigningKeys } from "./signing-keys.ts";

const viewerAudience = "guru-viewer";
const issuer = "guru-server";
export const maxViewerTokenTtlSeconds = 300;
const defaultViewerTokenTtlSeconds = 60;

export interface RedeemedViewerToken {
  sessionId: string;
  agentId: string;
  technicianId: string;
  technicianName: string;
  capabilities: string[];
  origin: string;
  keyId: string;
  /** The token's own id: what the viewer's work is audited under. */
  jti: string;
}

/** "https://Example.com:443/" → "https://example.com": origins compare as the browser sends them. */
export function normalizeOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
    if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/**
 * Viewer tokens open their session's live terminal and nothing else: a route
 * that takes technician tokens refuses one by name, so the caller learns why.
 * The claims are read unverified, only to choose the message; the technician
 * check would refuse the token anyway.
 */
export function refuseViewerToken(credential: string): void {
  let audience: unknown;
  try {
    audience = decodeJwt(credential).aud;
  } catch {
    return;
  }
  if (audience === viewerAudience || (Array.isArray(audience) && audience.includes(viewerAudience))) {
    throw new GuruError("unauthenticated", "viewer tokens open only their session's live terminal; replaying a recording needs a technician token", {
      reason: "VIEWER_TOKEN_REFUSED",
    });
  }
}

export function createViewerTokens(deps: { store: Store; keys: SigningKeys; viewerUrl(sessionId: string): string }) {
  const { store, keys } = deps;

  const refuse = (kind: "denied" | "unauthenticated", message: string, reason: ErrorReason): never => {
    throw new GuruError(kind, message, { reason });
  };

  async function mint(key: PartnerKey, input: { sessionId: string; origin: string; ttlSeconds: number }) {
    requireUuid(input.sessionId, "session id");
    const ttlSeconds = input.ttlSeconds === 0 ? defaultViewerTokenTtlSeconds : input.ttlSeconds;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > maxViewerTokenTtlSeconds) {
      throw new GuruError("invalid", `ttlSeconds must be 1-${maxViewerTokenTtlSeconds}`, { reason: "INVALID_TTL" });
    }
    const origin = normalizeOrigin(input.origin);
    if (origin === undefined)
      throw new GuruError("invalid", `origin "${input.origin}" is not a web origin such as https://rmm.example.com`, { reason: "INVALID_ORIGIN" });
    if (!key.allowedOrigins.map(normalizeOrigin).includes(origin)) {
      refuse("denied", `origin ${origin} is not one of integration key ${key.name}'s allowed origins`, "ORIGIN_NOT_ALLOWED");
    }
    const session = await store.partnerSessions.get(input.sessionId);
    if (session === undefined || session.keyId !== key.keyId) {
      throw new GuruError("not_found", `no session ${input.sessionId} of this integration key`, { reason: "SESSION_NOT_FOUND" });
    }
    if (session.status !== "active" && session.status !== "pending") {
      throw new GuruError("failed_precondition", `session ${session.id} is ${session.status}; a viewer token needs a live session`, {
        reason: "SESSION_ENDED",
      });
    }
    const jti = randomUUID();
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    const token = await new SignJWT({ sid: session.id, origin })
      .setProtectedHeader({ alg: keys.alg, kid: keys.kid, typ: "JWT" })
      .setIssuer(issuer)
      .setAudience(viewerAudience)
      .setSubject(key.keyId)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(Math.ceil(expiresAt.getTime() / 1000))
      .sign(keys.privateKey);
    await store.viewerTokens.record({ jti, sessionId: session.id, keyId: key.keyId, origin, expiresAt });
    return { token, viewerUrl: deps.viewerUrl(session.id), expiresAt, jti };
  }

  /** The viewer's side: a token presented from a page on `origin`. Succeeds once; every misuse is refused (and audited) and consumes nothing. */
  async function redeemViewerToken(token: string, origin: string): Promise<RedeemedViewerToken> {
    try {
      return await redeem(token, origin);
    } catch (err) {
      const reason = err instanceof GuruError ? err.reason : "internal";
      await store.integrationKeys.audit({ method: "RedeemViewerToken", outcome: "refused", reason: (err as Error).message, detail: { reason, origin } });
      throw err;
    }
  }

  async function redeem(token: string, origin: string): Promise<RedeemedViewerToken> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys.publicKey, {
        issuer,
        audience: viewerAudience,
        algorithms: [keys.alg],
        requiredClaims: ["exp", "jti", "sub"],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return refuse("unauthenticated", "the viewer token has expired; mint a new one", "VIEWER_TOKEN_EXPIRED");
      return refuse("unauthenticated", "not a viewer token of this server", "VIEWER_TOKEN_INVALID");
    }
    const jti = String(payload.jti);
    const presentedOrigin = normalizeOrigin(origin);
    if (presentedOrigin === undefined || presentedOrigin !== payload.origin) {
      refuse("denied", `the viewer token is bound to another origin than ${origin}`, "VIEWER_TOKEN_WRONG_ORIGIN");
    }
    const redeemed = await store.viewerTokens.redeem(jti);
    if (redeemed === undefined) {
      const known = await store.viewerTokens.get(jti);
      if (known === undefined) return refuse("unauthenticated", "the viewer token is not known to this server", "VIEWER_TOKEN_INVALID");
      if (known.revokedAt !== null) return refuse("unauthenticated", "the viewer token was revoked: its session ended", "VIEWER_TOKEN_REVOKED");
      if (known.redeemedAt !== null) return refuse("unauthenticated", "the viewer token was already used; mint a new one", "VIEWER_TOKEN_USED");
      return refuse("unauthenticated", "the viewer token has expired; mint a new one", "VIEWER_TOKEN_EXPIRED");
    }
    const session = await store.partnerSessions.get(redeemed.sessionId);
    if (session === undefined || (session.status !== "active" && session.status !== "pending")) {
      return refuse("unauthenticated", "the viewer token's session has ended", "VIEWER_TOKEN_REVOKED");
    }
    await store.integrationKeys.audit({
      keyId: redeemed.keyId,
      method: "RedeemViewerToken",
      outcome: "ok",
      sessionId: session.id,
      agentId: session.agentId,
      detail: { origin: redeemed.origin },
    });
    return {
      sessionId: session.id,
      agentId: session.agentId,
      technicianId: session.technicianId,
      technicianName: session.technicianName,
      capabilities: session.capabilities,
      origin: redeemed.origin,
      keyId: redeemed.keyId,
      jti,
    };
  }

  return { mint, redeemViewerToken };
}

export type ViewerTokens = ReturnType<typeof createViewerTokens>;
