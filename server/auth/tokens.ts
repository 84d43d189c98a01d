// Technician tokens: JWTs signed by the server, with expiry, a jti recorded
// for revocation, and the technician's role.
import { randomUUID } from "node:crypto";
import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload } from "jose";
import { GuruError } from "../../lib/errors.ts";
import type { Store } from "../store/index.ts";
import type { SigningKeys } from "./signing-keys.ts";
import type { Principal, Role } from "../domain/principal.ts";
import { createCheckedTokens } from "./checked-tokens.ts";

export interface IssuedToken {
  token: string;
  tokenId: string;
  expiresAt: Date;
}

const issuer = "guru-server";
const audience = "guru-api";

export interface TokenServiceOptions {
  store: Store;
  keys: SigningKeys;
  defaultTtlSeconds: number;
  /** How long a token the database confirmed is trusted before asking again (0: ask every time). */
  checkCacheMs?: number;
  /** A revocation here: other server processes are told, so they forget the tokens at once too. */
  onRevoked?(what: RevokedTokens): void;
}

/** Tokens that stopped being valid: one, or all of a technician's. */
export type RevokedTokens = { tokenId: string } | { technicianId: string };

/** The longest lifetime a token may be issued with, whatever is asked (config and IssueToken). */
export const maxTokenTtlSeconds = 30 * 24 * 3600;

export function createTokenService(deps: TokenServiceOptions) {
  const { store, keys } = deps;
  const checked = createCheckedTokens({ ttlMs: deps.checkCacheMs ?? 0 });

  async function issue(technicianId: string, ttlSeconds = deps.defaultTtlSeconds): Promise<IssuedToken> {
    const tech = await store.technicians.get(technicianId);
    if (tech === undefined) throw new GuruError("not_found", `no technician ${technicianId}`, { reason: "TECHNICIAN_NOT_FOUND", metadata: { technicianId } });
    if (tech.disabledAt !== null)
      throw new GuruError("failed_precondition", `technician ${tech.name} is disabled; no token can be issued to them`, { metadata: { technicianId } });
    const tokenId = randomUUID();
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    const token = await new SignJWT({ role: tech.role, name: tech.name })
      .setProtectedHeader({ alg: keys.alg, kid: keys.kid, typ: "JWT" })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(tech.id)
      .setJti(tokenId)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(keys.privateKey);
    await store.tokens.record({ jti: tokenId, technicianId: tech.id, expiresAt });
    return { token, tokenId, expiresAt };
  }

  async function verify(token: string): Promise<Principal> {
    const known = checked.get(token);
    if (known !== undefined) return known;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys.publicKey, { issuer, audience, algorithms: [keys.alg], requiredClaims: ["exp", "jti", "sub"] }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired)
        throw new GuruError("unauthenticated", "the token has expired; ask an admin for a new one", { reason: "TOKEN_EXPIRED" });
      throw new GuruError("unauthenticated", "the token is not valid (bad signature or format)", { reason: "TOKEN_INVALID" });
    }
    const technicianId = payload.sub;
    const tokenId = payload.jti;
    if (typeof technicianId !== "string" || typeof tokenId !== "string") {
      throw new GuruError("unauthenticated", "the token lacks a subject or id", { reason: "TOKEN_INVALID" });
    }
    const holder = await store.tokens.findHolder(tokenId);
    // Every token this server signs is recorded; an unrecorded one was not issued here or was swept.
    if (holder === undefined || holder.technicianId !== technicianId)
      throw new GuruError("unauthenticated", "the token is not known to this server", { reason: "TOKEN_INVALID" });
    if (holder.disabledAt !== null) throw new GuruError("unauthenticated", `technician ${holder.name} is disabled`, { reason: "TECHNICIAN_DISABLED" });
    if (holder.revokedAt !== null) throw new GuruError("unauthenticated", "the token has been revoked", { reason: "TOKEN_REVOKED" });
    const principal: Principal = { technicianId, name: holder.name, role: holder.role as Role, tokenId };
    checked.remember(token, principal, (payload.exp ?? 0) * 1000); // exp is a required claim
    return principal;
  }

  /** Revokes a token; false when there is no such token. Takes effect here at once. */
  async function revoke(tokenId: string): Promise<boolean> {
    const revoked = await store.tokens.revoke(tokenId);
    checked.forgetTokenId(tokenId);
    deps.onRevoked?.({ tokenId });
    return revoked;
  }

  /** Revokes every live token of the technician; takes effect here at once. Returns how many. */
  async function revokeAllFor(technicianId: string): Promise<number> {
    const revoked = await store.tokens.revokeAllForTechnician(technicianId);
    checked.forgetTechnician(technicianId);
    deps.onRevoked?.({ technicianId });
    return revoked;
  }

  /** Disables the technician: every token of theirs is refused from now on (here at once). */
  async function disableTechnician(technicianId: string) {
    const tech = await store.technicians.disable(technicianId);
    checked.forgetTechnician(technicianId);
    deps.onRevoked?.({ technicianId });
    return tech;
  }

  /** Another process revoked these: stop trusting them here at once. */
  function forget(what: RevokedTokens): void {
    if ("tokenId" in what) checked.forgetTokenId(what.tokenId);
    else checked.forgetTechnician(what.technicianId);
  }

  return { issue, verify, revoke, revokeAllFor, disableTechnician, forget };
}

export type TokenService = ReturnType<typeof createTokenService>;
