// The MCP tools in-process: the SDK's Client linked to our McpServer by the
// SDK's in-memory transport, against a real server, agent and database. Fast
// enough to cover each tool's answers and refusals; the spawned stdio path
// (test/e2e/mcp-*.test.ts) stays the end-to-end test of `guru mcp` itself.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiClients } from "../lib/api-client.ts";
import { silentLogger } from "../lib/logging.ts";
import { startTestServer, type TestServer } from "../test/support/harness.ts";
import { createGuruApi } from "./api.ts";
import { createJobStore } from "./jobs.ts";
import { loadMcpOptions } from "./options.ts";
import { createGuruMcpServer, createTools } from "./server.ts";
import { createTunnelManager } from "./tunnels.ts";

type Result = CallToolResult & { structuredContent?: Record<string, unknown> };

describe("MCP tools in-process [pglite]", () => {
  let t: TestServer;
  let client: Client;
  let closeMcp: () => Promise<void>;
  let dir: string;

  async function call(name: string, args: Record<string, unknown>): Promise<Result> {
    return (await client.callTool({ name, arguments: args })) as Result;
  }
  const text = (r: Result) => (r.content[0]?.type === "text" ? r.content[0].text : "");

  beforeAll(async () => {
    t = await startTestServer({ kind: "pglite" });
    dir = join(t.tempDir, "work");
    await mkdir(dir, { recursive: true });
    await t.startAgent("inproc-1", { allow: [dir] });
    const { token } = await t.createTech("inproc-tech");
    const logger = silentLogger();
    const api = createGuruApi({ clients: createApiClients({ url: t.url, token }), url: t.url });
    const options = loadMcpOptions({}, {});
    const tunnels = createTunnelManager({ api, idleMs: options.idleMs, logger });
    const jobs = createJobStore({ api, tunnels, logger, bufferBytes: options.jobBufferBytes, keepMs: options.jobKeepMs, maxJobs: options.maxJobs });
    const server = createGuruMcpServer({ tools: createTools({ api, tunnels, jobs, options, logger }, await api.features()), logger });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    client = new Client({ name: "guru-inproc", version: "1.0.0" });
    await client.connect(clientSide);
    closeMcp = async () => {
      await client.close();
      await jobs.cancelAll();
      await tunnels.closeAll();
      await server.close();
    };
  });
  afterAll(async () => {
    await closeMcp?.();
    await t?.close();
  });

  it("runs a command and reports its exit code and output", async () => {
    const res = await call("run_command", { agent: "inproc-1", command: "echo in-process; exit 3" });
    expect(res.isError, text(res)).toBeFalsy();
    expect(res.structuredContent).toMatchObject({ exitCode: 3 });
    expect(text(res)).toContain("in-process");
  });

  it("writes a file, reads it back and lists it", async () => {
    const path = join(dir, "note.txt");
    const written = await call("write_file", { agent: "inproc-1", path, content: "hello from MCP\n" });
    expect(written.isError, text(written)).toBeFalsy();
    expect(await readFile(path, "utf8")).toBe("hello from MCP\n");
    const read = await call("read_file", { agent: "inproc-1", path });
    expect(text(read)).toContain("hello from MCP");
    const listed = await call("list_directory", { agent: "inproc-1", path: dir });
    expect(JSON.stringify(listed.structuredContent)).toContain("note.txt");
  });

  it("refuses a path outside the agent's allowlist as a tool error, and writes nothing", async () => {
    const outside = join(t.tempDir, "outside.txt");
    await writeFile(outside, "keep");
    const res = await call("write_file", { agent: "inproc-1", path: outside, content: "changed", overwrite: true });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/allow/i);
    expect(await readFile(outside, "utf8")).toBe("keep");
  });

  it("answers an unknown agent with a tool error that names list_agents", async () => {
    const res = await call("run_command", { agent: "no-such-agent", command: "true" });
    expect(res.isError).toBe(true);
    expect(text(res)).toContain("list_agents");
  });
});
