// Authentication and error mapping around every RPC.
import type { Interceptor } from "@connectrpc/connect";
import { GuruError, isGuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { AuthFailureLimit } from "../auth/auth-failures.ts";
import type { TokenService } from "../auth/tokens.ts";
import { clientAddressKey, principalKey } from "./context.ts";
import { toConnectError } from "./errors.ts";
import { accessOf, partnerKeyContext, refuseIntegrationKey, type IntegrationKeyCheck } from "./partner-auth.ts";

export function authInterceptor(tokens: TokenService, integrationKeys: IntegrationKeyCheck, failures?: AuthFailureLimit): Interceptor {
  return (next) => async (req) => {
    const access = accessOf(req.service.typeName, req.method.name);
    if (access === "public") return next(req);
    // A blocked address is refused before its credential is looked at, a good one included.
    const address = req.contextValues.get(clientAddressKey);
    failures?.check(address);
    const header = req.header.get("authorization");
    const match = header === null ? null : /^Bearer\s+(\S+)$/i.exec(header.trim());
    try {
      if (access === "integration_key") {
        req.contextValues.set(partnerKeyContext, await integrationKeys.verify(match?.[1], req.method.name));
        return next(req);
      }
      if (match === null)
        throw new GuruError("unauthenticated", "missing token: send 'Authorization: Bearer <token>' (GURU_TOKEN)", { reason: "TOKEN_MISSING" });
      refuseIntegrationKey(match[1]);
      req.contextValues.set(principalKey, await tokens.verify(match[1]));
    } catch (err) {
      if (isGuruError(err, "unauthenticated")) failures?.fail(address);
      throw err;
    }
    return next(req);
  };
}

/** Maps GuruErrors (and anything unexpected) to Connect errors, streams included. */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: mapStreamErrors(res.message, logger) };
    } catch (err) {
      throw toConnectError(err, logger);
    }
  };
}

async function* mapStreamErrors<T>(messages: AsyncIterable<T>, logger: Logger): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw toConnectError(err, logger);
  }
}
