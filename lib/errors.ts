// The one error vocabulary of GuruTunnel. Every layer throws GuruError with a
// kind; each edge maps the kind once (Connect codes in server/rpc, wire error
// frames in lib/wire, tool results in mcp/).

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

export class GuruError extends Error {
  readonly kind: ErrorKind;
  /** Structured facts for logs and clients (a holder's session id, a wait in ms). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GuruError";
    this.kind = kind;
    this.details = options?.details ?? {};
  }
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
