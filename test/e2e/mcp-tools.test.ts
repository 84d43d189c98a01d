// `guru mcp` end to end: the SDK's Client drives `node bin/guru.js mcp` over
// stdio against a real server, a real agent process and a real database.
// PGlite only: guru mcp is a client of the Connect API, and the API's own e2e
// tests cover both databases; this keeps CI time down.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGuruMcp, textOf, type CallToolResult, type GuruMcpChild } from "../support/mcp-stdio-client.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";

type Structured = Record<string, unknown>;

const repo = fileURLToPath(new URL("../../", import.meta.url));
const inspectorCli = join(repo, "node_modules/@modelcontextprotocol/inspector/cli/build/cli.js");

describe("guru mcp tools [pglite]", () => {
  let t: TestServer;
  let mcp: GuruMcpChild;
  let agentId: string;
  let dir: string;
  let techToken: string;

  async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult & { structuredContent?: Structured }> {
    return (await mcp.client.callTool({ name, arguments: args })) as CallToolResult & { structuredContent?: Structured };
  }

  async function ok(name: string, args: Record<string, unknown>): Promise<Structured> {
    const res = await call(name, args);
    expect(res.isError, `${name}: ${textOf(res)}\n${mcp.stderr()}`).toBeFalsy();
    expect(res.structuredContent).toBeDefined();
    return res.structuredContent!;
  }

  beforeAll(async () => {
    t = await startTestServer({ kind: "pglite" });
    dir = join(t.tempDir, "work");
    await mkdir(dir, { recursive: true });
    agentId = (await t.startAgent("mcp-web-1", { allow: [dir] })).agentId;
    techToken = (await t.createTech("mcp-tech")).token;
    mcp = await startGuruMcp({ url: t.url, token: techToken });
  });
  afterAll(async () => {
    await mcp?.close();
    await t?.close();
  });

  it("lists its tools with titles, schemas and annotations", async () => {
    const { tools } = await mcp.client.listTools();
    const byName = new Map(tools.map((tool) => [tool.name, tool]));
    expect([...byName.keys()].sort()).toEqual([
      "cancel_command",
      "control_service",
      "get_command_output",
      "get_services",
      "list_agents",
      "list_directory",
      "read_file",
      "read_registry",
      "run_command",
      "start_command",
      "write_file",
      "write_registry",
    ]);
    for (const tool of tools) {
      expect(tool.title, tool.name).toBeTruthy();
      expect(tool.description?.length, tool.name).toBeGreaterThan(80);
      expect(tool.inputSchema.type).toBe("object");
      expect(tool.outputSchema?.type, tool.name).toBe("object");
      expect(tool.annotations, tool.name).toBeDefined();
    }
    expect(byName.get("list_agents")!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get("read_file")!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get("list_directory")!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get("run_command")!.annotations).toMatchObject({ destructiveHint: true, idempotentHint: false, readOnlyHint: false });
    expect(byName.get("write_file")!.annotations).toMatchObject({ destructiveHint: true });
    expect(byName.get("run_command")!.inputSchema.required).toEqual(expect.arrayContaining(["agent", "command"]));
    expect(Object.keys(byName.get("run_command")!.outputSchema!.properties ?? {})).toEqual(
      expect.arrayContaining(["jobId", "exitCode", "stdout", "stderr", "nextOffset"]),
    );
  });

  it("list_agents: name, id, OS, online, last seen; filtered by name", async () => {
    const offline = await t.enrollAgent("mcp-db-9");
    const all = await ok("list_agents", {});
    const agents = all.agents as Structured[];
    expect(agents.find((a) => a.name === "mcp-web-1")).toMatchObject({ id: agentId, online: true, os: process.platform });
    expect(agents.find((a) => a.name === "mcp-db-9")).toMatchObject({ id: offline.agentId, online: false, lastSeenAt: null });
    const filtered = await ok("list_agents", { name: "WEB" });
    expect((filtered.agents as Structured[]).map((a) => a.name)).toEqual(["mcp-web-1"]);
    expect((await ok("list_agents", { onlineOnly: true })).count).toBe(1);
  });

  it("run_command: exit code, stdout and stderr; a non-zero exit is a result, not an error", async () => {
    const res = await ok("run_command", { agent: "mcp-web-1", command: "echo hello; echo oops >&2; exit 3" });
    expect(res).toMatchObject({ status: "exited", exitCode: 3, stdout: "hello\n", stderr: "oops\n", complete: true, agent: "mcp-web-1" });
    // By id too, with a working dir; the tunnel opened by the first call is reused.
    const pwd = await ok("run_command", { agent: agentId, command: "pwd", workingDir: dir });
    expect(pwd).toMatchObject({ exitCode: 0, stdout: `${dir}\n` });
    const active = await t.server.store.sessions.list({ agentId, status: "active" });
    expect(active).toHaveLength(1);
  });

  it("write_file, read_file and list_directory: text, binary, overwrite with backup", async () => {
    const path = join(dir, "notes.txt");
    const written = await ok("write_file", { agent: "mcp-web-1", path, content: "héllo\nworld\n" });
    expect(written).toMatchObject({ path, size: Buffer.byteLength("héllo\nworld\n"), backupPath: null });
    expect(await readFile(path, "utf8")).toBe("héllo\nworld\n");

    const refused = await call("write_file", { agent: "mcp-web-1", path, content: "again" });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/write_file failed/);
    expect(await readFile(path, "utf8")).toBe("héllo\nworld\n");
    const replaced = await ok("write_file", { agent: "mcp-web-1", path, content: "new\n", overwrite: true });
    expect(replaced.backupPath).toBeTruthy();
    expect(await readFile(path, "utf8")).toBe("new\n");

    const text = await ok("read_file", { agent: "mcp-web-1", path });
    expect(text).toMatchObject({ binary: false, text: "new\n", size: 4, eof: true, nextOffset: 4 });
    const part = await ok("read_file", { agent: "mcp-web-1", path: join(dir, "notes.txt"), offset: 1, length: 2 });
    expect(part).toMatchObject({ text: "ew", nextOffset: 3, eof: false });

    const png = Buffer.concat([Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"), Buffer.alloc(64, 7)]);
    await writeFile(join(dir, "logo.png"), png);
    const bin = await ok("read_file", { agent: "mcp-web-1", path: join(dir, "logo.png") });
    expect(bin).toMatchObject({ binary: true, mimeType: "image/png", size: png.length, sha256: createHash("sha256").update(png).digest("hex") });
    expect(bin.text).toBeUndefined();

    const listing = await ok("list_directory", { agent: "mcp-web-1", path: dir });
    const names = (listing.entries as Structured[]).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(["notes.txt", "logo.png"]));
    expect((listing.entries as Structured[]).find((e) => e.name === "logo.png")).toMatchObject({ type: "file", size: png.length });
  });

  it("an offline agent: a tool error that says since when and what to do next", async () => {
    await t.enrollAgent("mcp-off-3");
    const res = await call("run_command", { agent: "mcp-off-3", command: "true" });
    expect(res.isError).toBe(true);
    expect(textOf(res)).toMatch(/agent mcp-off-3 is offline/);
    expect(textOf(res)).toMatch(/list_agents shows which agents are online/);
    // One that was online, with a tunnel held, then went away.
    const gone = await t.startAgent("mcp-gone-4", { allow: [dir] });
    await ok("run_command", { agent: "mcp-gone-4", command: "true" });
    await gone.stop();
    const after = await call("run_command", { agent: "mcp-gone-4", command: "true" });
    expect(after.isError).toBe(true);
    expect(textOf(after)).toMatch(/mcp-gone-4 is offline since/);
    expect(textOf(after)).toMatch(/list_agents/);
    const unknown = await call("read_file", { agent: "no-such-agent", path: "/tmp/x" });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toMatch(/no agent named "no-such-agent".*list_agents/);
  });

  it("refused paths: outside the agent's allowlist, for reads, writes, listings and working dirs", async () => {
    for (const [tool, args] of [
      ["read_file", { path: "/etc/hostname" }],
      ["write_file", { path: join(t.tempDir, "outside.txt"), content: "x" }],
      ["list_directory", { path: "/etc" }],
      ["run_command", { command: "true", workingDir: "/etc" }],
    ] as const) {
      const res = await call(tool, { agent: "mcp-web-1", ...args });
      expect(res.isError, `${tool}: ${textOf(res)}`).toBe(true);
      expect(textOf(res)).toMatch(/denied|refused|not allowed|outside/i);
      expect(textOf(res)).toMatch(/Next: /);
    }
    await expect(readFile(join(t.tempDir, "outside.txt"))).rejects.toThrow();
  });

  it("caps output at 64 KiB per result with a note, and pages to the end by offset", async () => {
    const res = await ok("run_command", { agent: "mcp-web-1", command: "head -c 150000 /dev/zero | tr '\\0' a; echo done >&2" });
    expect(res).toMatchObject({ status: "exited", exitCode: 0, stdoutBytes: 150000, stderr: "done\n", complete: false });
    expect(Buffer.byteLength(res.stdout as string) + Buffer.byteLength(res.stderr as string)).toBeLessThanOrEqual(64 * 1024);
    expect(res.note).toMatch(/more not shown.*get_command_output/);
    let offset = res.nextOffset as number;
    let stdout = res.stdout as string;
    for (let page = 0; page < 5 && offset < 150000; page++) {
      const next = await ok("get_command_output", { jobId: res.jobId, offset, stderrOffset: res.nextStderrOffset });
      stdout += next.stdout as string;
      offset = next.nextOffset as number;
      if (next.complete) break;
    }
    expect(offset).toBe(150000);
    expect(stdout).toBe("a".repeat(150000));
    // read_file caps the same way, while reading.
    await writeFile(join(dir, "big.log"), "x".repeat(200_000));
    const big = await ok("read_file", { agent: "mcp-web-1", path: join(dir, "big.log"), length: 1_000_000 });
    expect(big).toMatchObject({ bytesRead: 64 * 1024, nextOffset: 64 * 1024, eof: false, size: 200_000 });
    expect(big.note).toMatch(/offset 65536/);
  });

  it("the MCP Inspector CLI lists the tools and calls run_command", async () => {
    // The same technician: its guru mcp reuses the tunnel that `mcp` holds, and
    // closes it on exit, so `mcp` must then recover with a new one.
    const inspector = (...args: string[]) =>
      promisify(execFile)(
        process.execPath,
        [inspectorCli, "--cli", "-e", `GURU_URL=${t.url}`, "-e", `GURU_TOKEN=${techToken}`, "--", process.execPath, join(repo, "bin/guru.js"), "mcp", ...args],
        { timeout: 20_000 },
      );
    const listed = JSON.parse((await inspector("--method", "tools/list")).stdout) as { tools: { name: string }[] };
    expect(listed.tools.map((tool) => tool.name)).toContain("run_command");
    const called = JSON.parse(
      (await inspector("--method", "tools/call", "--tool-name", "run_command", "--tool-arg", "agent=mcp-web-1", "--tool-arg", "command=echo inspected")).stdout,
    );
    expect(called.structuredContent).toMatchObject({ exitCode: 0, stdout: "inspected\n" });
    expect(await ok("run_command", { agent: "mcp-web-1", command: "echo still here" })).toMatchObject({ exitCode: 0, stdout: "still here\n" });
  });
});
