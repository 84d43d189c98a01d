// The one error vocabulary (lib/errors ErrorKind strings) mapped to the wire
// enum and back, so a ChannelError carries the kind the handler threw.
import { ErrorKind as WireErrorKind } from "../../gen/guru/wire/v1/wire_pb.js";
import { GuruError, type ErrorKind } from "../errors.ts";

const toWire: Record<ErrorKind, WireErrorKind> = {
  invalid: WireErrorKind.INVALID,
  not_found: WireErrorKind.NOT_FOUND,
  conflict: WireErrorKind.CONFLICT,
  denied: WireErrorKind.DENIED,
  unauthenticated: WireErrorKind.UNAUTHENTICATED,
  agent_offline: WireErrorKind.AGENT_OFFLINE,
  timeout: WireErrorKind.TIMEOUT,
  canceled: WireErrorKind.CANCELED,
  too_large: WireErrorKind.TOO_LARGE,
  rate_limited: WireErrorKind.RATE_LIMITED,
  internal: WireErrorKind.INTERNAL,
  data_loss: WireErrorKind.DATA_LOSS,
  unavailable: WireErrorKind.UNAVAILABLE,
  failed_precondition: WireErrorKind.FAILED_PRECONDITION,
};

const fromWire = new Map<WireErrorKind, ErrorKind>();
for (const [kind, wire] of Object.entries(toWire) as [ErrorKind, WireErrorKind][]) {
  if (!fromWire.has(wire)) fromWire.set(wire, kind);
}

export function toWireErrorKind(kind: ErrorKind): WireErrorKind {
  return toWire[kind] ?? WireErrorKind.INTERNAL;
}

/** UNSPECIFIED or a value from a newer peer becomes "internal". */
export function fromWireErrorKind(kind: WireErrorKind): ErrorKind {
  return fromWire.get(kind) ?? "internal";
}

/** A received ChannelError as the GuruError it stands for, reason and metadata included. */
export function guruErrorFromWire(error: { kind: WireErrorKind; message: string; reason?: string; metadata?: Record<string, string> }): GuruError {
  return new GuruError(fromWireErrorKind(error.kind), error.message || "the peer reported an error without a message", {
    reason: error.reason,
    metadata: error.metadata,
  });
}

/** The ChannelError fields for a GuruError. */
export function wireErrorOf(error: GuruError): { kind: WireErrorKind; message: string; reason: string; metadata: Record<string, string> } {
  return { kind: toWireErrorKind(error.kind), message: error.message, reason: error.reason, metadata: { ...error.metadata } };
}
