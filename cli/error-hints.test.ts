// The CLI reads the ErrorInfo detail: hints and retries follow the reason and
// its metadata, whatever the message says.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { connectErrorOf } from "../lib/api-errors.ts";
import { GuruError } from "../lib/errors.ts";
import { isRetryable, retryAfterMsOf } from "../lib/file-transfer.ts";
import { describeFailure } from "./error-hints.ts";

const api = (kind: GuruError["kind"], reason: string, message: string, metadata: Record<string, string> = {}) =>
  connectErrorOf(new GuruError(kind, message, { reason, metadata }));

describe("CLI failures from the detail", () => {
  it("hints by reason, filled from the metadata", () => {
    expect(describeFailure(api("conflict", "TUNNEL_ACTIVE", "zzz", { sessionId: "s-1" }))).toBe(
      "zzz (session s-1 holds the agent's tunnel; if it is yours, 'guru tunnel close s-1')",
    );
    expect(describeFailure(api("rate_limited", "RATE_LIMITED", "zzz", { retryAfterMs: "2500" }))).toBe("zzz (retry in 2.5 s)");
    expect(describeFailure(api("agent_offline", "AGENT_OFFLINE", "zzz"))).toBe("zzz ('guru agents' shows which agents are online)");
    expect(describeFailure(api("unauthenticated", "TOKEN_EXPIRED", "zzz"))).toMatch(/^zzz \(ask an admin for a new token/);
    expect(describeFailure(new GuruError("not_found", 'no agent named "x"', { reason: "AGENT_NOT_FOUND" }))).toBe(
      "no agent named \"x\" ('guru agents' lists them)",
    );
    expect(describeFailure(new TypeError("a bug"))).toBeUndefined();
  });

  it("retries by reason: a gap or a closed tunnel is worth a resume, a finished upload or a checksum mismatch is not", () => {
    expect(isRetryable(api("failed_precondition", "UPLOAD_OFFSET_MISMATCH", "x", { expectedOffset: "10" }))).toBe(true);
    expect(isRetryable(api("failed_precondition", "SESSION_NOT_ACTIVE", "x"))).toBe(true);
    expect(isRetryable(api("agent_offline", "AGENT_OFFLINE", "x"))).toBe(true);
    expect(isRetryable(api("failed_precondition", "UPLOAD_NOT_ACTIVE", "x"))).toBe(false);
    expect(isRetryable(api("data_loss", "UPLOAD_CHECKSUM_MISMATCH", "x"))).toBe(false);
    expect(isRetryable(api("denied", "PATH_NOT_ALLOWED", "x"))).toBe(false);
    // A server without the detail: by code, as before.
    expect(isRetryable(new ConnectError("x", Code.FailedPrecondition))).toBe(true);
    expect(isRetryable(new ConnectError("x", Code.PermissionDenied))).toBe(false);
  });

  it("waits as long as a refusal asks", () => {
    expect(retryAfterMsOf(api("rate_limited", "RATE_LIMITED", "x", { retryAfterMs: "1200" }))).toBe(1200);
    expect(retryAfterMsOf(api("agent_offline", "AGENT_OFFLINE", "x"))).toBeUndefined();
  });
});
