// The MCP edge reads the ErrorInfo detail, never the message: these errors
// carry wording that has nothing to do with their reason.
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { connectErrorOf } from "../lib/api-errors.ts";
import { GuruError } from "../lib/errors.ts";
import { ErrorInfoSchema } from "../gen/guru/api/v1/errors_pb.js";
import { silentLogger } from "../lib/logging.ts";
import { fromApiError, isStaleSession, toToolError } from "./errors.ts";

/** A ConnectError as a client receives it: the detail serialised, as on the wire. */
function received(kind: GuruError["kind"], reason: string, message: string, metadata: Record<string, string> = {}): ConnectError {
  const sent = connectErrorOf(new GuruError(kind, message, { reason, metadata }));
  const wire = sent.details.map((d) =>
    "desc" in d ? { type: d.desc.typeName, debug: undefined, value: toBinary(ErrorInfoSchema, create(ErrorInfoSchema, d.value as never)) } : d,
  );
  const err = new ConnectError(message, sent.code);
  err.details = wire;
  return err;
}

const textOf = (err: unknown) => toToolError(err, silentLogger(), "run_command").content[0].text;

describe("MCP errors from the detail", () => {
  it("AGENT_OFFLINE under an unrelated message yields the agent-offline next step", () => {
    const err = received("agent_offline", "AGENT_OFFLINE", "la machine ne répond pas", { agentId: "a1", agentName: "web-3" });
    const guru = fromApiError(err);
    expect([guru.kind, guru.reason, guru.metadata.agentName]).toEqual(["agent_offline", "AGENT_OFFLINE", "web-3"]);
    expect(textOf(err)).toMatch(
      /run_command failed \(agent_offline, AGENT_OFFLINE\): la machine ne répond pas\. Next: list_agents shows which agents are online; try web-3 again/,
    );
  });

  it("tells a rate limit from a size limit by reason, though both are ResourceExhausted, and names the wait", () => {
    const rate = received("rate_limited", "RATE_LIMITED", "slow down", { retryAfterMs: "4200", limit: "100", windowMs: "60000" });
    const size = received("too_large", "TOO_LARGE", "rate retry too many", { size: "10", end: "11" });
    expect(rate.code).toBe(Code.ResourceExhausted);
    expect(size.code).toBe(Code.ResourceExhausted);
    expect(textOf(rate)).toMatch(/\(rate_limited, RATE_LIMITED\).*Next: wait 5 s \(retryAfterMs 4200\)/);
    expect(textOf(size)).toMatch(/\(too_large, TOO_LARGE\).*Next: send less/);
  });

  it("tells an offline agent from an unavailable service, though both are Unavailable", () => {
    expect(fromApiError(received("unavailable", "UNAVAILABLE", "agent is offline")).kind).toBe("unavailable");
    expect(fromApiError(received("agent_offline", "AGENT_OFFLINE", "busy")).kind).toBe("agent_offline");
  });

  it("a stale session is known by its reason, whatever the message says", () => {
    expect(isStaleSession(fromApiError(received("failed_precondition", "SESSION_NOT_ACTIVE", "nope")))).toBe(true);
    expect(isStaleSession(fromApiError(received("not_found", "SESSION_NOT_FOUND", "nope")))).toBe(true);
    // A message that mentions a session but a reason that is not about one.
    expect(isStaleSession(fromApiError(received("failed_precondition", "UPLOAD_NOT_ACTIVE", "session closed")))).toBe(false);
  });

  it("next steps carry the metadata: the offset to resume from, the path refused, the policy rule", () => {
    expect(textOf(received("failed_precondition", "UPLOAD_OFFSET_MISMATCH", "x", { expectedOffset: "4096" }))).toMatch(/Next: resume from offset 4096\./);
    expect(textOf(received("denied", "PATH_NOT_ALLOWED", "x", { path: "/etc/shadow" }))).toMatch(/Next: "\/etc\/shadow" is outside the agent's allowed paths/);
    expect(textOf(received("denied", "POLICY_DENIED", "x", { rule: "rm *" }))).toMatch(/policy rule "rm \*" refuses this command/);
    expect(textOf(received("conflict", "TUNNEL_ACTIVE", "x", { sessionId: "s-9" }))).toMatch(/another tunnel \(session s-9\) holds this agent/);
    expect(textOf(received("unauthenticated", "TOKEN_EXPIRED", "x"))).toMatch(/token has expired/);
  });

  it("without the detail (an older server, a proxy) the code decides the kind", () => {
    const bare = fromApiError(new ConnectError("whatever", Code.PermissionDenied));
    expect([bare.kind, bare.reason]).toEqual(["denied", "PERMISSION_DENIED"]);
    // A reason from a newer server falls back to its kind's next step.
    expect(textOf(received("conflict", "SOMETHING_NEWER", "x"))).toMatch(/\(conflict, SOMETHING_NEWER\).*Next: another holder is in the way/);
  });

  it("a server that cannot be reached is told by the socket error under the ConnectError", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    const err = new ConnectError("fetch failed", Code.Unavailable, undefined, undefined, refused);
    expect(textOf(err)).toMatch(/cannot be reached \(ECONNREFUSED.*Next: check that the server in GURU_URL/);
  });
});
