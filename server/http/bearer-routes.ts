// What the plain HTTP routes beside the Connect API share (the bulk transfer
// route, the recording route): the technician token from the Authorization
// header, counted against the address's authentication failures, and
// refusals as a JSON body with Connect's code names and the ErrorInfo facts.
import type http from "node:http";
import type http2 from "node:http2";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { codeOfKind } from "../../lib/api-errors.ts";
import { GuruError, isGuruError, toGuruError, type ErrorKind } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { clientAddress, type AuthFailureLimit } from "../auth/auth-failures.ts";
import type { TokenService } from "../auth/tokens.ts";
import type { Principal } from "../domain/principal.ts";
import { refuseIntegrationKey } from "../rpc/partner-auth.ts";

export type Req = http.IncomingMessage | http2.Http2ServerRequest;
export type Res = http.ServerResponse | http2.Http2ServerResponse;

/** HTTP statuses of these routes; a wrong offset is 409 Conflict, as for a Content-Range that does not fit. */
const statusOf: Record<ErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  failed_precondition: 409,
  denied: 403,
  unauthenticated: 401,
  agent_offline: 503,
  unavailable: 503,
  timeout: 504,
  canceled: 499,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  data_loss: 500,
};

/** Answers a refusal before the body; after the first byte there is nothing left to answer with. */
export function sendRouteError(res: Res, err: unknown, logger: Logger): void {
  const error = toGuruError(err);
  if (error.kind === "internal") logger.error({ err: error.cause ?? error }, "internal error on an HTTP route");
  const out = res as http.ServerResponse;
  if (out.headersSent) return;
  // The same facts as the Connect API's ErrorInfo detail: reason and metadata, never the log-only details.
  const body = JSON.stringify({
    code: codeToString(codeOfKind[error.kind]),
    message: error.message,
    reason: error.reason,
    metadata: error.metadata,
    kind: error.kind,
  });
  out.writeHead(statusOf[error.kind], { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
  out.end(body);
}

export interface BearerAuthOptions {
  tokens: Pick<TokenService, "verify">;
  authFailures?: AuthFailureLimit;
  trustedProxies: readonly string[];
  /** Refuses a credential that is not a technician token with a message that says where it belongs. */
  refuse?(credential: string): void;
}

/** The caller of a request with `Authorization: Bearer <technician token>`. */
export function createBearerAuth(options: BearerAuthOptions): (req: Req) => Promise<Principal> {
  return async (req) => {
    const address = clientAddress(req, options.trustedProxies);
    options.authFailures?.check(address);
    const header = req.headers.authorization;
    const match = typeof header === "string" ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
    try {
      if (match === null)
        throw new GuruError("unauthenticated", "missing token: send 'Authorization: Bearer <token>' (GURU_TOKEN)", { reason: "TOKEN_MISSING" });
      refuseIntegrationKey(match[1]);
      options.refuse?.(match[1]);
      return await options.tokens.verify(match[1]);
    } catch (err) {
      if (isGuruError(err, "unauthenticated")) options.authFailures?.fail(address);
      throw err;
    }
  };
}

/** Waits until the response takes more, or the client went away. */
export function drained(out: Res): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off("drain", done);
      out.off("close", done);
      resolve();
    };
    out.once("drain", done);
    out.once("close", done);
  });
}
