// What the terminal socket and RecordingService refuse, each with its error
// code, and that nothing else changed: the tunnel stays active, no terminal
// runs, refusals with a known caller are audited, and a good terminal opens
// right after.
import WebSocket from "ws";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import type { Shell } from "../../gen/guru/api/v1/exec_pb.js";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { isGuruError } from "../../lib/errors.ts";
import { openTerminalSocket, terminalSocketUrl } from "../../lib/terminal-client.ts";
import { describeDatabases } from "../support/databases.ts";
import { errorOf, openTunnel, type Tunnel } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { openShell, terminalAgentEnv } from "../support/terminal-helpers.ts";

/** Sends raw text or bytes as the first message; resolves with the server's text answers and the close code. */
function rawTerminal(
  url: string,
  first: string | Buffer | undefined,
  protocol = "guru.terminal.v1",
): Promise<{ texts: string[]; code: number } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(terminalSocketUrl(url), protocol, { perMessageDeflate: false });
    const texts: string[] = [];
    ws.on("unexpected-response", (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.on("error", reject);
    ws.on("open", () => {
      if (first !== undefined) ws.send(first, { binary: typeof first !== "string" });
    });
    ws.on("message", (data: Buffer, isBinary) => void (isBinary || texts.push(data.toString())));
    ws.on("close", (code) => resolve({ texts, code }));
  });
}

describeDatabases("terminal refusals", (kind) => {
  let t: TestServer;
  let tunnel: Tunnel;
  let plain: Tunnel;
  beforeAll(async () => {
    t = await startTestServer({ kind });
    [tunnel, plain] = await Promise.all([openTunnel(t, "refuse", { env: await terminalAgentEnv(t) }), openTunnel(t, "no-terminal")]);
  });
  afterAll(async () => {
    await t?.close();
  });

  const refusedWith = async (open: Parameters<typeof openTerminalSocket>[0]["open"]) => {
    const err = await openTerminalSocket({ url: t.url, open, onOutput: () => {} }).then(
      () => new Error("opened"),
      (e: unknown) => e,
    );
    return err as Error & { details?: { code?: string } };
  };

  it("refuses a missing or forged token and a malformed or missing open message, without auditing a caller it does not know", async () => {
    const before = (await t.server.store.terminals.list({ limit: 1000 })).length;
    const noToken = await refusedWith({ token: "", sessionId: tunnel.sessionId });
    expect(isGuruError(noToken, "unauthenticated"), String(noToken)).toBe(true);
    const forged = await refusedWith({ token: "eyJhbGciOiJFUzI1NiJ9.e30.bad", sessionId: tunnel.sessionId });
    expect(isGuruError(forged, "unauthenticated"), String(forged)).toBe(true);

    const binary = await rawTerminal(t.url, Buffer.from([1, 2, 3]));
    expect(binary).toMatchObject({ code: 1000 });
    expect(JSON.parse((binary as { texts: string[] }).texts[0])).toMatchObject({ error: { code: "invalid_argument" } });
    const notJson = await rawTerminal(t.url, "{not json");
    expect(JSON.parse((notJson as { texts: string[] }).texts[0])).toMatchObject({ error: { code: "invalid_argument" } });
    const resizeFirst = await rawTerminal(t.url, JSON.stringify({ resize: { columns: 10, rows: 10 } }));
    expect(JSON.parse((resizeFirst as { texts: string[] }).texts[0]).error.message).toContain("must be open");
    const wrongProtocol = await rawTerminal(t.url, undefined, "guru.wire.v1");
    expect(wrongProtocol).toEqual({ status: 400 });

    expect((await t.server.store.terminals.list({ limit: 1000 })).length).toBe(before);
    expect(t.server.registry.size).toBeGreaterThan(0);
  });

  it("refuses bad sizes, shells and env, a closed or foreign session, and an agent whose policy disables terminals; each audited, the tunnel intact", async () => {
    const other = await t.createTech(`other-${kind}`);
    const cases: [Parameters<typeof openTerminalSocket>[0]["open"], string, RegExp][] = [
      [{ token: tunnel.token, sessionId: tunnel.sessionId, columns: 20_000 }, "invalid", /columns/],
      [{ token: tunnel.token, sessionId: tunnel.sessionId, rows: 4_000_000_000 }, "invalid", /rows/],
      [{ token: tunnel.token, sessionId: tunnel.sessionId, shell: 99 as Shell }, "invalid", /shell must be one of/],
      [{ token: tunnel.token, sessionId: tunnel.sessionId, env: { "A=B": "x" } }, "invalid", /env entry/],
      [{ token: tunnel.token, sessionId: tunnel.sessionId, term: "bad term;" }, "invalid", /term/],
      [{ token: tunnel.token, sessionId: "not-a-uuid" }, "invalid", /not a UUID/],
      [{ token: other.token, sessionId: tunnel.sessionId }, "denied", /another technician/],
      [{ token: plain.token, sessionId: plain.sessionId }, "denied", /disables terminal/],
      [{ token: tunnel.token, sessionId: tunnel.sessionId, workingDir: "/etc" }, "denied", /outside/],
    ];
    for (const [open, kindWanted, message] of cases) {
      const err = await refusedWith(open);
      expect(isGuruError(err, kindWanted as "invalid"), `${JSON.stringify(open)}: ${String(err)}`).toBe(true);
      expect(err.message).toMatch(message);
    }
    await t.server.terminals.drain();
    const rows = await t.server.store.terminals.list({ technicianId: tunnel.technicianId, limit: 100 });
    expect(rows.filter((r) => r.outcome === "refused").length).toBeGreaterThanOrEqual(7);
    expect(rows.every((r) => r.outcome === "refused" && r.recordingBytes === 0)).toBe(true);
    const plainRows = await t.server.store.terminals.list({ technicianId: plain.technicianId });
    expect(plainRows[0]).toMatchObject({ outcome: "refused", agentId: plain.agent.agentId });
    expect(plainRows[0].refusalReason).toContain("disables terminal");

    const status = await tunnel.api.sessions.getTunnelStatus({ sessionId: tunnel.sessionId });
    expect(status.session?.status).toBe(SessionStatus.ACTIVE);
    const shell = await openShell(t.url, { token: tunnel.token, sessionId: tunnel.sessionId, command: "echo still-fine" });
    await shell.until(/still-fine/);
    expect((await shell.conn.exit).exitCode).toBe(0);

    const closed = await openTunnel(t, "closed", { env: await terminalAgentEnv(t) });
    await closed.api.sessions.closeTunnel({ sessionId: closed.sessionId });
    const err = await refusedWith({ token: closed.token, sessionId: closed.sessionId });
    expect(isGuruError(err, "failed_precondition"), String(err)).toBe(true);
  });

  it("keeps the terminal going after a bad resize, and refuses a recording to another technician", async () => {
    const shell = await openShell(t.url, { token: tunnel.token, sessionId: tunnel.sessionId, command: "read x; tput cols" });
    shell.conn.resize(0, 10);
    shell.conn.resize(90, 20);
    await new Promise((r) => setTimeout(r, 200));
    shell.conn.write("\r");
    await shell.until(/\b90\r\n/);
    expect((await shell.conn.exit).exitCode).toBe(0);

    const other = await t.createTech(`snoop-${kind}`);
    expect((await errorOf(other.api.recordings.listRecordings({ allTechnicians: true }))).code).toBe(Code.PermissionDenied);
    const read = async () => {
      for await (const _ of other.api.recordings.readRecording({ recordingId: shell.conn.opened.terminalId })) break;
    };
    expect((await errorOf(read())).code).toBe(Code.PermissionDenied);
    const missing = async () => {
      for await (const _ of tunnel.api.recordings.readRecording({ recordingId: "00000000-0000-4000-8000-000000000000" })) break;
    };
    expect((await errorOf(missing())).code).toBe(Code.NotFound);
    const { recordings } = await t.admin.recordings.listRecordings({ allTechnicians: true, sessionId: tunnel.sessionId });
    expect(recordings.map((r) => r.recordingId)).toContain(shell.conn.opened.terminalId);
  });
});
