// How the technician commands report a failure: the server's message, then a
// hint chosen by the error's reason and filled from its metadata (the
// ErrorInfo detail), so a change of wording on the server changes nothing here.
import { ConnectError } from "@connectrpc/connect";
import { fromConnectError } from "../lib/api-errors.ts";
import { GuruError, type ErrorReason } from "../lib/errors.ts";

type Metadata = Readonly<Record<string, string>>;

const hints: Partial<Record<ErrorReason, (m: Metadata) => string>> = {
  AGENT_NOT_FOUND: () => "'guru agents' lists them",
  AGENT_OFFLINE: () => "'guru agents' shows which agents are online",
  AGENT_REVOKED: () => "an admin must enrol this endpoint again",
  TUNNEL_ACTIVE: (m) => `session ${m.sessionId ?? "?"} holds the agent's tunnel; if it is yours, 'guru tunnel close ${m.sessionId ?? "SESSION_ID"}'`,
  SESSION_NOT_ACTIVE: () => "open a new tunnel ('guru tunnel open AGENT')",
  RATE_LIMITED: (m) => `retry in ${m.retryAfterMs === undefined ? "a few seconds" : `${(Number(m.retryAfterMs) / 1000).toFixed(1)} s`}`,
  TOKEN_EXPIRED: () => "ask an admin for a new token ('guru admin issue-token NAME') and set GURU_TOKEN",
  TOKEN_REVOKED: () => "ask an admin for a new token ('guru admin issue-token NAME') and set GURU_TOKEN",
  TOKEN_INVALID: () => "check GURU_TOKEN (or --token-file): it was not issued by this server",
  TECHNICIAN_DISABLED: () => "an admin disabled this technician",
  UPLOADS_EXHAUSTED: () => "finish or abort an upload first ('guru cp --resume' continues one)",
  AUTH_FAILURES_EXCEEDED: (m) =>
    `too many failed logins from here; retry in ${m.retryAfterMs === undefined ? "a while" : `${Math.ceil(Number(m.retryAfterMs) / 1000)} s`} with a valid token`,
  TOKEN_MISSING: () => "set GURU_TOKEN (or --token-file FILE)",
  PATH_NOT_ALLOWED: () => "the agent serves only the paths it was started with (--allow)",
  POLICY_DENIED: (m) => (m.rule ? `the agent's local policy rule "${m.rule}" refuses it` : `the agent's local policy disables ${m.capability ?? "it"}`),
  ADMIN_REQUIRED: () => "ask an admin",
  FILE_EXISTS: () => "guru cp replaces files unless --no-overwrite is given",
};

/** The line a command prints for a failure, or undefined for an error that is not ours (a bug: let it surface). */
export function describeFailure(err: unknown): string | undefined {
  const guru = err instanceof GuruError ? err : err instanceof ConnectError ? fromConnectError(err) : undefined;
  if (guru === undefined) return undefined;
  const hint = hints[guru.reason as ErrorReason]?.(guru.metadata);
  return hint === undefined ? guru.message : `${guru.message} (${hint})`;
}
