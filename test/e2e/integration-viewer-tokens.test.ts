// Viewer tokens end to end: minted over real HTTP/1.1 by a partner, redeemed
// by the viewer's domain function against the same running server.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionMode, SessionStatus } from "../../gen/guru/integration/v1/sessions_pb.js";
import { GuruError } from "../../lib/errors.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { createIntegrationClient, type IntegrationClient } from "../support/integration-client.ts";
import { errorOf } from "../support/rpc-errors.ts";

const origin = "https://rmm.example.com";

async function refusal(promise: Promise<unknown>): Promise<GuruError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GuruError);
  return err as GuruError;
}

describeDatabases("viewer tokens", (kind) => {
  let h: TestServer;
  let partner: IntegrationClient;
  let sessionId: string;
  beforeAll(async () => {
    h = await startTestServer({ kind });
    const { key } = await h.admin.admin.createIntegrationKey({ name: "acme", allowedOrigins: [origin, "https://other.example.com"] });
    partner = createIntegrationClient(h.url, key);
    const { agentId, agentKey } = await partner.provisionAgentKey({ externalId: "pc-1" });
    await (await h.spawnAgent({ agentId, agentKey })).waitOnline();
    const { session, viewerUrl } = await partner.startRemoteControl({ agent: { ref: { case: "externalId", value: "pc-1" } }, mode: SessionMode.UNATTENDED });
    expect(session?.status).toBe(SessionStatus.ACTIVE);
    expect(viewerUrl).toBe(`${h.url}/viewer/?session=${session!.sessionId}`);
    sessionId = session!.sessionId;
  }, 60_000);
  afterAll(() => h?.close());

  const redeem = (token: string, from = origin) => h.server.viewerTokens.redeemViewerToken(token, from);

  it("redeems a token once, from its origin, for its session", async () => {
    const minted = await partner.mintViewerToken({ sessionId, origin, ttlSeconds: 120 });
    expect(minted.viewerUrl).not.toContain(minted.token);
    const wrongOrigin = await refusal(redeem(minted.token, "https://other.example.com"));
    expect(wrongOrigin.kind).toBe("denied");
    expect(wrongOrigin.reason).toBe("VIEWER_TOKEN_WRONG_ORIGIN");
    // The refusal consumed nothing: the right origin still redeems it, once.
    const redeemed = await redeem(minted.token);
    expect(redeemed).toMatchObject({ sessionId, origin, capabilities: ["exec", "files"] });
    const again = await refusal(redeem(minted.token));
    expect(again.reason).toBe("VIEWER_TOKEN_USED");
    // Neither a technician API token nor a forged one.
    expect((await refusal(h.server.tokens.verify(minted.token))).kind).toBe("unauthenticated");
    expect((await refusal(redeem(h.adminToken))).reason).toBe("VIEWER_TOKEN_INVALID");
    expect((await refusal(redeem(`${minted.token.slice(0, -4)}AAAA`))).reason).toBe("VIEWER_TOKEN_INVALID");
  });

  it("refuses an expired token", async () => {
    const minted = await partner.mintViewerToken({ sessionId, origin, ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    expect((await refusal(redeem(minted.token))).reason).toBe("VIEWER_TOKEN_EXPIRED");
  });

  it("refuses to mint for an origin the key does not allow, a too long life, or another key's session", async () => {
    const notAllowed = await errorOf(partner.mintViewerToken({ sessionId, origin: "https://evil.example.com" }));
    expect(notAllowed.code).toBe(Code.PermissionDenied);
    expect(notAllowed.message).toMatch(/not one of integration key acme's allowed origins/);
    expect((await errorOf(partner.mintViewerToken({ sessionId, origin, ttlSeconds: 301 }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(partner.mintViewerToken({ sessionId, origin: "not an origin" }))).code).toBe(Code.InvalidArgument);
    const { key: otherKey } = await h.admin.admin.createIntegrationKey({ name: "other", allowedOrigins: [origin] });
    expect((await errorOf(createIntegrationClient(h.url, otherKey).mintViewerToken({ sessionId, origin }))).code).toBe(Code.NotFound);
  });

  it("revokes unused tokens when the session ends, and mints none for an ended session", async () => {
    const minted = await partner.mintViewerToken({ sessionId, origin });
    await partner.endSession({ sessionId, reason: "technician done" });
    expect((await refusal(redeem(minted.token))).reason).toBe("VIEWER_TOKEN_REVOKED");
    const ended = await errorOf(partner.mintViewerToken({ sessionId, origin }));
    expect(ended.code).toBe(Code.FailedPrecondition);
    const audit = await h.server.store.integrationKeys.listAudit({ sessionId });
    expect(audit.some((r) => r.method === "MintViewerToken" && r.outcome === "ok")).toBe(true);
    expect(audit.some((r) => r.method === "EndSession" && r.outcome === "ok")).toBe(true);
  });
});
