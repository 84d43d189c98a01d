// Every error an RPC answers with: a Connect code from the kind and the typed
// ErrorInfo detail (reason, metadata), so clients never parse messages.
import { ConnectError } from "@connectrpc/connect";
import { connectErrorOf, errorInfoOf, fromConnectError } from "../../lib/api-errors.ts";
import { toGuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";

export function toConnectError(err: unknown, logger: Logger): ConnectError {
  if (err instanceof ConnectError) {
    if (errorInfoOf(err) !== undefined) return err;
    // Raised by the Connect framework inside a call (a deadline, a read limit):
    // the same code, with the detail its code stands for.
    const guru = fromConnectError(err);
    if (guru.kind === "internal") logger.error({ err }, "internal error");
    err.details.push(...connectErrorOf(guru).details);
    return err;
  }
  const guru = toGuruError(err);
  if (guru.kind === "internal") logger.error({ err: guru.cause ?? guru, reason: guru.reason }, "internal error");
  return connectErrorOf(guru);
}
