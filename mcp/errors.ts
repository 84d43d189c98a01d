// Errors at the MCP edge, mapped once: Connect errors from the API become
// GuruErrors (by code), and GuruErrors become `isError` tool results that say
// what went wrong and what the model should do next. A model reads these, so
// each kind carries a concrete next step rather than a stack trace.
import { Code, ConnectError } from "@connectrpc/connect";
import { GuruError, toGuruError, type ErrorKind } from "../lib/errors.ts";
import type { Logger } from "../lib/logging.ts";

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

/** Any error from an API call as a GuruError; the server's message is kept as it is. */
export function fromApiError(err: unknown): GuruError {
  if (err instanceof GuruError) return err;
  if (err instanceof ConnectError) {
    let kind = kindOfCode[err.code] ?? "internal";
    const message = err.rawMessage;
    // Both agent_offline and a down server arrive as Unavailable; rate limits
    // and size limits both as ResourceExhausted. The message tells them apart.
    if (kind === "unavailable" && /\boffline\b/i.test(message)) kind = "agent_offline";
    if (kind === "too_large" && /rate|too many|retry/i.test(message)) kind = "rate_limited";
    if (err.code === Code.Unimplemented) return new GuruError("unavailable", `the server does not offer this yet (${message})`, { cause: err, details: { next: "this GuruTunnel server is older than guru mcp; ask an admin to upgrade it" } });
    if (kind === "unavailable" && /fetch failed|ECONNREFUSED|ENOTFOUND|socket hang up|EHOSTUNREACH/i.test(message)) {
      return new GuruError("unavailable", `the GuruTunnel server cannot be reached (${message})`, { cause: err, details: { next: "check that the server in GURU_URL is running and reachable, then retry" } });
    }
    return new GuruError(kind, message, { cause: err });
  }
  return toGuruError(err);
}

/** A session the server no longer accepts: the tunnel manager opens a new one once. */
export function isStaleSession(err: GuruError): boolean {
  return (err.kind === "failed_precondition" || err.kind === "not_found") && /\bsession\b/i.test(err.message);
}

const nextStep: Record<ErrorKind, string> = {
  invalid: "fix the arguments as the message says and call again",
  not_found: "check the name or path: list_agents shows the agents, list_directory shows what a folder holds",
  conflict: "another holder is in the way (the message names it); wait for it, or ask the technician to close it",
  denied: "this was refused by policy (the agent's local policy, its allowed paths, or your role); do not retry the same call, choose an allowed alternative or ask the technician",
  unauthenticated: "the technician's token was refused; they must set a valid GURU_TOKEN (or --token-file) and restart guru mcp",
  agent_offline: "list_agents shows which agents are online; try again when this one is back",
  timeout: "retry with a longer timeoutMs, or use start_command and page its output with get_command_output",
  canceled: "the call was canceled; call again if it is still needed",
  too_large: "ask for less: a smaller length, a narrower command, or page by offset",
  rate_limited: "too many calls for now; wait a few seconds and retry",
  internal: "an unexpected error on the GuruTunnel side; retry once, and report it to the technician if it persists",
  data_loss: "the data was damaged in transit; retry the call",
  unavailable: "the service is unavailable for now; retry shortly",
  failed_precondition: "the state does not allow this yet (the message says why); fix that first",
};

export interface ToolErrorResult {
  [key: string]: unknown;
  content: { type: "text"; text: string }[];
  isError: true;
}

/** The one mapping of errors to tool results. Unknown faults are logged with their cause. */
export function toToolError(err: unknown, logger: Logger, tool: string): ToolErrorResult {
  const guru = fromApiError(err);
  if (guru.kind === "internal") logger.error({ err: guru.cause ?? guru, tool }, "tool failed");
  else logger.info({ tool, kind: guru.kind, message: guru.message }, "tool refused");
  const next = typeof guru.details.next === "string" ? guru.details.next : nextStep[guru.kind];
  const what = guru.kind === "internal" && guru.message === "internal error" && guru.cause instanceof Error ? `internal error: ${guru.cause.message}` : guru.message;
  return { content: [{ type: "text", text: `${tool} failed (${guru.kind}): ${what}. Next: ${next}.` }], isError: true };
}

/** A GuruError whose tool result names a specific next step. */
export function guruError(kind: ErrorKind, message: string, next: string, cause?: unknown): GuruError {
  return new GuruError(kind, message, { cause, details: { next } });
}
