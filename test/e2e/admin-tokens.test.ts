// Token listing and revocation, and disabled technicians, through a real
// Connect client and the `guru admin` CLI as a child process. The server
// trusts a confirmed token for GURU_TOKEN_CHECK_CACHE_MS (2 s here); what is
// revoked or disabled through it must be refused at once anyway.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ListTokensResponseSchema, Role } from "../../gen/guru/api/v1/admin_pb.js";
import { createApiClients } from "../../lib/api-client.ts";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { errorOf } from "../support/rpc-errors.ts";

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

function guru(t: TestServer, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [guruBin, ...args], {
      env: { ...process.env, GURU_URL: t.url, GURU_TOKEN: t.adminToken, GURU_TOKEN_FILE: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describeDatabases("admin: tokens and technicians", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { tokenCheckCacheMs: 2000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("ListTokens lists a technician's tokens (never their text); RevokeTechnicianTokens refuses them all at once and ends the tunnels", async () => {
    const tech = await t.createTech("list-1");
    const second = await t.admin.admin.issueToken({ technicianId: tech.technicianId, ttlSeconds: 600 });
    const agent = await t.startAgent("tokens-agent-1");
    const { sessionId } = await tech.api.sessions.openTunnel({ agentId: agent.agentId });
    await tech.api.agents.listAgents({}); // confirmed, so remembered by the check cache

    const listed = await t.admin.admin.listTokens({ technicianId: tech.technicianId });
    expect(listed.tokens.map((x) => x.tokenId).sort()).toHaveLength(2);
    expect(listed.tokens.every((x) => x.technicianName === "list-1" && x.role === Role.TECH && x.revokedAt === undefined)).toBe(true);
    const wire = JSON.stringify(toJson(ListTokensResponseSchema, listed));
    expect(wire).not.toContain(tech.token);
    expect(wire).not.toContain(second.token);
    // Every technician's when no id is given.
    const all = await t.admin.admin.listTokens({});
    expect(all.tokens.some((x) => x.role === Role.ADMIN)).toBe(true);

    const done = await t.admin.admin.revokeTechnicianTokens({ technicianId: tech.technicianId });
    expect(done).toMatchObject({ revoked: 2, closedSessions: 1 });
    expect((await errorOf(tech.api.agents.listAgents({}))).code).toBe(Code.Unauthenticated);
    expect((await errorOf(createApiClients({ url: t.url, token: second.token }).agents.listAgents({}))).code).toBe(Code.Unauthenticated);
    expect((await t.server.store.sessions.get(sessionId))?.status).toBe("closed");
    // Live ones only by default; with includeInactive the revoked ones show their revocation.
    expect((await t.admin.admin.listTokens({ technicianId: tech.technicianId })).tokens).toHaveLength(0);
    const inactive = await t.admin.admin.listTokens({ technicianId: tech.technicianId, includeInactive: true });
    expect(inactive.tokens.every((x) => x.revokedAt !== undefined)).toBe(true);
  });

  it("DisableTechnician refuses their tokens at once and issues no new ones", async () => {
    const tech = await t.createTech("disable-1");
    await tech.api.agents.listAgents({});
    const done = await t.admin.admin.disableTechnician({ technicianId: tech.technicianId, reason: "left the company" });
    expect(done.disabledAt).toBeDefined();
    const refused = await errorOf(tech.api.agents.listAgents({}));
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.message).toContain("disabled");
    const issue = await errorOf(t.admin.admin.issueToken({ technicianId: tech.technicianId }));
    expect(issue.code).toBe(Code.FailedPrecondition);
    const listed = await t.admin.admin.listTokens({ technicianId: tech.technicianId, includeInactive: true });
    expect(listed.tokens.every((x) => x.technicianDisabledAt !== undefined)).toBe(true);
  });

  it("refusals: a tech may not call them, bad and unknown ids, a token lifetime past 30 days; nothing changes", async () => {
    const tech = await t.createTech("refusal-1");
    const before = await t.admin.admin.listTokens({ technicianId: tech.technicianId });
    expect((await errorOf(tech.api.admin.listTokens({}))).code).toBe(Code.PermissionDenied);
    expect((await errorOf(tech.api.admin.revokeTechnicianTokens({ technicianId: tech.technicianId }))).code).toBe(Code.PermissionDenied);
    expect((await errorOf(tech.api.admin.disableTechnician({ technicianId: tech.technicianId }))).code).toBe(Code.PermissionDenied);
    expect((await errorOf(t.admin.admin.revokeTechnicianTokens({ technicianId: "nope" }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(t.admin.admin.disableTechnician({ technicianId: "00000000-0000-4000-8000-000000000000" }))).code).toBe(Code.NotFound);
    expect((await errorOf(t.admin.admin.listTokens({ technicianId: "00000000-0000-4000-8000-000000000000" }))).code).toBe(Code.NotFound);
    const long = await errorOf(t.admin.admin.issueToken({ technicianId: tech.technicianId, ttlSeconds: 31 * 24 * 3600 }));
    expect(long.code).toBe(Code.InvalidArgument);
    expect(long.message).toContain("30 days");
    await tech.api.agents.listAgents({});
    expect((await t.admin.admin.listTokens({ technicianId: tech.technicianId })).tokens).toEqual(before.tokens);
  });

  it("the CLI lists, revokes and disables", async () => {
    const tech = await t.createTech("cli-1");
    const list = await guru(t, ["admin", "list-tokens", tech.technicianId, "--json"]);
    expect(list.code, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout) as { tokenId: string; technician: string; role: string; revokedAt: string | null }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ technician: "cli-1", role: "tech", revokedAt: null });
    expect(list.stdout).not.toContain(tech.token);

    const revoke = await guru(t, ["admin", "revoke-tech-tokens", tech.technicianId]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stdout).toContain("revoked 1 token(s)");
    expect((await errorOf(tech.api.agents.listAgents({}))).code).toBe(Code.Unauthenticated);

    const other = await t.createTech("cli-2");
    const disable = await guru(t, ["admin", "disable-tech", other.technicianId, "--reason", "test"]);
    expect(disable.code, disable.stderr).toBe(0);
    expect(disable.stdout).toContain("disabled at");
    expect((await errorOf(other.api.agents.listAgents({}))).code).toBe(Code.Unauthenticated);

    const plain = await guru(t, ["admin", "list-tokens", "--all"]);
    expect(plain.stdout).toMatch(/cli-2 \([0-9a-f-]{36}\)\s+disabled/);
    const bad = await guru(t, ["admin", "disable-tech"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("usage: guru admin disable-tech");
  });
});
