// The one error vocabulary of GuruTunnel. Every layer throws GuruError with a
// kind; each edge maps the kind once (Connect codes in server/rpc, wire error
// frames in lib/wire, tool results in mcp/). Beside the kind, an error carries
// a stable machine `reason` and string `metadata`: both travel to clients as a
// typed detail (guru.api.v1.ErrorInfo), so no client reads the message text.

export const errorKinds = [
  "invalid",
  "not_found",
  "conflict",
  "denied",
  "unauthenticated",
  "agent_offline",
  "timeout",
  "canceled",
  "too_large",
  "rate_limited",
  "internal",
  "data_loss",
  "unavailable",
  "failed_precondition",
] as const;

export type ErrorKind = (typeof errorKinds)[number];

/**
 * Every reason the API may answer with, and the kind it belongs to. CONTRACT.md
 * lists the same set (a test compares them); a reason is never renamed or
 * reused for another meaning, only added.
 */
export const errorReasons = {
  // The default reason of each kind, when a throw site names none.
  INVALID_ARGUMENT: "invalid",
  NOT_FOUND: "not_found",
  CONFLICT: "conflict",
  PERMISSION_DENIED: "denied",
  UNAUTHENTICATED: "unauthenticated",
  AGENT_OFFLINE: "agent_offline",
  TIMEOUT: "timeout",
  CANCELED: "canceled",
  TOO_LARGE: "too_large",
  RATE_LIMITED: "rate_limited",
  INTERNAL: "internal",
  DATA_LOSS: "data_loss",
  UNAVAILABLE: "unavailable",
  FAILED_PRECONDITION: "failed_precondition",
  // Specific reasons.
  UNKNOWN_ENUM_VALUE: "invalid",
  TOKEN_MISSING: "unauthenticated",
  TOKEN_INVALID: "unauthenticated",
  TOKEN_EXPIRED: "unauthenticated",
  TOKEN_REVOKED: "unauthenticated",
  TECHNICIAN_DISABLED: "unauthenticated",
  ADMIN_REQUIRED: "denied",
  AGENT_REVOKED: "denied",
  SESSION_NOT_OWNED: "denied",
  UPLOAD_NOT_OWNED: "denied",
  RECORDING_NOT_OWNED: "denied",
  PATH_NOT_ALLOWED: "denied",
  FILE_ACCESS_DENIED: "denied",
  POLICY_DENIED: "denied",
  AGENT_NOT_FOUND: "not_found",
  SESSION_NOT_FOUND: "not_found",
  UPLOAD_NOT_FOUND: "not_found",
  RECORDING_NOT_FOUND: "not_found",
  TOKEN_NOT_FOUND: "not_found",
  TECHNICIAN_NOT_FOUND: "not_found",
  PATH_NOT_FOUND: "not_found",
  TUNNEL_ACTIVE: "conflict",
  TUNNEL_REFUSED: "conflict",
  NAME_TAKEN: "conflict",
  FILE_EXISTS: "conflict",
  FILE_CHANGED: "conflict",
  SESSION_NOT_ACTIVE: "failed_precondition",
  TUNNEL_REQUIRED: "failed_precondition",
  UPLOAD_NOT_ACTIVE: "failed_precondition",
  UPLOAD_OFFSET_MISMATCH: "failed_precondition",
  UPLOAD_INCOMPLETE: "failed_precondition",
  AGENT_NEEDS_SHA256_AT_START: "failed_precondition",
  UPLOAD_CHECKSUM_MISMATCH: "data_loss",
  UPLOAD_SIZE_MISMATCH: "data_loss",
  CHANNELS_EXHAUSTED: "rate_limited",
  UPLOADS_EXHAUSTED: "rate_limited",
  AUTH_FAILURES_EXCEEDED: "rate_limited",
  TUNNEL_ENDED: "canceled",
  // Partner integration (guru.integration.v1) and viewer tokens.
  INTEGRATION_KEY_REQUIRED: "unauthenticated",
  INTEGRATION_KEY_UNKNOWN: "unauthenticated",
  INTEGRATION_KEY_REVOKED: "unauthenticated",
  INTEGRATION_KEY_REFUSED: "unauthenticated",
  TECHNICIAN_TOKEN_REFUSED: "unauthenticated",
  AGENT_REQUIRED: "invalid",
  INVALID_EXTERNAL_ID: "invalid",
  INVALID_AGENT_NAME: "invalid",
  INVALID_TECHNICIAN: "invalid",
  UNKNOWN_CAPABILITY: "invalid",
  MODE_REQUIRED: "invalid",
  INVALID_ORIGIN: "invalid",
  INVALID_TTL: "invalid",
  AGENT_BUSY: "conflict",
  AGENT_NAME_TAKEN: "conflict",
  CONSENT_REQUIRED_BY_POLICY: "denied",
  CONSENT_DENIED: "denied",
  CONSENT_TIMED_OUT: "denied",
  TECHNICIAN_NOT_OWNED: "denied",
  ORIGIN_NOT_ALLOWED: "denied",
  CONSENT_NOT_SUPPORTED: "failed_precondition",
  SESSION_ENDED: "failed_precondition",
  VIEWER_TOKEN_INVALID: "unauthenticated",
  VIEWER_TOKEN_EXPIRED: "unauthenticated",
  VIEWER_TOKEN_USED: "unauthenticated",
  VIEWER_TOKEN_REVOKED: "unauthenticated",
  VIEWER_TOKEN_WRONG_ORIGIN: "denied",
  VIEWER_TOKEN_REFUSED: "unauthenticated",
} as const satisfies Record<string, ErrorKind>;

export type ErrorReason = keyof typeof errorReasons;

const defaultReason: Record<ErrorKind, ErrorReason> = {
  invalid: "INVALID_ARGUMENT",
  not_found: "NOT_FOUND",
  conflict: "CONFLICT",
  denied: "PERMISSION_DENIED",
  unauthenticated: "UNAUTHENTICATED",
  agent_offline: "AGENT_OFFLINE",
  timeout: "TIMEOUT",
  canceled: "CANCELED",
  too_large: "TOO_LARGE",
  rate_limited: "RATE_LIMITED",
  internal: "INTERNAL",
  data_loss: "DATA_LOSS",
  unavailable: "UNAVAILABLE",
  failed_precondition: "FAILED_PRECONDITION",
};

/** Metadata values as given at a throw site; stored as strings, undefined entries dropped. */
type MetadataInput = Record<string, string | number | bigint | boolean | undefined>;

interface GuruErrorOptions {
  cause?: unknown;
  /** Facts for logs only; never sent to a client. */
  details?: Record<string, unknown>;
  /** The machine reason; absent, the kind's default. A string from a peer is kept as it came. */
  reason?: ErrorReason | (string & {});
  /** Facts a client may act on (retryAfterMs, expectedOffset, sessionId …); part of the contract. */
  metadata?: MetadataInput;
}

export class GuruError extends Error {
  readonly kind: ErrorKind;
  readonly reason: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Structured facts for logs (and `next` at the MCP edge); not sent to clients. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(kind: ErrorKind, message: string, options?: GuruErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GuruError";
    this.kind = kind;
    this.reason = options?.reason || defaultReason[kind];
    this.metadata = toMetadata(options?.metadata);
    this.details = options?.details ?? {};
  }
}

function toMetadata(input: MetadataInput | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(input ?? {})) if (value !== undefined) out[key] = String(value);
  return out;
}

export function isGuruError(err: unknown, kind?: ErrorKind): err is GuruError {
  return err instanceof GuruError && (kind === undefined || err.kind === kind);
}

/** Wraps anything thrown into a GuruError; unknown faults become internal. */
export function toGuruError(err: unknown): GuruError {
  if (err instanceof GuruError) return err;
  if (err instanceof Error && err.name === "AbortError") return new GuruError("canceled", "the operation was canceled", { cause: err });
  return new GuruError("internal", "internal error", { cause: err });
}
