// GuruError kinds → Connect codes, once, for every RPC.
import { Code, ConnectError } from "@connectrpc/connect";
import { toGuruError, type ErrorKind } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";

const codeOf: Record<ErrorKind, Code> = {
  invalid: Code.InvalidArgument,
  not_found: Code.NotFound,
  conflict: Code.AlreadyExists,
  denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  agent_offline: Code.Unavailable,
  unavailable: Code.Unavailable,
  timeout: Code.DeadlineExceeded,
  canceled: Code.Canceled,
  too_large: Code.ResourceExhausted,
  rate_limited: Code.ResourceExhausted,
  internal: Code.Internal,
  data_loss: Code.DataLoss,
  failed_precondition: Code.FailedPrecondition,
};

/** The Connect code of an error kind (also used by the raw transfer route's error bodies). */
export const connectCodeOf = (kind: ErrorKind): Code => codeOf[kind];

export function toConnectError(err: unknown, logger: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  const guru = toGuruError(err);
  if (guru.kind === "internal") logger.error({ err: guru.cause ?? guru }, "internal error");
  return new ConnectError(guru.message, codeOf[guru.kind], undefined, undefined, guru);
}
