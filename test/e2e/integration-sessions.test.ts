// Partner sessions end to end: real server, real agent processes with their
// own local policy and a consent.command script, real HTTP/1.1 Connect
// clients (WatchSessions streams over HTTP/1.1).
import { chmod, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { WatchSessionsResponse } from "../../gen/guru/integration/v1/integration_pb.js";
import { ConsentState, SessionEventType, SessionMode, SessionStatus, type Session } from "../../gen/guru/integration/v1/sessions_pb.js";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type AgentProcess, type TestServer } from "../support/harness.ts";
import { createIntegrationClient, prompterScript, type IntegrationClient } from "../support/integration-client.ts";
import { errorOf } from "../support/rpc-errors.ts";

const consentTimeoutMs = 2500;
// Shorter than a person's decision: an attended call must not fail with it.
const tunnelOpenTimeoutMs = 800;

describeDatabases("integration sessions and consent", (kind) => {
  let h: TestServer;
  let key: string;
  let partner: IntegrationClient;
  let promptDir: string;
  const byExternal = (externalId: string) => ({ ref: { case: "externalId" as const, value: externalId } });

  beforeAll(async () => {
    h = await startTestServer({ kind, config: { consentTimeoutMs, tunnelOpenTimeoutMs } });
    ({ key } = await h.admin.admin.createIntegrationKey({ name: "acme", allowedOrigins: ["https://rmm.example.com"] }));
    partner = createIntegrationClient(h.url, key);
    promptDir = await mkdtemp(join(h.tempDir, "prompt-"));
    await writeFile(join(promptDir, "ask.sh"), prompterScript(promptDir));
    await chmod(join(promptDir, "ask.sh"), 0o755);
    await decide("approve");
  }, 60_000);
  afterAll(() => h?.close());

  const decide = (decision: "approve" | "slow-approve" | "deny" | "hang") => writeFile(join(promptDir, "decision"), decision);
  const askedLog = () => readFile(join(promptDir, "asked.log"), "utf8").catch(() => "");

  /** Provisions a device and starts its agent with a local policy; waits until it is online. */
  async function startDevice(externalId: string, consent?: Record<string, unknown>): Promise<{ agentId: string; agentKey: string; proc: AgentProcess }> {
    const { agentId, agentKey } = await partner.provisionAgentKey({ externalId });
    const proc = await spawnWithPolicy(agentId, agentKey, consent);
    await proc.waitOnline();
    return { agentId, agentKey, proc };
  }

  async function spawnWithPolicy(agentId: string, agentKey: string, consent?: Record<string, unknown>): Promise<AgentProcess> {
    const policyFile = join(promptDir, `policy-${agentId}.json`);
    await writeFile(policyFile, JSON.stringify(consent ? { consent } : {}));
    return h.spawnAgent({ agentId, agentKey, env: { GURU_POLICY: policyFile, GURU_LOG_LEVEL: "info" } });
  }

  async function waitStatus(sessionId: string, status: SessionStatus, timeoutMs = 15_000): Promise<Session> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { session } = await partner.getSession({ sessionId });
      if (session?.status === status) return session;
      if (Date.now() > deadline) throw new Error(`session ${sessionId} is ${session?.status}, not ${status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Opens WatchSessions and returns once the server registered it; events collect in `events`. */
  async function watch(client: IntegrationClient, sessionId = "") {
    const controller = new AbortController();
    const events: WatchSessionsResponse[] = [];
    const stream = client.watchSessions({ sessionId }, { signal: controller.signal })[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.value?.message.case).toBe("started");
    const pump = (async () => {
      try {
        for (;;) {
          const next = await stream.next();
          if (next.done) return;
          events.push(next.value);
        }
      } catch {
        // aborted by the test
      }
    })();
    return {
      events: () => events.flatMap((m) => (m.message.case === "event" ? [m.message.value] : [])),
      async waitFor(count: number, timeoutMs = 15_000) {
        const deadline = Date.now() + timeoutMs;
        while (this.events().length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        return this.events();
      },
      async close() {
        controller.abort();
        await pump;
      },
    };
  }

  it("provisions a device, connects its agent with the key, rotates the key (old link dropped) and revokes it", async () => {
    const first = await startDevice("laptop-7");
    const again = await partner.provisionAgentKey({ externalId: "laptop-7" });
    expect(again.agentId).toBe(first.agentId);
    expect(again.rotated).toBe(true);
    // The old link drops and the old key no longer connects.
    const deadline = Date.now() + 5000;
    while (h.server.router.isOnline(first.agentId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(h.server.router.isOnline(first.agentId)).toBe(false);
    await new Promise((r) => setTimeout(r, 700));
    expect(h.server.router.isOnline(first.agentId)).toBe(false);
    await first.proc.stop();
    const rotated = await spawnWithPolicy(first.agentId, again.agentKey);
    await rotated.waitOnline();
    // Named by either id.
    const byId = await partner.createSession({ agent: { ref: { case: "agentId", value: first.agentId } }, mode: SessionMode.UNATTENDED });
    expect(byId.session?.status).toBe(SessionStatus.ACTIVE);
    expect(byId.session?.externalId).toBe("laptop-7");
    await partner.revokeAgentKey({ agent: byExternal("laptop-7") });
    expect(h.server.router.isOnline(first.agentId)).toBe(false);
    expect((await partner.getSession({ sessionId: byId.session!.sessionId })).session?.status).toBe(SessionStatus.CLOSED);
    const refused = await errorOf(partner.createSession({ agent: byExternal("laptop-7"), mode: SessionMode.UNATTENDED }));
    expect(refused.code).toBe(Code.PermissionDenied);
    expect(refused.message).toMatch(/revoked/);
    await rotated.stop();
  }, 60_000);

  it("refuses bad provisioning and another partner's devices, changing nothing", async () => {
    expect((await errorOf(partner.provisionAgentKey({ externalId: "" }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(partner.provisionAgentKey({ externalId: "has space" }))).code).toBe(Code.InvalidArgument);
    const { key: otherKey } = await h.admin.admin.createIntegrationKey({ name: "other" });
    const other = createIntegrationClient(h.url, otherKey);
    const mine = await partner.provisionAgentKey({ externalId: "kiosk-1" });
    const err = await errorOf(other.createSession({ agent: { ref: { case: "agentId", value: mine.agentId } }, mode: SessionMode.UNATTENDED }));
    expect(err.code).toBe(Code.NotFound);
    expect((await errorOf(other.revokeAgentKey({ agent: { ref: { case: "agentId", value: mine.agentId } } }))).code).toBe(Code.NotFound);
    expect((await h.server.store.agents.get(mine.agentId))?.revokedAt).toBeNull();
    expect((await errorOf(partner.createSession({ agent: byExternal("kiosk-1"), mode: SessionMode.UNSPECIFIED }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(partner.createSession({ agent: byExternal("kiosk-1"), mode: SessionMode.UNATTENDED, capabilities: ["root"] }))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await partner.listSessions({ agent: byExternal("kiosk-1") })).sessions).toEqual([]);
  }, 60_000);

  it("keeps a session created while the agent is offline pending across a server restart, and binds it when the agent connects", async () => {
    const { agentId, agentKey } = await partner.provisionAgentKey({ externalId: "server-12" });
    const created = await partner.createSession({ agent: byExternal("server-12"), mode: SessionMode.UNATTENDED, technician: "alice" });
    const sessionId = created.session!.sessionId;
    expect(created.session?.status).toBe(SessionStatus.PENDING);
    expect(created.session?.technician).toBe("alice@acme");
    expect(created.session?.consentState).toBe(ConsentState.NOT_REQUIRED);
    // The pending session holds the agent: a technician cannot open a tunnel, nor the partner a second session.
    const tech = await h.createTech("bob");
    const held = await errorOf(tech.api.sessions.openTunnel({ agentId }));
    expect([Code.AlreadyExists, Code.Unavailable]).toContain(held.code);
    expect((await errorOf(partner.createSession({ agent: byExternal("server-12"), mode: SessionMode.UNATTENDED }))).code).toBe(Code.AlreadyExists);

    await h.stopServer();
    await h.restart();
    partner = createIntegrationClient(h.url, key);
    expect((await partner.getSession({ sessionId })).session?.status).toBe(SessionStatus.PENDING);
    const watcher = await watch(partner, sessionId);
    const proc = await spawnWithPolicy(agentId, agentKey);
    const active = await waitStatus(sessionId, SessionStatus.ACTIVE);
    expect(active.activatedAt).toBeDefined();
    expect((await watcher.waitFor(1)).map((e) => e.type)).toEqual([SessionEventType.ACTIVE]);
    // The technician who acted is a person of the key's, created on first use.
    const alice = await h.server.store.technicians.getByName("alice@acme");
    expect(alice?.role).toBe("tech");
    await partner.endSession({ sessionId, reason: "done" });
    const closed = await watcher.waitFor(2);
    expect(closed[1].type).toBe(SessionEventType.CLOSED);
    expect(closed[1].reason).toMatch(/ended by acme: done/);
    await watcher.close();
    await proc.stop();
  }, 60_000);

  it("streams every event of an attended session in order over HTTP/1.1, and asks nothing before the agent is there", async () => {
    await decide("approve");
    const { agentId, agentKey } = await partner.provisionAgentKey({ externalId: "desk-3" });
    const watcher = await watch(partner);
    const created = await partner.createSession({ agent: byExternal("desk-3"), mode: SessionMode.ATTENDED, technician: "carol", capabilities: ["exec"] });
    const sessionId = created.session!.sessionId;
    expect(created.session?.consentState).toBe(ConsentState.WAITING);
    const proc = await spawnWithPolicy(agentId, agentKey, { mode: "ask", command: [join(promptDir, "ask.sh")] });
    await waitStatus(sessionId, SessionStatus.ACTIVE);
    await partner.endSession({ sessionId });
    const events = (await watcher.waitFor(5)).filter((e) => e.session?.sessionId === sessionId);
    expect(events.map((e) => e.type)).toEqual([
      SessionEventType.PENDING,
      SessionEventType.CONSENT_ASKED,
      SessionEventType.APPROVED,
      SessionEventType.ACTIVE,
      SessionEventType.CLOSED,
    ]);
    expect(events[4].session?.status).toBe(SessionStatus.CLOSED);
    expect(await askedLog()).toContain(`${sessionId} carol@acme exec`);
    await watcher.close();
    await proc.stop();
  }, 60_000);

  it("approves an attended session through the prompter, stores the receipt, and waits for the person longer than the tunnel-open timeout", async () => {
    await decide("slow-approve");
    const { proc } = await startDevice("ws-approve", { mode: "ask", command: [join(promptDir, "ask.sh")] });
    const creating = partner.createSession({ agent: byExternal("ws-approve"), mode: SessionMode.ATTENDED, technician: "dave", capabilities: ["files"] });
    // While the person decides, the session shows pending and asked, and no tunnel reached the agent.
    const list = async () => (await partner.listSessions({ agent: byExternal("ws-approve") })).sessions;
    let pending: Session | undefined;
    for (let i = 0; i < 200 && pending?.consentState !== ConsentState.ASKED; i++) {
      pending = (await list())[0];
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(pending?.status).toBe(SessionStatus.PENDING);
    expect(proc.output()).not.toContain(`"sessionId":"${pending?.sessionId}","technician":"dave@acme","msg":"tunnel mode"`);
    const { session } = await creating;
    expect(session?.status).toBe(SessionStatus.ACTIVE);
    const receipt = (await partner.getSession({ sessionId: session!.sessionId })).session?.consent;
    expect(receipt).toMatchObject({ approved: true, technician: "dave@acme", partner: "acme", capabilities: ["files"] });
    expect(receipt?.responder).not.toBe("");
    expect(receipt?.askedAt).toBeDefined();
    expect(receipt?.answeredAt).toBeDefined();
    await partner.endSession({ sessionId: session!.sessionId });
    await proc.stop();
  }, 60_000);

  it("refuses an attended session the person denies, with the reason, and sends the agent nothing", async () => {
    await decide("deny");
    const { proc } = await startDevice("ws-deny", { mode: "ask", command: [join(promptDir, "ask.sh")] });
    const err = await errorOf(partner.createSession({ agent: byExternal("ws-deny"), mode: SessionMode.ATTENDED, technician: "erin" }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/consent denied: not now, I am presenting/);
    const [session] = (await partner.listSessions({ agent: byExternal("ws-deny") })).sessions;
    expect(session.status).toBe(SessionStatus.CLOSED);
    expect(session.consentState).toBe(ConsentState.DENIED);
    expect(session.consent).toMatchObject({ approved: false, reason: "not now, I am presenting" });
    await new Promise((r) => setTimeout(r, 200));
    expect(proc.output()).toContain("consent answered");
    expect(proc.output()).not.toContain("tunnel mode");
    await proc.stop();
  }, 60_000);

  it("takes no answer in time as a denial, without DeadlineExceeded", async () => {
    await decide("hang");
    const { proc } = await startDevice("ws-timeout", { mode: "ask", command: [join(promptDir, "ask.sh")] });
    const started = Date.now();
    const err = await errorOf(partner.createSession({ agent: byExternal("ws-timeout"), mode: SessionMode.ATTENDED }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/consent timed out/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(consentTimeoutMs - 200);
    const [session] = (await partner.listSessions({ agent: byExternal("ws-timeout") })).sessions;
    expect(session.consentState).toBe(ConsentState.TIMED_OUT);
    expect(session.status).toBe(SessionStatus.CLOSED);
    expect(proc.output()).not.toContain("tunnel mode");
    await proc.stop();
  }, 60_000);

  it("opens unattended sessions without a prompt, and refuses them where the policy says ask", async () => {
    const before = await askedLog();
    const { proc } = await startDevice("srv-unattended");
    const { session } = await partner.startRemoteControl({ agent: byExternal("srv-unattended"), mode: SessionMode.UNATTENDED });
    expect(session?.status).toBe(SessionStatus.ACTIVE);
    expect(session?.consentState).toBe(ConsentState.NOT_REQUIRED);
    expect(await askedLog()).toBe(before);
    await partner.endSession({ sessionId: session!.sessionId });

    const asking = await startDevice("ws-ask-only", { mode: "ask", command: [join(promptDir, "ask.sh")] });
    const err = await errorOf(partner.createSession({ agent: byExternal("ws-ask-only"), mode: SessionMode.UNATTENDED }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/local policy \(consent\.mode "ask"\)/);
    expect((await partner.listSessions({ agent: byExternal("ws-ask-only") })).sessions).toEqual([]);
    expect(await askedLog()).toBe(before);
    await proc.stop();
    await asking.proc.stop();
  }, 60_000);
});
