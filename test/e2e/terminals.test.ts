// Interactive terminals end to end: a real server and database, real agent
// processes with real pseudo-terminals, the terminal WebSocket as a client
// uses it, and the recordings read back through RecordingService.
import { afterAll, beforeAll, expect, it } from "vitest";
import { ExitReason } from "../../gen/guru/api/v1/exec_pb.js";
import { parseAsciicast } from "../../lib/asciicast.ts";
import { describeDatabases } from "../support/databases.ts";
import { openTunnel, waitDead, type Tunnel } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { openShell, terminalAgentEnv } from "../support/terminal-helpers.ts";

describeDatabases("terminals", (kind) => {
  let t: TestServer;
  let tunnel: Tunnel;
  beforeAll(async () => {
    t = await startTestServer({ kind });
    tunnel = await openTunnel(t, "term", { env: await terminalAgentEnv(t) });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("follows a resize (tput cols), passes the exit code through, and records the session byte for byte", async () => {
    const shell = await openShell(t.url, { token: tunnel.token, sessionId: tunnel.sessionId, shell: 2, columns: 80, rows: 24 });
    await shell.conn.write("tput cols; tput lines\r");
    await shell.until(/\b80\r\n24\r\n/);
    shell.conn.resize(132, 43);
    await new Promise((r) => setTimeout(r, 100));
    shell.conn.write("tput cols; tput lines\r");
    await shell.until(/\b132\r\n43\r\n/);
    shell.conn.write("printf 'caf\\303\\251 %s\\n' done; exit 3\r");
    const exit = await shell.conn.exit;
    expect(exit).toMatchObject({ exitCode: 3, reason: ExitReason.EXITED });
    expect(Number(exit.outputBytes)).toBe(shell.bytes().length);
    expect(shell.text()).toContain("café done");

    const { recordings } = await tunnel.api.recordings.listRecordings({ sessionId: tunnel.sessionId });
    const recording = recordings.find((r) => r.recordingId === shell.conn.opened.terminalId);
    expect(recording).toMatchObject({ exitCode: 3, outcome: "exited", columns: 80, rows: 24, truncated: false });
    let text = "";
    for await (const part of tunnel.api.recordings.readRecording({ recordingId: recording!.recordingId })) {
      if (part.event.case === "data") text += Buffer.from(part.event.value).toString("utf8");
    }
    const cast = parseAsciicast(text);
    expect(cast.header).toMatchObject({ version: 2, width: 80, height: 24 });
    const output = cast.events.filter((e) => e.code === "o").map((e) => e.data).join("");
    expect(output).toBe(shell.text());
    const input = cast.events.filter((e) => e.code === "i").map((e) => e.data).join("");
    expect(input).toBe("tput cols; tput lines\rtput cols; tput lines\rprintf 'caf\\303\\251 %s\\n' done; exit 3\r");
    expect(cast.events.filter((e) => e.code === "r").map((e) => e.data)).toEqual(["132x43"]);
    const times = cast.events.map((e) => e.time);
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    const row = await t.server.store.terminals.get(shell.conn.opened.terminalId);
    expect(row).toMatchObject({ sessionId: tunnel.sessionId, agentId: tunnel.agent.agentId, technicianId: tunnel.technicianId, recordingId: row!.id, outcome: "exited", exitCode: 3 });
    expect(row!.recordingBytes).toBe(Buffer.byteLength(text));
  });

  it("delivers Ctrl-C to a remote sleep and Ctrl-D ends the shell", async () => {
    const shell = await openShell(t.url, { token: tunnel.token, sessionId: tunnel.sessionId, shell: 2 });
    shell.conn.write("sleep 30\r");
    await new Promise((r) => setTimeout(r, 300));
    const before = Date.now();
    shell.conn.write("\x03");
    shell.conn.write("echo after-$?\r");
    await shell.until(/after-130/);
    expect(Date.now() - before).toBeLessThan(5000);
    shell.conn.write("\x04");
    expect((await shell.conn.exit).exitCode).toBe(0);
  });
});
