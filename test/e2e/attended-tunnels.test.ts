// A technician's attended tunnel (OpenTunnelRequest.attended): the agent's
// own consent policy answers (auto-approve, deny) or asks the person through
// its consent.command; the tunnel is pending while they decide, opens with
// only what they approved, and a denial or silence leaves nothing open. An
// agent whose policy asks for every session refuses unattended tunnels before
// anything reaches it.
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type AgentProcess, type TestServer } from "../support/harness.ts";
import { prompterScript } from "../support/integration-client.ts";
import { errorOf } from "../support/rpc-errors.ts";

const consentTimeoutMs = 2500;
const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

describeDatabases("attended tunnels", (kind) => {
  let t: TestServer;
  let tech: Awaited<ReturnType<TestServer["createTech"]>>;
  let promptDir: string;
  const agents: AgentProcess[] = [];
  beforeAll(async () => {
    t = await startTestServer({ kind, config: { consentTimeoutMs } });
    tech = await t.createTech("attended-tech");
    promptDir = await mkdtemp(join(tmpdir(), "guru-attended-"));
    await writeFile(join(promptDir, "ask.sh"), prompterScript(promptDir));
    await chmod(join(promptDir, "ask.sh"), 0o755);
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await t?.close();
    await rm(promptDir, { recursive: true, force: true });
  });

  const decide = (decision: "approve" | "slow-approve" | "deny" | "hang") => writeFile(join(promptDir, "decision"), decision);

  /** An agent with this consent policy, online. */
  async function agentWith(name: string, consent: Record<string, unknown>): Promise<{ agentId: string; proc: AgentProcess }> {
    const { agentId, agentKey } = await t.admin.admin.enrollAgent({ name });
    const policyFile = join(promptDir, `policy-${name}.json`);
    await writeFile(policyFile, JSON.stringify({ consent }));
    const proc = await t.spawnAgent({ agentId, agentKey, env: { GURU_POLICY: policyFile, GURU_LOG_LEVEL: "info" } });
    agents.push(proc);
    await proc.waitOnline();
    return { agentId, proc };
  }

  const tunnelAudit = async (agentId: string) =>
    (
      await t.server.store.db.query<{ event: string; outcome: string; detail: { receipt?: Record<string, unknown> } | null }>(
        "SELECT event, outcome, detail FROM tunnel_audit WHERE agent_id = $1 ORDER BY id",
        [agentId],
      )
    ).rows;
  const sessionsOf = async (agentId: string) => (await tech.api.sessions.listSessions({ agentId, status: SessionStatus.UNSPECIFIED })).sessions;

  it("opens once the agent's policy approves, with only the approved capabilities, the receipt in the audit", async () => {
    const { agentId } = await agentWith(`auto-${kind}`, { mode: "auto-approve" });
    const { sessionId, session } = await tech.api.sessions.openTunnel({ agentId, attended: true, capabilities: ["exec"] });
    expect(session?.status).toBe(SessionStatus.ACTIVE);
    const ran = await tech.api.exec.runCommand({ sessionId, command: "echo approved" });
    expect(Buffer.from(ran.stdout).toString()).toBe("approved\n");
    // Files were not approved: the agent refuses them in this tunnel.
    const files = await errorOf(tech.api.files.stat({ sessionId, path: tmpdir() }));
    expect(files.code).toBe(Code.PermissionDenied);
    expect(files.message).toContain("approved exec for this session, not files");
    const rows = await tunnelAudit(agentId);
    expect(rows.map((r) => [r.event, r.outcome])).toEqual([
      ["consent", "ok"],
      ["open", "ok"],
    ]);
    expect(rows[0].detail?.receipt).toMatchObject({ approved: true, technician: "attended-tech", partner: "", capabilities: ["exec"] });
    await tech.api.sessions.closeTunnel({ sessionId });
  });

  it("refuses what the policy denies, leaves the tunnel closed with the reason, and sends the agent no tunnel", async () => {
    const { agentId, proc } = await agentWith(`deny-${kind}`, { mode: "deny" });
    const err = await errorOf(tech.api.sessions.openTunnel({ agentId, attended: true }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toMatch(/did not approve the session \(consent denied: the agent's local policy denies attended sessions/);
    const [session] = await sessionsOf(agentId);
    expect(session.status).toBe(SessionStatus.CLOSED);
    expect(session.closeReason).toMatch(/^consent denied/);
    expect((await tunnelAudit(agentId)).map((r) => [r.event, r.outcome])).toEqual([["consent", "refused"]]);
    expect(proc.output()).not.toContain("tunnel mode");
    // Unknown capabilities are refused before anyone is asked.
    expect((await errorOf(tech.api.sessions.openTunnel({ agentId, attended: true, capabilities: ["root"] }))).code).toBe(Code.InvalidArgument);
    expect(await sessionsOf(agentId)).toHaveLength(1);
  });

  it("on an agent that asks for every session: refuses an unattended tunnel outright, asks the person for an attended one, and closes it on silence", async () => {
    const { agentId } = await agentWith(`ask-${kind}`, { mode: "ask", command: [join(promptDir, "ask.sh")] });
    const unattended = await errorOf(tech.api.sessions.openTunnel({ agentId }));
    expect(unattended.code).toBe(Code.PermissionDenied);
    expect(unattended.message).toContain("open the tunnel attended");
    expect(await sessionsOf(agentId)).toEqual([]);
    // Commands that name the agent open unattended tunnels: refused the same way.
    expect((await errorOf(tech.api.exec.runCommand({ agentId, command: "true" }))).code).toBe(Code.PermissionDenied);

    // Approved by the person, through the CLI.
    await decide("approve");
    const opened = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [guruBin, "tunnel", "open", `ask-${kind}`, "--attended", "--capabilities", "files,exec"],
        { env: { ...process.env, GURU_URL: t.url, GURU_TOKEN: tech.token } },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stderr).toContain(`asking the person at ask-${kind} to approve files, exec`);
    const sessionId = opened.stdout.trim();
    expect((await tech.api.sessions.getTunnelStatus({ sessionId })).session?.status).toBe(SessionStatus.ACTIVE);
    expect(await readFile(join(promptDir, "asked.log"), "utf8")).toContain(`${sessionId} attended-tech exec,files`);
    await tech.api.sessions.closeTunnel({ sessionId });

    // Nobody answers: pending while asked, then closed as timed out.
    await decide("hang");
    const started = Date.now();
    const asking = errorOf(tech.api.sessions.openTunnel({ agentId, attended: true }));
    let pending: SessionStatus | undefined;
    for (let i = 0; i < 200 && pending !== SessionStatus.PENDING; i++) {
      pending = (await sessionsOf(agentId)).find((s) => s.sessionId !== sessionId)?.status;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(pending).toBe(SessionStatus.PENDING);
    const silence = await asking;
    expect(silence.code).toBe(Code.PermissionDenied);
    expect(silence.message).toMatch(/consent timed out/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(consentTimeoutMs - 200);
    expect((await sessionsOf(agentId)).map((s) => s.status)).toEqual([SessionStatus.CLOSED, SessionStatus.CLOSED]);
  }, 60_000);
  it("opens nothing for a tunnel closed, or a call given up, while the person decides", async () => {
    const { agentId, proc } = await agentWith(`late-${kind}`, { mode: "ask", command: [join(promptDir, "ask.sh")] });
    const pendingOne = async (except: string[]) => {
      for (let i = 0; i < 300; i++) {
        const found = (await sessionsOf(agentId)).find((s) => !except.includes(s.sessionId) && s.status === SessionStatus.PENDING);
        if (found !== undefined) return found.sessionId;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error("no pending tunnel");
    };

    // Closed by the technician while asked: the call fails, the answer opens nothing.
    await decide("slow-approve");
    const opening = errorOf(tech.api.sessions.openTunnel({ agentId, attended: true }));
    const closedId = await pendingOne([]);
    const closed = await tech.api.sessions.closeTunnel({ sessionId: closedId });
    expect([closed.session?.status, closed.session?.closeReason]).toEqual([SessionStatus.CLOSED, "closed by the technician"]);
    const err = await opening;
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain("was closed while the person at the endpoint decided (closed by the technician)");

    // The caller gives up (Ctrl-C on `guru tunnel open --attended`): closed, and the later approval opens nothing.
    const abort = new AbortController();
    const given = tech.api.sessions.openTunnel({ agentId, attended: true }, { signal: abort.signal }).catch((e: unknown) => e);
    const abandonedId = await pendingOne([closedId]);
    abort.abort();
    await given;
    await new Promise((r) => setTimeout(r, 1500)); // the person approves after 1 s
    const sessions = await sessionsOf(agentId);
    expect(sessions.map((s) => s.status)).toEqual([SessionStatus.CLOSED, SessionStatus.CLOSED]);
    expect(sessions.find((s) => s.sessionId === abandonedId)?.closeReason).toBe("the technician stopped waiting for the answer");
    expect(proc.output()).not.toContain("tunnel mode");
  }, 60_000);
});
