import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { GuruError } from "../../lib/errors.ts";
import type { Principal } from "../domain/principal.ts";

/** The client's address (the socket's peer, or per GURU_TRUSTED_PROXIES), set by the adapter for every call. */
export const clientAddressKey = createContextKey<string>("unknown", { description: "the caller's network address" });

export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "the authenticated caller" });

/** The caller; the auth interceptor has already refused calls without one. */
export function principalOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(principalKey);
  if (principal === undefined) throw new GuruError("unauthenticated", "no credentials", { reason: "TOKEN_MISSING" });
  return principal;
}
