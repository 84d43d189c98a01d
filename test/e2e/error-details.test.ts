// Every refusal carries its typed detail (guru.api.v1.ErrorInfo) over real
// HTTP to a real Connect client: the code, the reason and the metadata a
// client acts on. Each case also checks that nothing else changed.
import { createHash } from "node:crypto";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { UploadStatus } from "../../gen/guru/api/v1/files_pb.js";
import { createApiClients } from "../../lib/api-client.ts";
import { describeDatabases } from "../support/databases.ts";
import { errorOf, openTunnel } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";

const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const missingId = "00000000-0000-4000-8000-000000000000";

describeDatabases("error details", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { commandRateLimit: 3, commandRateWindowMs: 60_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("an offline or unknown agent: AGENT_OFFLINE and AGENT_NOT_FOUND with the agent id; no session opened", async () => {
    const offline = await t.enrollAgent(`offline-${kind}`);
    const gone = await errorOf(t.admin.sessions.openTunnel({ agentId: offline.agentId }));
    expect(gone).toMatchObject({ code: Code.Unavailable, reason: "AGENT_OFFLINE", kind: "agent_offline" });
    expect(gone.metadata).toMatchObject({ agentId: offline.agentId, agentName: `offline-${kind}` });
    const unknown = await errorOf(t.admin.sessions.openTunnel({ agentId: missingId }));
    expect(unknown).toMatchObject({ code: Code.NotFound, reason: "AGENT_NOT_FOUND", metadata: { agentId: missingId } });
    const bad = await errorOf(t.admin.sessions.openTunnel({ agentId: "web-1" }));
    expect(bad).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_ARGUMENT", metadata: { field: "agentId" } });
    expect((await t.admin.sessions.listSessions({ agentId: offline.agentId })).sessions).toEqual([]);
  });

  it("a tunnel already active: TUNNEL_ACTIVE naming the holder's session; the holder keeps it", async () => {
    const holder = await openTunnel(t, "held");
    const other = await t.createTech(`other-${kind}`);
    const err = await errorOf(other.api.sessions.openTunnel({ agentId: holder.agent.agentId }));
    expect(err).toMatchObject({ code: Code.AlreadyExists, reason: "TUNNEL_ACTIVE", metadata: { sessionId: holder.sessionId, agentId: holder.agent.agentId } });
    const status = await holder.api.sessions.getTunnelStatus({ sessionId: holder.sessionId });
    expect(status.session?.status).toBe(SessionStatus.ACTIVE);
    // Someone else's session, and one that does not exist.
    const foreign = await errorOf(other.api.exec.runCommand({ sessionId: holder.sessionId, command: "true" }));
    expect(foreign).toMatchObject({ code: Code.PermissionDenied, reason: "SESSION_NOT_OWNED", metadata: { sessionId: holder.sessionId } });
    const none = await errorOf(holder.api.exec.runCommand({ sessionId: missingId, command: "true" }));
    expect(none).toMatchObject({ code: Code.NotFound, reason: "SESSION_NOT_FOUND", metadata: { sessionId: missingId } });
  });

  it("a closed session: SESSION_NOT_ACTIVE with its id and status; nothing ran", async () => {
    const tunnel = await openTunnel(t, "closed");
    await tunnel.api.sessions.closeTunnel({ sessionId: tunnel.sessionId });
    const err = await errorOf(tunnel.api.exec.runCommand({ sessionId: tunnel.sessionId, command: `touch ${join(t.tempDir, "closed-ran")}` }));
    expect(err).toMatchObject({ code: Code.FailedPrecondition, reason: "SESSION_NOT_ACTIVE", metadata: { sessionId: tunnel.sessionId, status: "closed" } });
    await expect(access(join(t.tempDir, "closed-ran"))).rejects.toThrow();
  });

  it("the command rate limit: RATE_LIMITED with retryAfterMs, limit and window", async () => {
    const { api, sessionId } = await openTunnel(t, "rate");
    for (let i = 0; i < 3; i++) await api.exec.runCommand({ sessionId, command: "true" });
    const err = await errorOf(api.exec.runCommand({ sessionId, command: "true" }));
    expect(err).toMatchObject({ code: Code.ResourceExhausted, reason: "RATE_LIMITED", kind: "rate_limited", metadata: { limit: "3", windowMs: "60000" } });
    const retryAfterMs = Number(err.metadata.retryAfterMs);
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it("uploads: UPLOAD_OFFSET_MISMATCH with expectedOffset, TOO_LARGE, UPLOAD_INCOMPLETE; the upload stays resumable", async () => {
    const { api, sessionId } = await openTunnel(t, "upload", { allow: [t.tempDir] });
    const data = Buffer.alloc(100, 7);
    const path = join(t.tempDir, `upload-${kind}.bin`);
    const { uploadId } = await api.files.startUpload({ sessionId, path, size: 100n, sha256: sha(data) });
    await api.files.uploadChunk({ uploadId, offset: 0n, data: data.subarray(0, 40) });

    const gap = await errorOf(api.files.uploadChunk({ uploadId, offset: 60n, data: data.subarray(60) }));
    expect(gap).toMatchObject({ code: Code.FailedPrecondition, reason: "UPLOAD_OFFSET_MISMATCH", metadata: { uploadId, expectedOffset: "40", offset: "60" } });
    const over = await errorOf(api.files.uploadChunk({ uploadId, offset: 40n, data: Buffer.alloc(61) }));
    expect(over).toMatchObject({ code: Code.ResourceExhausted, reason: "TOO_LARGE", kind: "too_large", metadata: { uploadId, size: "100", end: "101" } });
    const early = await errorOf(api.files.finishUpload({ uploadId }));
    expect(early).toMatchObject({ code: Code.FailedPrecondition, reason: "UPLOAD_INCOMPLETE", metadata: { expectedOffset: "40", size: "100" } });

    // Nothing was lost: resume from the offset the detail named.
    const state = await api.files.getUpload({ uploadId });
    expect([state.status, state.committedOffset]).toEqual([UploadStatus.ACTIVE, BigInt(gap.metadata.expectedOffset)]);
    await api.files.uploadChunk({ uploadId, offset: BigInt(gap.metadata.expectedOffset), data: data.subarray(40) });
    await api.files.finishUpload({ uploadId });
    expect((await readFile(path)).equals(data)).toBe(true);

    // The finished upload, someone else's, and the file now in the way.
    const again = await errorOf(api.files.uploadChunk({ uploadId, offset: 0n, data }));
    expect(again).toMatchObject({ code: Code.FailedPrecondition, reason: "UPLOAD_NOT_ACTIVE", metadata: { uploadId, status: "finished" } });
    const exists = await errorOf(api.files.startUpload({ sessionId, path, size: 1n, sha256: sha(Buffer.from("x")), overwrite: false }));
    expect(exists).toMatchObject({ code: Code.AlreadyExists, reason: "FILE_EXISTS", metadata: { path } });
    expect((await readFile(path)).equals(data)).toBe(true);
    const unknown = await errorOf(api.files.getUpload({ uploadId: missingId }));
    expect(unknown).toMatchObject({ code: Code.NotFound, reason: "UPLOAD_NOT_FOUND", metadata: { uploadId: missingId } });
  });

  it("paths: PATH_NOT_ALLOWED and PATH_NOT_FOUND from the agent, with the path", async () => {
    const allowed = join(t.tempDir, "only-here");
    await mkdir(allowed, { recursive: true });
    const { api, sessionId } = await openTunnel(t, "paths", { allow: [allowed] });
    const outside = await errorOf(api.files.stat({ sessionId, path: "/etc/hostname" }));
    expect(outside).toMatchObject({ code: Code.PermissionDenied, reason: "PATH_NOT_ALLOWED", kind: "denied", metadata: { path: "/etc/hostname" } });
    const write = await errorOf(api.files.startUpload({ sessionId, path: join(t.tempDir, "escape.txt"), size: 1n, sha256: sha(Buffer.from("x")) }));
    expect(write).toMatchObject({ code: Code.PermissionDenied, reason: "PATH_NOT_ALLOWED" });
    await expect(access(join(t.tempDir, "escape.txt"))).rejects.toThrow();
    const missing = await errorOf(api.files.stat({ sessionId, path: join(allowed, "nope.txt") }));
    expect(missing).toMatchObject({ code: Code.NotFound, reason: "PATH_NOT_FOUND", metadata: { path: join(allowed, "nope.txt") } });
    const cwd = await errorOf(api.exec.runCommand({ sessionId, command: "true", workingDir: "/etc" }));
    expect(cwd).toMatchObject({ code: Code.PermissionDenied, reason: "PATH_NOT_ALLOWED", metadata: { path: "/etc" } });
  });

  it("the agent's local policy: POLICY_DENIED naming the rule", async () => {
    const policyFile = join(t.tempDir, `policy-${kind}.json`);
    await writeFile(policyFile, JSON.stringify({ commands: { deny: ["rm *"] } }));
    const { api, sessionId } = await openTunnel(t, "policy", { env: { GURU_POLICY: policyFile } });
    const err = await errorOf(api.exec.runCommand({ sessionId, command: "rm -rf /tmp/nothing-here" }));
    expect(err).toMatchObject({ code: Code.PermissionDenied, reason: "POLICY_DENIED", metadata: { rule: "rm *" } });
  });

  it("tokens: TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_REVOKED, TECHNICIAN_DISABLED; ADMIN_REQUIRED for a technician", async () => {
    const call = (token?: string) => errorOf(createApiClients({ url: t.url, token }).agents.listAgents({}));
    expect(await call()).toMatchObject({ code: Code.Unauthenticated, reason: "TOKEN_MISSING" });
    expect(await call("not-a-jwt")).toMatchObject({ code: Code.Unauthenticated, reason: "TOKEN_INVALID" });

    const tech = await t.createTech(`tokens-${kind}`);
    const short = await t.server.tokens.issue(tech.technicianId, 1);
    await new Promise((r) => setTimeout(r, 2100));
    expect(await call(short.token)).toMatchObject({ code: Code.Unauthenticated, reason: "TOKEN_EXPIRED", kind: "unauthenticated" });

    const revoked = await t.server.tokens.issue(tech.technicianId);
    await createApiClients({ url: t.url, token: revoked.token }).agents.listAgents({});
    await t.admin.admin.revokeToken({ tokenId: revoked.tokenId });
    expect(await call(revoked.token)).toMatchObject({ code: Code.Unauthenticated, reason: "TOKEN_REVOKED" });
    // The technician's other token still works.
    await tech.api.agents.listAgents({});

    const disabledTech = await t.createTech(`disabled-${kind}`);
    await t.admin.admin.disableTechnician({ technicianId: disabledTech.technicianId, reason: "left" });
    expect(await call(disabledTech.token)).toMatchObject({ code: Code.Unauthenticated, reason: "TECHNICIAN_DISABLED" });

    const notAdmin = await errorOf(tech.api.admin.createTech({ name: `nope-${kind}` }));
    expect(notAdmin).toMatchObject({ code: Code.PermissionDenied, reason: "ADMIN_REQUIRED" });
    expect((await t.server.store.technicians.list()).map((x) => x.name)).not.toContain(`nope-${kind}`);
  });

  it("JSON requests: an unknown enum name is refused naming the field and its values, and nothing runs; unknown fields are ignored", async () => {
    const { token, sessionId, technicianId } = await openTunnel(t, "json");
    const marker = join(t.tempDir, `json-${kind}-marker`);
    const post = (body: unknown) =>
      fetch(`${t.url}/guru.api.v1.ExecService/RunCommand`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
    const refused = await post({ sessionId, command: `echo "$0" > ${marker}`, shell: "bash" });
    expect(refused.status).toBe(400);
    const error = (await refused.json()) as { code: string; message: string; details: { type: string; value: string }[] };
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain("shell");
    expect(error.message).toContain("SHELL_BASH");
    const { fromBinary } = await import("@bufbuild/protobuf");
    const { ErrorInfoSchema } = await import("../../gen/guru/api/v1/errors_pb.js");
    const detail = error.details.find((d) => d.type === "guru.api.v1.ErrorInfo");
    expect(detail).toBeDefined();
    const info = fromBinary(ErrorInfoSchema, Buffer.from(detail!.value, "base64"));
    expect(info.reason).toBe("UNKNOWN_ENUM_VALUE");
    expect(info.metadata).toMatchObject({ field: "shell", value: "bash" });
    expect(info.metadata.allowed.split(",")).toEqual(["SHELL_UNSPECIFIED", "SHELL_BASH", "SHELL_SH", "SHELL_POWERSHELL", "SHELL_PWSH", "SHELL_CMD"]);
    await expect(access(marker)).rejects.toThrow();
    expect(await t.server.store.audit.listCommands({ technicianId })).toHaveLength(0);

    // The full name runs under bash; an unknown field (from a newer client) is ignored.
    const ran = await post({ sessionId, command: `echo "$0" > ${marker}`, shell: "SHELL_BASH", someFutureField: { x: 1 } });
    expect(ran.status, await ran.clone().text()).toBe(200);
    expect((await readFile(marker, "utf8")).trim()).toMatch(/bash$/);
  });
});
