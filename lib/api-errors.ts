// GuruErrors on the Connect API, both ways: the server answers every error
// with a Connect code (from the kind, mapped here and nowhere else) and a
// typed guru.api.v1.ErrorInfo detail; clients (CLI, guru mcp, scripts built
// on lib/) read kind, reason and metadata back from that detail, never from
// the message text.
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../gen/guru/api/v1/errors_pb.js";
import { errorKinds, GuruError, type ErrorKind } from "./errors.ts";

/** Kind → Connect code, for every RPC. */
export const codeOfKind: Record<ErrorKind, Code> = {
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

/**
 * Code → kind, only for errors that come without the detail: from a proxy, the
 * Connect framework itself (an unknown method, a body over the read limit), or
 * a server older than the detail.
 */
const kindOfCode: Partial<Record<Code, ErrorKind>> = {
  [Code.InvalidArgument]: "invalid",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "conflict",
  [Code.PermissionDenied]: "denied",
  [Code.Unauthenticated]: "unauthenticated",
  [Code.Unavailable]: "unavailable",
  [Code.DeadlineExceeded]: "timeout",
  [Code.Canceled]: "canceled",
  [Code.ResourceExhausted]: "too_large",
  [Code.Internal]: "internal",
  [Code.DataLoss]: "data_loss",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "conflict",
  [Code.OutOfRange]: "invalid",
  [Code.Unimplemented]: "unavailable",
};

/** A GuruError as the Connect error the API answers with, its ErrorInfo attached. */
export function connectErrorOf(err: GuruError): ConnectError {
  const detail = { desc: ErrorInfoSchema, value: { reason: err.reason, metadata: { ...err.metadata }, kind: err.kind } };
  return new ConnectError(err.message, codeOfKind[err.kind], undefined, [detail], err);
}

/** The ErrorInfo detail of an error from the API, if it has one. */
export function errorInfoOf(err: unknown): { reason: string; metadata: Record<string, string>; kind: string } | undefined {
  if (!(err instanceof ConnectError)) return undefined;
  const [info] = err.findDetails(ErrorInfoSchema);
  return info === undefined || info.reason === "" ? undefined : { reason: info.reason, metadata: { ...info.metadata }, kind: info.kind };
}

const knownKinds = new Set<string>(errorKinds);

/**
 * An error from an API call as a GuruError: kind, reason and metadata from the
 * ErrorInfo detail, the server's message kept as it is. Without the detail the
 * code decides the kind and the reason is that kind's default.
 */
export function fromConnectError(err: ConnectError): GuruError {
  const info = errorInfoOf(err);
  const byCode = kindOfCode[err.code] ?? "internal";
  const kind = info !== undefined && knownKinds.has(info.kind) ? (info.kind as ErrorKind) : byCode;
  return new GuruError(kind, err.rawMessage, { cause: err, reason: info?.reason, metadata: info?.metadata });
}
