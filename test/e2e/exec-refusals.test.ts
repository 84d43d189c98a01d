// Remote commands that must not run: working dirs outside the allowlist,
// agent policy refusals, the rate limit, closed and foreign sessions, bad
// input. Each refusal has its own code, is audited, and changes nothing else.
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import type { Shell } from "../../gen/guru/api/v1/exec_pb.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDatabases } from "../support/databases.ts";
import { errorOf, openTunnel } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";

describeDatabases("remote command refusals", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses working dirs outside the allowed paths: '..', a symlink out, an absolute path", async () => {
    const allowed = join(t.tempDir, "allowed");
    const outside = join(t.tempDir, "outside");
    await mkdir(allowed, { recursive: true });
    await mkdir(outside, { recursive: true });
    await symlink(outside, join(allowed, "link-out"));
    await writeFile(join(outside, "marker"), "x");
    const { api, sessionId } = await openTunnel(t, "paths", { allow: [allowed] });

    for (const workingDir of ["..", "../outside", join(allowed, "link-out"), "link-out", "/etc", outside]) {
      const err = await errorOf(api.exec.runCommand({ sessionId, command: "touch escaped", workingDir }));
      expect(err.code, `${workingDir}: ${err.message}`).toBe(Code.PermissionDenied);
      expect(err.reason).toBe("PATH_NOT_ALLOWED");
      expect(err.message).toContain(workingDir);
      expect(err.message).toContain(allowed);
    }
    // Inside is fine, and a relative dir resolves against the first allowed path.
    await mkdir(join(allowed, "sub"));
    const ok = await api.exec.runCommand({ sessionId, command: "pwd", workingDir: "sub" });
    expect(Buffer.from(ok.stdout).toString().trim()).toBe(join(allowed, "sub"));

    const rows = await t.server.store.audit.listCommands({ sessionId });
    expect(rows.map((r) => r.outcome)).toEqual(["allowed", ...Array(6).fill("refused")]);
    expect(rows[1].refusalReason).toContain("outside the allowed paths");
    expect(rows[1].workingDir).toBe(outside);
  });

  it("refuses what the agent's local policy denies, naming the rule", async () => {
    const policyFile = join(t.tempDir, "policy.json");
    await writeFile(policyFile, JSON.stringify({ commands: { deny: ["rm *", "re:\\bshutdown\\b"] } }));
    const { api, sessionId } = await openTunnel(t, "policy", { env: { GURU_POLICY: policyFile } });

    const rm = await errorOf(api.exec.runCommand({ sessionId, command: "rm -rf /tmp/nothing-here" }));
    expect(rm).toMatchObject({ code: Code.PermissionDenied, reason: "POLICY_DENIED", metadata: { rule: "rm *" } });
    expect(rm.message).toContain('"rm *"');
    const shutdown = await errorOf(api.exec.runCommand({ sessionId, command: "sudo shutdown -h now" }));
    expect(shutdown.code).toBe(Code.PermissionDenied);
    expect(shutdown.message).toContain("shutdown");
    const ok = await api.exec.runCommand({ sessionId, command: "echo allowed" });
    expect(Buffer.from(ok.stdout).toString()).toBe("allowed\n");

    const rows = await t.server.store.audit.listCommands({ sessionId });
    expect(rows.map((r) => [r.command, r.outcome])).toEqual([
      ["echo allowed", "allowed"],
      ["sudo shutdown -h now", "refused"],
      ["rm -rf /tmp/nothing-here", "refused"],
    ]);
    expect(rows[2].refusalReason).toContain("rm *");
  });

  it("refuses with the default limit of 100 commands per minute: the 101st gets the wait", async () => {
    const { api, sessionId, technicianId, agent } = await openTunnel(t, "rate100");
    for (let i = 0; i < 100; i += 20) {
      await Promise.all(Array.from({ length: 20 }, () => api.exec.runCommand({ sessionId, command: "true" })));
    }
    const err = await errorOf(api.exec.runCommand({ sessionId, command: "true" }));
    expect(err).toMatchObject({ code: Code.ResourceExhausted, reason: "RATE_LIMITED", metadata: { limit: "100", windowMs: "60000" } });
    expect(Number(err.metadata.retryAfterMs)).toBeGreaterThan(0);
    expect(err.message).toMatch(/at most 100 commands per 60 s .* retry in \d+\.\d s/);
    const rows = await t.server.store.audit.listCommands({ sessionId, limit: 200 });
    expect(rows).toHaveLength(101);
    expect(rows[0]).toMatchObject({ outcome: "refused", technicianId, agentId: agent.agentId });
    expect(rows[0].refusalReason).toContain("retry in");
  });

  it("refuses commands on a closed, someone else's or an unknown session, and bad input", async () => {
    const mine = await openTunnel(t, "sessions");
    const theirs = await openTunnel(t, "theirs");
    const foreign = await errorOf(mine.api.exec.runCommand({ sessionId: theirs.sessionId, command: "id" }));
    expect(foreign).toMatchObject({ code: Code.PermissionDenied, reason: "SESSION_NOT_OWNED" });
    expect(foreign.message).toContain("another technician");
    expect((await errorOf(mine.api.exec.runCommand({ sessionId: "00000000-0000-4000-8000-000000000000", command: "id" }))).code).toBe(Code.NotFound);
    expect((await errorOf(mine.api.exec.runCommand({ sessionId: "nope", command: "id" }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(mine.api.exec.runCommand({ sessionId: mine.sessionId, command: "  " }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(mine.api.exec.runCommand({ sessionId: mine.sessionId, command: "id", shell: 42 as Shell }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(mine.api.exec.runCommand({ sessionId: mine.sessionId, command: "id", env: { "A=B": "x" } }))).code).toBe(Code.InvalidArgument);

    await mine.api.sessions.closeTunnel({ sessionId: mine.sessionId });
    const closed = await errorOf(mine.api.exec.runCommand({ sessionId: mine.sessionId, command: "id" }));
    expect(closed).toMatchObject({ code: Code.FailedPrecondition, reason: "SESSION_NOT_ACTIVE", metadata: { sessionId: mine.sessionId } });
    expect(closed.message).toContain("closed");
    const streamed = await errorOf(
      (async () => {
        for await (const _ of mine.api.exec.streamCommand({ sessionId: mine.sessionId, command: "id" })) void _;
      })(),
    );
    expect(streamed).toMatchObject({ code: Code.FailedPrecondition, reason: "SESSION_NOT_ACTIVE" });

    const rows = await t.server.store.audit.listCommands({ technicianId: mine.technicianId });
    expect(rows).toHaveLength(8);
    expect(rows.every((r) => r.outcome === "refused" && r.exitCode === null && r.refusalReason)).toBe(true);
    // Nothing reached the other technician's agent.
    expect(await t.server.store.audit.listCommands({ sessionId: theirs.sessionId })).toHaveLength(1);
    expect((await t.server.store.audit.listCommands({ sessionId: theirs.sessionId }))[0].technicianId).toBe(mine.technicianId);
  });
});

describeDatabases("remote command limits and alerts", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { commandRateLimit: 5, commandRateWindowMs: 1500, failureAlertThreshold: 3, failureAlertWindowMs: 60_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses the call past a small limit with the time to wait, then allows again after the window", async () => {
    const { api, sessionId } = await openTunnel(t, "rate5");
    for (let i = 0; i < 5; i++) await api.exec.runCommand({ sessionId, command: "true" });
    const err = await errorOf(api.exec.runCommand({ sessionId, command: "true" }));
    expect(err).toMatchObject({ code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    const waitMs = Number(err.metadata.retryAfterMs);
    expect(waitMs).toBeGreaterThan(0);
    expect(waitMs).toBeLessThanOrEqual(1500);
    await new Promise((r) => setTimeout(r, waitMs + 50));
    await api.exec.runCommand({ sessionId, command: "true" });
  });

  it("raises one alert past the failure threshold: a warn, an audit event and a counter", async () => {
    const { api, sessionId, technicianId } = await openTunnel(t, "alerts");
    for (let i = 0; i < 5; i++) {
      await api.exec.runCommand({ sessionId, command: "exit 1" });
      await new Promise((r) => setTimeout(r, 300)); // stay under the rate limit
    }
    const events = (await t.server.store.audit.listTunnel({ technicianId })).filter((e) => e.event === "alert");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: "raised" });
    expect(events[0].reason).toContain("4 failed or refused commands");
    const res = await fetch(`${t.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/guru_security_alerts_total\{kind="command_failures_technician"\} 1/);
    expect(text).toMatch(/guru_commands_total\{outcome="failed"\} 5/);
  });

  it("removes audit rows past retention in the sweep", async () => {
    const old = await t.server.store.audit.command({ command: "ancient", outcome: "allowed" });
    const fresh = await t.server.store.audit.command({ command: "fresh", outcome: "allowed" });
    await t.server.store.db.query("UPDATE command_audit SET at = now() - interval '91 days' WHERE id = $1", [old.id]);
    const removed = await t.server.auditRetention.sweep();
    expect(removed.commands).toBe(1);
    const left = (await t.server.store.audit.listCommands({ limit: 10_000 })).map((r) => r.id);
    expect(left).toContain(fresh.id);
    expect(left).not.toContain(old.id);
  });
});
