// Viewer tokens on the terminal socket and the viewer's headers, over real
// HTTP and WebSockets against a real server, database and agent.
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionMode } from "../../gen/guru/integration/v1/sessions_pb.js";
import { GuruError } from "../../lib/errors.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { createIntegrationClient, type IntegrationClient } from "../support/integration-client.ts";
import { openShell, terminalAgentEnv } from "../support/terminal-helpers.ts";

const origin = "https://rmm.example.com";
const tools = "https://tools.example.com";

async function refusal(promise: Promise<unknown>): Promise<GuruError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GuruError);
  return err as GuruError;
}

describeDatabases("viewer terminals", (kind) => {
  let h: TestServer;
  let partner: IntegrationClient;
  let sessionId: string;
  let technicianId: string;
  beforeAll(async () => {
    h = await startTestServer({ kind, config: { viewerFrameAncestors: [tools] } });
    const { key } = await h.admin.admin.createIntegrationKey({ name: "acme", allowedOrigins: [origin] });
    partner = createIntegrationClient(h.url, key);
    const { agentId, agentKey } = await partner.provisionAgentKey({ externalId: "pc-term" });
    await (await h.spawnAgent({ agentId, agentKey, env: await terminalAgentEnv(h) })).waitOnline();
    const { session } = await partner.startRemoteControl({ agent: { ref: { case: "externalId", value: "pc-term" } }, mode: SessionMode.UNATTENDED });
    sessionId = session!.sessionId;
    technicianId = (await h.server.store.partnerSessions.get(sessionId))!.technicianId;
  }, 60_000);
  afterAll(() => h?.close());

  const mint = async () => (await partner.mintViewerToken({ sessionId, origin })).token;

  it("opens a terminal with a viewer token from its origin, on the partner session as its technician", async () => {
    const viewerToken = await mint();
    const shell = await openShell(h.url, { token: "", sessionId: "", viewerToken }, { origin });
    expect(shell.conn.opened).toMatchObject({ sessionId, origin });
    shell.conn.write("echo viewer-$((40+2))\n");
    await shell.until(/viewer-42/);
    shell.conn.close();
    await shell.conn.exit;
    await h.server.terminals.drain();
    expect(await h.server.store.terminals.get(shell.conn.opened.terminalId)).toMatchObject({ technicianId, sessionId, outcome: "exited" });
  });

  it("refuses a viewer token from another origin and keeps it for its own; refuses a used one", async () => {
    const viewerToken = await mint();
    const wrong = await refusal(openShell(h.url, { token: "", sessionId: "", viewerToken }, { origin: "https://evil.example.com" }));
    expect(wrong.kind).toBe("denied");
    expect(wrong.message).toMatch(/bound to another origin/);
    // A page of this server claiming another embedder is held to that claim.
    const claimed = await refusal(openShell(h.url, { token: "", sessionId: "", viewerToken, viewerOrigin: "https://evil.example.com" }, { origin: h.url }));
    expect(claimed.kind).toBe("denied");
    const shell = await openShell(h.url, { token: "", sessionId: "", viewerToken }, { origin });
    shell.conn.close();
    await shell.conn.exit;
    const used = await refusal(openShell(h.url, { token: "", sessionId: "", viewerToken }, { origin }));
    expect(used.kind).toBe("unauthenticated");
    expect(used.message).toMatch(/already used/);
  });

  it("refuses both kinds of token at once, and a viewer token for another session", async () => {
    const both = await refusal(openShell(h.url, { token: h.adminToken, sessionId: "", viewerToken: await mint() }, { origin }));
    expect(both.kind).toBe("invalid");
    const other = await refusal(openShell(h.url, { token: "", sessionId: crypto.randomUUID(), viewerToken: await mint() }, { origin }));
    expect(other.kind).toBe("invalid");
    expect(other.message).toMatch(/viewer token is for session/);
    // The session is untouched: a fresh token still opens a terminal.
    const shell = await openShell(h.url, { token: "", sessionId, viewerToken: await mint() }, { origin });
    shell.conn.close();
    await shell.conn.exit;
  });

  it("lets only the viewer be framed, by the keys' origins and the configured list; everything else is unframeable", async () => {
    const viewer = await fetch(`${h.url}/viewer/?session=${sessionId}`);
    expect(viewer.status).toBe(200);
    const csp = viewer.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toMatch(new RegExp(`frame-ancestors ${origin} ${tools}(;|$)`));
    expect(viewer.headers.get("x-frame-options")).toBeNull();
    const html = await viewer.text();
    // No inline script: every <script> has a src.
    expect(html.match(/<script\b[^>]*>/g)?.every((tag) => / src=/.test(tag))).toBe(true);
    const xterm = await fetch(`${h.url}/viewer/vendor/xterm.mjs`);
    expect(xterm.headers.get("content-type")).toMatch(/javascript/);
    expect(await xterm.text()).toContain("Terminal");
    for (const path of ["/healthz", "/viewer/nope", "/guru.api.v1.AgentService/ListAgents"]) {
      const res = await fetch(
        `${h.url}${path}`,
        path.startsWith("/guru") ? { method: "POST", headers: { "content-type": "application/json" }, body: "{}" } : {},
      );
      expect(res.headers.get("content-security-policy"), path).toContain("frame-ancestors 'none'");
      expect(res.headers.get("x-frame-options"), path).toBe("DENY");
    }
    // A revoked key's origins no longer frame the viewer.
    const { keyId } = await h.admin.admin.createIntegrationKey({ name: "gone", allowedOrigins: ["https://gone.example.com"] });
    expect((await fetch(`${h.url}/viewer/`)).headers.get("content-security-policy")).toContain("https://gone.example.com");
    await h.admin.admin.revokeIntegrationKey({ keyId });
    expect((await fetch(`${h.url}/viewer/`)).headers.get("content-security-policy")).not.toContain("https://gone.example.com");
  });
});
