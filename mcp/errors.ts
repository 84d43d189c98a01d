// Errors at the MCP edge, mapped once: Connect errors from the API become
// GuruErrors (kind, reason and metadata from the ErrorInfo detail), and
// GuruErrors become `isError` tool results that say what went wrong and what
// the model should do next. A model reads these, so each reason carries a
// concrete next step, built from the detail's metadata, never from the
// message text (the server's wording may change).
import { Code, ConnectError } from "@connectrpc/connect";
import { fromConnectError } from "../lib/api-errors.ts";
import { GuruError, toGuruError, type ErrorKind, type ErrorReason } from "../lib/errors.ts";
import type { Logger } from "../lib/logging.ts";

/** Socket errors under a ConnectError raised by the client itself: the server was not reached. */
const unreachable = new Set(["ECONNREFUSED", "ENOTFOUND", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EAI_AGAIN"]);

function socketErrorCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && unreachable.has(code)) return code;
  }
  return undefined;
}

/** Any error from an API call as a GuruError; the server's message is kept as it is. */
export function fromApiError(err: unknown): GuruError {
  if (err instanceof GuruError) return err;
  if (err instanceof ConnectError) {
    const guru = fromConnectError(err);
    if (err.code === Code.Unimplemented) {
      return new GuruError("unavailable", `the server does not offer this yet (${guru.message})`, {
        cause: err,
        details: { next: "this GuruTunnel server is older than guru mcp; ask an admin to upgrade it" },
      });
    }
    const socket = err.code === Code.Unavailable ? socketErrorCode(err) : undefined;
    if (socket !== undefined) {
      return new GuruError("unavailable", `the GuruTunnel server cannot be reached (${socket}: ${guru.message})`, {
        cause: err,
        details: { next: "check that the server in GURU_URL is running and reachable, then retry" },
      });
    }
    return guru;
  }
  return toGuruError(err);
}

const staleSessionReasons = new Set<string>(["SESSION_NOT_ACTIVE", "SESSION_NOT_FOUND"] satisfies ErrorReason[]);

/** A session the server no longer accepts: the tunnel manager opens a new one once. */
export function isStaleSession(err: GuruError): boolean {
  return staleSessionReasons.has(err.reason);
}

const nextStep: Record<ErrorKind, string> = {
  invalid: "fix the arguments as the message says and call again",
  not_found: "check the name or path: list_agents shows the agents, list_directory shows what a folder holds",
  conflict: "another holder is in the way (the message names it); wait for it, or ask the technician to close it",
  denied:
    "this was refused by policy (the agent's local policy, its allowed paths, or your role); do not retry the same call, choose an allowed alternative or ask the technician",
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

type Metadata = Readonly<Record<string, string>>;

const seconds = (ms: string | undefined) =>
  ms === undefined || !Number.isFinite(Number(ms)) ? "a few seconds" : `${Math.max(1, Math.ceil(Number(ms) / 1000))} s`;

/** Next steps for specific reasons, from the detail's metadata; other reasons fall back to their kind. */
const nextForReason: Partial<Record<ErrorReason, (m: Metadata) => string>> = {
  AGENT_OFFLINE: (m) => `list_agents shows which agents are online; try ${m.agentName ?? "this agent"} again when it is back`,
  RATE_LIMITED: (m) =>
    `wait ${seconds(m.retryAfterMs)} (retryAfterMs ${m.retryAfterMs ?? "unknown"}), then retry; at most ${m.limit ?? "a few"} commands per ${seconds(m.windowMs)} are allowed`,
  CHANNELS_EXHAUSTED: (m) =>
    `the agent already runs ${m.maxChannels ?? "its maximum of"} operations; wait for one to end (get_command_output) or cancel one, then retry`,
  TOO_LARGE: () => "send less: a smaller file or chunk, or ask for a smaller length",
  TUNNEL_ACTIVE: (m) => `another tunnel (session ${m.sessionId ?? "unknown"}) holds this agent; wait for it to close, or ask the technician to close it`,
  TUNNEL_REFUSED: () => "the agent refused the tunnel; ask the technician to check the agent",
  PATH_NOT_ALLOWED: (m) =>
    `${m.path ? `"${m.path}"` : "the path"} is outside the agent's allowed paths; do not retry it, choose a path inside them or ask the technician`,
  FILE_ACCESS_DENIED: (m) => `the operating system refused access to ${m.path ? `"${m.path}"` : "the file"}; choose another file or ask the technician`,
  POLICY_DENIED: (m) =>
    m.rule
      ? `the agent's policy rule "${m.rule}" refuses this command; do not retry it, choose another command or ask the technician`
      : `the agent's policy disables ${m.capability ?? "this"}; do not retry, ask the technician`,
  PATH_NOT_FOUND: (m) => `${m.path ? `"${m.path}"` : "the path"} does not exist; list_directory on its parent shows what is there`,
  AGENT_NOT_FOUND: () => "call list_agents to see the agents' names and ids, then call again with one of them",
  AGENT_REVOKED: () => "list_agents shows the agents that can be used; an admin must enrol this endpoint again",
  SESSION_NOT_ACTIVE: () => "the tunnel has closed; call again and a new one is opened",
  SESSION_NOT_FOUND: () => "the tunnel is gone; call again and a new one is opened",
  FILE_EXISTS: (m) =>
    `${m.path ? `"${m.path}"` : "the file"} exists; call again with overwrite: true to replace it (the old file is kept as a backup), or choose another path`,
  FILE_CHANGED: () => "the file changed while being used; call again",
  UPLOAD_OFFSET_MISMATCH: (m) => `resume from offset ${m.expectedOffset ?? "the committed offset"}`,
  UPLOAD_INCOMPLETE: (m) => `send the rest from offset ${m.expectedOffset ?? "the committed offset"}`,
  TOKEN_EXPIRED: () => "the technician's token has expired; they must get a new one (guru admin issue-token), set GURU_TOKEN and restart guru mcp",
  TOKEN_REVOKED: () => "the technician's token was revoked; they must get a new one (guru admin issue-token), set GURU_TOKEN and restart guru mcp",
  TECHNICIAN_DISABLED: () => "the technician has been disabled by an admin; guru mcp cannot act for them",
  TUNNEL_ENDED: () => "the tunnel was ended (closed, force-closed or expired); call again if the work is still needed",
  UPLOADS_EXHAUSTED: (m) =>
    `${m.active ?? "too many"} uploads are already active on this agent (at most ${m.limit ?? "a few"}); wait for one to finish, then retry`,
  AUTH_FAILURES_EXCEEDED: (m) => `too many failed logins from this address; wait ${seconds(m.retryAfterMs)} and fix the token before retrying`,
  TOKEN_MISSING: () => "guru mcp has no token; the technician must set GURU_TOKEN (or --token-file) and restart guru mcp",
  ADMIN_REQUIRED: () => "this needs an admin; ask the technician",
  UNKNOWN_ENUM_VALUE: (m) => `use one of ${m.allowed ?? "the documented values"} for ${m.field ?? "the field"}`,
};

/** What the model should do next about this error. */
function nextStepOf(err: GuruError): string {
  if (typeof err.details.next === "string") return err.details.next;
  const specific = nextForReason[err.reason as ErrorReason];
  return specific ? specific(err.metadata) : nextStep[err.kind];
}

export interface ToolErrorResult {
  [key: string]: unknown;
  content: { type: "text"; text: string }[];
  isError: true;
}

/** The one mapping of errors to tool results. Unknown faults are logged with their cause. */
export function toToolError(err: unknown, logger: Logger, tool: string): ToolErrorResult {
  const guru = fromApiError(err);
  if (guru.kind === "internal") logger.error({ err: guru.cause ?? guru, tool }, "tool failed");
  else logger.info({ tool, kind: guru.kind, reason: guru.reason, message: guru.message }, "tool refused");
  const what =
    guru.kind === "internal" && guru.message === "internal error" && guru.cause instanceof Error ? `internal error: ${guru.cause.message}` : guru.message;
  return { content: [{ type: "text", text: `${tool} failed (${guru.kind}, ${guru.reason}): ${what}. Next: ${nextStepOf(guru)}.` }], isError: true };
}

/** A GuruError whose tool result names a specific next step. */
export function guruError(kind: ErrorKind, message: string, next: string, cause?: unknown): GuruError {
  return new GuruError(kind, message, { cause, details: { next } });
}
