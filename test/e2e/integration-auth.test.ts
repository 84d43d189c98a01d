// The partner API's credentials, end to end: a real server, real HTTP/1.1
// Connect clients. GetCapabilities is open; every other method wants an
// integration key, refuses technician tokens and revoked keys; the technician
// API refuses integration keys.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionMode } from "../../gen/guru/integration/v1/sessions_pb.js";
import { createApiClients } from "../../lib/api-client.ts";
import { integrationContractVersion } from "../../lib/integration-contract-version.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { createIntegrationClient, type IntegrationClient } from "../support/integration-client.ts";
import { errorOf } from "../support/rpc-errors.ts";
import { spawnGuru } from "../support/server-process.ts";

const someId = "00000000-0000-4000-8000-000000000000";

/** One call of every method that needs a key, with a well-formed request. */
function everyKeyedMethod(client: IntegrationClient): [string, () => Promise<unknown>][] {
  const agent = { ref: { case: "externalId" as const, value: "device-1" } };
  return [
    ["ProvisionAgentKey", () => client.provisionAgentKey({ externalId: "device-1" })],
    ["RevokeAgentKey", () => client.revokeAgentKey({ agent })],
    ["CreateSession", () => client.createSession({ agent, mode: SessionMode.UNATTENDED })],
    ["StartRemoteControl", () => client.startRemoteControl({ agent, mode: SessionMode.ATTENDED })],
    ["GetSession", () => client.getSession({ sessionId: someId })],
    ["ListSessions", () => client.listSessions({})],
    ["EndSession", () => client.endSession({ sessionId: someId })],
    ["MintViewerToken", () => client.mintViewerToken({ sessionId: someId, origin: "https://rmm.example.com" })],
    [
      "WatchSessions",
      async () => {
        for await (const message of client.watchSessions({})) return message;
      },
    ],
  ];
}

describeDatabases("integration API credentials", (kind) => {
  let h: TestServer;
  let key: string;
  let keyId: string;
  beforeAll(async () => {
    h = await startTestServer({ kind });
    ({ key, keyId } = await h.admin.admin.createIntegrationKey({ name: "acme-rmm", allowedOrigins: ["https://rmm.example.com"] }));
  }, 60_000);
  afterAll(() => h?.close());

  it("answers GetCapabilities without credentials: versions, limits and the real feature list", async () => {
    const caps = await createIntegrationClient(h.url).getCapabilities({});
    expect(caps.contractVersion).toBe(integrationContractVersion);
    expect(caps.packageVersions["guru.integration.v1"]).toBe("1.0.0");
    expect(caps.features).toEqual(expect.arrayContaining(["tunnels", "exec", "files", "consent", "viewer_tokens"]));
    expect(caps.limits?.maxUploadChunkBytes).toBe(16 * 1024 * 1024);
    expect(caps.limits?.consentTimeoutMs).toBe(30_000n);
    expect(caps.limits?.maxViewerTokenTtlSeconds).toBe(300);
  });

  it("refuses every other method without a key, with a technician token and with a revoked key, and changes nothing", async () => {
    const tech = await h.createTech("tina");
    const { key: doomed, keyId: doomedId } = await h.admin.admin.createIntegrationKey({ name: "doomed" });
    await h.admin.admin.revokeIntegrationKey({ keyId: doomedId });
    const agentsBefore = (await h.admin.agents.listAgents({})).agents.length;
    const cases = [
      { client: createIntegrationClient(h.url), message: /needs an integration key/ },
      { client: createIntegrationClient(h.url, tech.token), message: /technician tokens are not accepted/ },
      { client: createIntegrationClient(h.url, h.adminToken), message: /technician tokens are not accepted/ },
      { client: createIntegrationClient(h.url, doomed), message: /integration key doomed has been revoked/ },
      { client: createIntegrationClient(h.url, "guru_ik_forged"), message: /unknown integration key/ },
    ];
    for (const { client, message } of cases) {
      for (const [method, call] of everyKeyedMethod(client)) {
        const err = await errorOf(call());
        expect(err.code, `${method}: ${err.message}`).toBe(Code.Unauthenticated);
        expect(err.message, method).toMatch(message);
      }
    }
    // Nothing was provisioned, and each refusal is in the audit.
    expect((await h.admin.agents.listAgents({})).agents.length).toBe(agentsBefore);
    const refused = await h.server.store.integrationKeys.listAudit({});
    expect(refused.filter((r) => r.outcome === "refused").length).toBeGreaterThanOrEqual(cases.length * 9);
    expect(refused.some((r) => r.keyId === doomedId && r.detail?.reason === "INTEGRATION_KEY_REVOKED")).toBe(true);
  });

  it("works with a live key, and the technician API refuses that key", async () => {
    const partner = createIntegrationClient(h.url, key);
    expect((await partner.listSessions({})).sessions).toEqual([]);
    const api = createApiClients({ url: h.url, token: key });
    const err = await errorOf(api.agents.listAgents({}));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.message).toMatch(/integration keys are accepted only by guru\.integration\.v1\.IntegrationService/);
    const adminErr = await errorOf(api.admin.createIntegrationKey({ name: "sneaky" }));
    expect(adminErr.code).toBe(Code.Unauthenticated);
    expect((await h.admin.admin.listIntegrationKeys({})).keys.map((k) => k.name)).not.toContain("sneaky");
    const listed = (await h.admin.admin.listIntegrationKeys({})).keys.find((k) => k.keyId === keyId);
    expect(listed?.allowedOrigins).toEqual(["https://rmm.example.com"]);
    expect(listed?.lastUsedAt).toBeDefined();
  });

  it("lets only admins manage integration keys, and refuses bad names and origins", async () => {
    const tech = await h.createTech("tom");
    expect((await errorOf(tech.api.admin.createIntegrationKey({ name: "mine" }))).code).toBe(Code.PermissionDenied);
    expect((await errorOf(h.admin.admin.createIntegrationKey({ name: "bad name" }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(h.admin.admin.createIntegrationKey({ name: "bad-origin", allowedOrigins: ["rmm.example.com/path"] }))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await errorOf(h.admin.admin.createIntegrationKey({ name: "acme-rmm" }))).code).toBe(Code.AlreadyExists);
    expect((await errorOf(h.admin.admin.revokeIntegrationKey({ keyId: someId }))).code).toBe(Code.NotFound);
    const names = (await h.admin.admin.listIntegrationKeys({})).keys.map((k) => k.name);
    expect(names).not.toContain("mine");
    expect(names).not.toContain("bad-origin");
  });

  it("creates, lists and revokes a key with `guru admin`", async () => {
    const env = { GURU_URL: h.url, GURU_TOKEN: h.adminToken };
    const created = spawnGuru(
      ["admin", "create-integration-key", "cli-partner", "--origin", "https://a.example.com", "--origin", "https://b.example.com"],
      env,
    );
    const [, cliKey] = await created.waitFor(/^(guru_ik_\S+)$/m);
    expect(created.output()).toMatch(/shown once/);
    expect((await createIntegrationClient(h.url, cliKey).listSessions({})).sessions).toEqual([]);
    const listed = spawnGuru(["admin", "list-integration-keys", "--json"], env);
    const [json] = await listed.waitFor(/^\[.*\]$/m);
    const entry = (JSON.parse(json) as { keyId: string; name: string; allowedOrigins: string[] }[]).find((k) => k.name === "cli-partner");
    expect(entry?.allowedOrigins).toEqual(["https://a.example.com", "https://b.example.com"]);
    const revoked = spawnGuru(["admin", "revoke-integration-key", entry!.keyId], env);
    await new Promise((r) => revoked.child.once("exit", r));
    expect(revoked.child.exitCode).toBe(0);
    expect((await errorOf(createIntegrationClient(h.url, cliKey).listSessions({}))).code).toBe(Code.Unauthenticated);
  });
});
