// `guru mcp` jobs and tunnels end to end: a command over the wait bound goes
// on as a job and pages to its end, with progress notifications; a canceled
// call kills the remote process; tunnels close when idle and when the client
// goes away. PGlite only (see mcp-tools.test.ts).
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGuruMcp, textOf, type CallToolResult, type GuruMcpChild } from "../support/mcp-stdio-client.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { waitFor } from "../support/raw-agent.ts";

type Structured = Record<string, unknown>;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function ok(
  mcp: GuruMcpChild,
  name: string,
  args: Record<string, unknown>,
  options?: Parameters<GuruMcpChild["client"]["callTool"]>[2],
): Promise<Structured> {
  const res = (await mcp.client.callTool({ name, arguments: args }, undefined, options)) as CallToolResult;
  expect(res.isError, `${name}: ${textOf(res)}\n${mcp.stderr()}`).toBeFalsy();
  return res.structuredContent as Structured;
}

async function pidFrom(file: string): Promise<number> {
  let pid = 0;
  await waitFor(
    async () => {
      pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
      return pid > 0;
    },
    5000,
    `pid in ${file}`,
  );
  return pid;
}

describe("guru mcp jobs and tunnels [pglite]", () => {
  let t: TestServer;
  let token: string;
  let dir: string;
  const children: GuruMcpChild[] = [];

  async function mcpWith(env: Record<string, string>): Promise<GuruMcpChild> {
    const child = await startGuruMcp({ url: t.url, token, env });
    children.push(child);
    return child;
  }
  const activeSessions = async (agentId: string) => t.server.store.sessions.list({ agentId, status: "active" });

  beforeAll(async () => {
    t = await startTestServer({ kind: "pglite" });
    dir = join(t.tempDir, "work");
    await mkdir(dir, { recursive: true });
    token = (await t.createTech("mcp-jobs-tech")).token;
  });
  afterAll(async () => {
    await Promise.all(children.map((c) => c.close()));
    await t?.close();
  });

  it("a command over the wait bound continues as a job with progress, and pages to its end", async () => {
    await t.startAgent("jobs-1", { allow: [dir] });
    const mcp = await mcpWith({ GURU_MCP_WAIT_MS: "1200" });
    const progress: number[] = [];
    const command = "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.5; done; echo bye >&2; exit 4";
    const first = await ok(mcp, "run_command", { agent: "jobs-1", command, timeoutMs: 20_000 }, { onprogress: (p) => progress.push(p.progress) });
    expect(first).toMatchObject({ status: "running", exitCode: null, complete: false });
    expect(first.note).toMatch(/still running; call get_command_output/);
    expect(progress.length).toBeGreaterThanOrEqual(1);

    let stdout = first.stdout as string;
    let stderr = first.stderr as string;
    let page = first;
    for (let i = 0; i < 10 && !page.complete; i++) {
      page = await ok(mcp, "get_command_output", { jobId: first.jobId, offset: page.nextOffset, stderrOffset: page.nextStderrOffset, waitMs: 1000 });
      stdout += page.stdout as string;
      // stderr may arrive on a page before the one that reports the exit.
      stderr += page.stderr as string;
    }
    expect(page).toMatchObject({ status: "exited", exitCode: 4, complete: true });
    expect(stderr).toBe("bye\n");
    expect(stdout).toBe("line1\nline2\nline3\nline4\nline5\nline6\n");
    // A finished job can be read again from the start.
    expect(await ok(mcp, "get_command_output", { jobId: first.jobId, waitMs: 0 })).toMatchObject({ stdout, complete: true });
    const gone = (await mcp.client.callTool({ name: "get_command_output", arguments: { jobId: "job-nope" } })) as CallToolResult;
    expect(gone.isError).toBe(true);
    expect(textOf(gone)).toMatch(/no job job-nope/);
  });

  it("a canceled run_command call kills the remote process tree", async () => {
    await t.startAgent("jobs-2", { allow: [dir] });
    const mcp = await mcpWith({});
    const pidFile = join(dir, "cancel-call.pid");
    const controller = new AbortController();
    const call = mcp.client.callTool(
      { name: "run_command", arguments: { agent: "jobs-2", command: `sleep 30 & echo $! > ${pidFile}; wait`, timeoutMs: 60_000 } },
      undefined,
      { signal: controller.signal },
    );
    const pid = await pidFrom(pidFile);
    expect(alive(pid)).toBe(true);
    controller.abort();
    await expect(call).rejects.toThrow();
    await waitFor(() => !alive(pid), 5000, `sleep ${pid} killed`);
  });

  it("start_command and cancel_command: the job ends as canceled and its process is gone", async () => {
    await t.startAgent("jobs-3", { allow: [dir] });
    const mcp = await mcpWith({});
    const pidFile = join(dir, "cancel-tool.pid");
    const started = await ok(mcp, "start_command", { agent: "jobs-3", command: `echo started; sleep 30 & echo $! > ${pidFile}; wait`, timeoutMs: 60_000 });
    expect(started).toMatchObject({ status: "running" });
    const pid = await pidFrom(pidFile);
    const canceled = await ok(mcp, "cancel_command", { jobId: started.jobId });
    expect(canceled).toMatchObject({ status: "canceled", jobId: started.jobId });
    await waitFor(() => !alive(pid), 5000, `sleep ${pid} killed`);
  });

  it("closes an idle tunnel after the idle time, and opens a new one on the next call", async () => {
    const agent = await t.startAgent("jobs-4", { allow: [dir] });
    const mcp = await mcpWith({ GURU_MCP_IDLE_MS: "700" });
    await ok(mcp, "run_command", { agent: "jobs-4", command: "true" });
    const [first] = await activeSessions(agent.agentId);
    expect(first).toBeDefined();
    // Calls within the idle time reuse it.
    await ok(mcp, "run_command", { agent: "jobs-4", command: "true" });
    expect((await activeSessions(agent.agentId)).map((s) => s.id)).toEqual([first.id]);
    await waitFor(async () => (await activeSessions(agent.agentId)).length === 0, 5000, "idle tunnel closed");
    expect((await t.server.store.sessions.get(first.id))?.closeReason).toBe("closed by the technician");
    await ok(mcp, "run_command", { agent: "jobs-4", command: "true" });
    const [second] = await activeSessions(agent.agentId);
    expect(second.id).not.toBe(first.id);
  });

  it("closes its tunnels when the client disconnects (stdin closed) and on SIGTERM", async () => {
    const a = await t.startAgent("jobs-5", { allow: [dir] });
    const b = await t.startAgent("jobs-6", { allow: [dir] });
    const mcp = await startGuruMcp({ url: t.url, token });
    await ok(mcp, "run_command", { agent: "jobs-5", command: "true" });
    await ok(mcp, "list_directory", { agent: "jobs-6", path: dir });
    expect(await activeSessions(a.agentId)).toHaveLength(1);
    expect(await activeSessions(b.agentId)).toHaveLength(1);
    await mcp.close();
    expect(mcp.stderr()).toContain("guru mcp stopped");
    expect(await activeSessions(a.agentId)).toHaveLength(0);
    expect(await activeSessions(b.agentId)).toHaveLength(0);

    const other = await startGuruMcp({ url: t.url, token });
    const pidFile = join(dir, "sigterm.pid");
    await ok(other, "start_command", { agent: "jobs-5", command: `sleep 30 & echo $! > ${pidFile}; wait`, timeoutMs: 60_000 });
    const pid = await pidFrom(pidFile);
    process.kill(other.pid, "SIGTERM");
    await other.exited;
    expect(other.stderr()).toContain("guru mcp stopped");
    expect(await activeSessions(a.agentId)).toHaveLength(0);
    await waitFor(() => !alive(pid), 5000, `sleep ${pid} killed`);
  });
});
