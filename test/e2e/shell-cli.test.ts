// `guru shell` as a user runs it: the real binary inside a real pseudo-terminal
// (node-pty on the test side), against a real server and agent. Shows raw mode
// (single keys and Ctrl-C reach the remote side at once), resizes following
// the local window, the remote exit code as guru's own, and the local terminal
// settings restored afterwards.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pty from "@lydell/node-pty";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SessionStatus } from "../../gen/guru/api/v1/sessions_pb.js";
import { describeDatabases } from "../support/databases.ts";
import { startTestServer, type AgentProcess, type TestServer } from "../support/harness.ts";
import { parseAsciicast } from "../../lib/asciicast.ts";
import { terminalAgentEnv } from "../support/terminal-helpers.ts";

const run = promisify(execFile);

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

interface Outer {
  term: pty.IPty;
  text(): string;
  until(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number>;
}

/** `guru shell ARGS` run by sh in a pty, with the tty settings saved before and after. */
function runInPty(dir: string, args: string[], env: Record<string, string>, size = { cols: 100, rows: 30 }): Outer {
  const script = `stty -g > ${dir}/before; "${process.execPath}" "${guruBin}" shell ${args.join(" ")}; echo "guru-exit=$?"; stty -g > ${dir}/after`;
  const term = pty.spawn("sh", ["-c", script], { ...size, name: "xterm-256color", cwd: dir, env: { ...(process.env as Record<string, string>), ...env } });
  let text = "";
  term.onData((d) => (text += d));
  const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
  return {
    term,
    text: () => text,
    async until(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = text.match(pattern);
        if (match) return match;
        if (Date.now() > deadline) throw new Error(`never saw ${pattern} in ${JSON.stringify(text.slice(-2000))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    exited,
  };
}

describeDatabases("guru shell", (kind) => {
  let t: TestServer;
  let agent: AgentProcess;
  let env: Record<string, string>;
  let api: Awaited<ReturnType<TestServer["createTech"]>>["api"];
  beforeAll(async () => {
    t = await startTestServer({ kind });
    agent = await t.startAgent("box", { env: await terminalAgentEnv(t) });
    const tech = await t.createTech("shell-tech");
    api = tech.api;
    env = { GURU_URL: t.url, GURU_TOKEN: tech.token };
  });
  afterAll(async () => {
    await t?.close();
  });

  it("puts the terminal in raw mode, follows window changes, passes Ctrl-C on, exits with the remote code and restores the terminal", async () => {
    const outer = runInPty(t.tempDir, ["box", "--shell", "bash"], env);
    await outer.until(/[#$] $/);
    // Raw mode: one key, no Enter, reaches the remote `read -n 1` at once.
    outer.term.write("read -n 1 k; echo; echo key-$k\r");
    await new Promise((r) => setTimeout(r, 300));
    outer.term.write("z");
    await outer.until(/key-z/);

    outer.term.write("tput cols\r");
    // Node's raw mode keeps ONLCR, so a remote "\r\n" shows as "\r\r\n" here (and looks the same).
    await outer.until(/\b100\r+\n/);
    outer.term.resize(123, 41);
    await new Promise((r) => setTimeout(r, 300));
    outer.term.write("tput cols; tput lines\r");
    await outer.until(/\b123\r+\n41\r+\n/);

    // Ctrl-C interrupts the remote sleep, not guru.
    outer.term.write("sleep 30\r");
    await new Promise((r) => setTimeout(r, 300));
    const before = Date.now();
    outer.term.write("\x03");
    outer.term.write("echo after-$?\r");
    await outer.until(/after-130/);
    expect(Date.now() - before).toBeLessThan(5000);

    outer.term.write("exit 7\r");
    await outer.until(/guru-exit=7/);
    expect(await outer.exited).toBe(0);
    const [saved, after] = await Promise.all([readFile(join(t.tempDir, "before"), "utf8"), readFile(join(t.tempDir, "after"), "utf8")]);
    expect(after).toBe(saved);
    // The tunnel guru opened for the session is closed again.
    const { sessions } = await api.sessions.listSessions({ agentId: agent.agentId, status: SessionStatus.ACTIVE });
    expect(sessions).toHaveLength(0);
  });

  it("ends on Ctrl-D, runs a command given after --, and restores the terminal when the server refuses", async () => {
    const dOuter = runInPty(t.tempDir, ["box", "--shell", "sh"], env);
    await dOuter.until(/[#$] $/);
    dOuter.term.write("\x04");
    await dOuter.until(/guru-exit=0/);

    const cmdOuter = runInPty(t.tempDir, ["box", "--", "'echo from-command; exit 4'"], env);
    await cmdOuter.until(/from-command[\s\S]*guru-exit=4/);

    const refused = runInPty(t.tempDir, ["box"], { ...env, GURU_TOKEN: "not-a-token" });
    await refused.until(/guru-exit=(\d+)/);
    await refused.exited;
    expect(refused.text()).toContain("guru-exit=255");
    expect(refused.text()).toMatch(/guru shell: .*token/i);
    const [saved, after] = await Promise.all([readFile(join(t.tempDir, "before"), "utf8"), readFile(join(t.tempDir, "after"), "utf8")]);
    expect(after).toBe(saved);
  });

  it("on an agent that asks the person for every session: refused without --attended, with it asked for exec and run", async () => {
    await t.startAgent("asking-box", { env: await terminalAgentEnv(t, { consent: { mode: "ask", command: ["/bin/true"] } }) });
    const refused = runInPty(t.tempDir, ["asking-box", "--", "'echo never'"], env);
    await refused.until(/guru-exit=(\d+)/);
    expect(refused.text()).toContain("guru-exit=255");
    expect(refused.text()).toContain("open the tunnel attended");
    expect(refused.text()).not.toContain("never\r\n");

    const attended = runInPty(t.tempDir, ["asking-box", "--attended", "--", "'echo attended-ok'"], env);
    await attended.until(/attended-ok[\s\S]*guru-exit=0/);
    expect(attended.text()).toContain("asking the person at asking-box to approve exec");
  });

  it("lists, exports and plays back the recording of a guru shell session, the same output in order", async () => {
    const outer = runInPty(t.tempDir, ["box", "--shell", "sh"], env);
    await outer.until(/[#$] $/);
    outer.term.write("echo one; sleep 0.3; echo two\r");
    await outer.until(/two\r+\n/);
    outer.term.write("exit 0\r");
    await outer.until(/guru-exit=0/);
    await t.server.terminals.drain();

    const guru = (args: string[]) =>
      run(process.execPath, [guruBin, "recording", ...args], { env: { ...process.env, ...env }, encoding: "buffer", maxBuffer: 64 * 1024 * 1024 });
    const listed = JSON.parse((await guru(["list", "--json"])).stdout.toString()) as { recordingId: string; sessionId: string; outcome: string }[];
    expect(listed.length).toBeGreaterThanOrEqual(1);
    const newest = listed[0];
    expect(newest.outcome).toBe("exited");
    const rows = await t.server.store.terminals.list({ sessionId: newest.sessionId });
    expect(rows.map((r) => r.recordingId)).toEqual([newest.recordingId]);

    // By the tunnel session's id: it holds exactly this one recording.
    const exported = (await guru(["export", newest.sessionId])).stdout.toString("utf8");
    const cast = parseAsciicast(exported);
    expect(cast.header).toMatchObject({ version: 2, width: 100, height: 30 });
    const output = cast.events
      .filter((e) => e.code === "o")
      .map((e) => e.data)
      .join("");
    expect(output).toMatch(/one\r\n[\s\S]*two\r\n/);
    const one = cast.events.find((e) => e.code === "o" && e.data.includes("one\r\n"));
    const two = cast.events.find((e) => e.code === "o" && /(^|\n)two\r\n/.test(e.data));
    expect(two!.time - one!.time).toBeGreaterThanOrEqual(0.1);

    const started = Date.now();
    const played = (await guru(["play", newest.recordingId, "--speed", "2"])).stdout.toString("utf8");
    expect(played).toBe(output);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);

    const bad = await guru(["play", "nope"]).then(
      () => undefined,
      (e: { code: number; stderr: Buffer }) => e,
    );
    expect(bad?.code).toBe(1);
    expect(bad?.stderr.toString()).toContain("not a recording or session id");
  });
});
