// The services and registry tools of `guru mcp` through the SDK's client over
// stdio, against a real server and agent processes driving a real SysV init
// script. PGlite only, as the other MCP suites: the API's own e2e suite covers
// both databases.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSysvFixture, processAlive, type SysvFixture } from "../../agent/system/sysv-test-fixture.ts";
import { startGuruMcp, textOf, type CallToolResult, type GuruMcpChild } from "../support/mcp-stdio-client.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";

type Structured = Record<string, unknown>;

describe("guru mcp services and registry tools [pglite]", () => {
  let t: TestServer;
  let fx: SysvFixture;
  let mcp: GuruMcpChild;

  async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult & { structuredContent?: Structured }> {
    return (await mcp.client.callTool({ name, arguments: args })) as CallToolResult & { structuredContent?: Structured };
  }
  async function ok(name: string, args: Record<string, unknown>): Promise<Structured> {
    const res = await call(name, args);
    expect(res.isError, `${name}: ${textOf(res)}\n${mcp.stderr()}`).toBeFalsy();
    return res.structuredContent!;
  }
  async function toolError(name: string, args: Record<string, unknown>): Promise<string> {
    const res = await call(name, args);
    expect(res.isError, `${name} should fail: ${textOf(res)}`).toBe(true);
    return textOf(res);
  }

  beforeAll(async () => {
    t = await startTestServer({ kind: "pglite" });
    fx = await createSysvFixture();
    const sysv = { GURU_SERVICE_MANAGER: "sysv", GURU_SYSV_INIT_DIR: fx.initDir };
    await Promise.all([t.startAgent("svc-web-1", { env: { ...sysv, GURU_ENABLE: "services,registry" } }), t.startAgent("svc-locked", { env: sysv })]);
    mcp = await startGuruMcp({ url: t.url, token: (await t.createTech("mcp-svc")).token });
  });
  afterAll(async () => {
    await mcp?.close();
    await t?.close();
    await fx?.cleanup();
  });

  it("offers the four tools with annotations; control_service suggests a dry run first", async () => {
    const byName = new Map((await mcp.client.listTools()).tools.map((tool) => [tool.name, tool]));
    expect(byName.get("get_services")!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get("read_registry")!.annotations).toMatchObject({ readOnlyHint: true });
    expect(byName.get("control_service")!.annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
    expect(byName.get("write_registry")!.annotations).toMatchObject({ destructiveHint: true });
    expect(byName.get("control_service")!.description).toContain("dryRun: true first");
    expect(byName.get("control_service")!.inputSchema.required).toEqual(expect.arrayContaining(["agent", "name", "action"]));
  });

  it("get_services and control_service: dry run, start and stop for real", async () => {
    const listed = await ok("get_services", { agent: "svc-web-1", filter: "guru" });
    expect(listed).toMatchObject({ serviceManager: "sysv", services: [{ name: "guru-demo", state: "stopped", startMode: "disabled", pid: null }] });

    const dry = await ok("control_service", { agent: "svc-web-1", name: "guru-demo", action: "start", dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, changed: true, before: { state: "stopped" }, after: { state: "running" } });
    expect(existsSync(fx.pidFile)).toBe(false);

    const started = await call("control_service", { agent: "svc-web-1", name: "guru-demo", action: "start", waitMs: 5000 });
    expect(textOf(started)).toMatch(/^guru-demo start on svc-web-1 \(sysv\): stopped, disabled → running, disabled, pid \d+\. done\.$/);
    const pid = (await fx.pid())!;
    expect(started.structuredContent).toMatchObject({ changed: true, settled: true, after: { state: "running", pid } });
    expect(processAlive(pid)).toBe(true);

    const stopped = await ok("control_service", { agent: "svc-web-1", name: "guru-demo", action: "stop", waitMs: 5000 });
    expect(stopped).toMatchObject({ after: { state: "stopped", pid: null } });
    await expect.poll(() => processAlive(pid)).toBe(false);
  });

  it("refuses a name that is a command, and nothing runs", async () => {
    const text = await toolError("control_service", { agent: "svc-web-1", name: "x; touch pwned", action: "start" });
    expect(text).toBe(
      'control_service failed (invalid, INVALID_ARGUMENT): "x; touch pwned" is not a service name: use letters, digits and . _ - @ : +. Next: fix the arguments as the message says and call again.',
    );
    expect(existsSync(join(process.cwd(), "pwned"))).toBe(false);
    expect(existsSync(fx.pidFile)).toBe(false);
  });

  it("the registry on Linux: a tool error naming the missing capability and that no agent has it", async () => {
    const text = await toolError("read_registry", { agent: "svc-web-1", key: "HKLM\\SOFTWARE\\Vendor", valueName: "Version" });
    expect(text).toContain("read_registry failed (failed_precondition, FAILED_PRECONDITION): agent svc-web-1 lacks the registry capability");
    expect(text).toContain("the registry exists only on Windows; this agent runs linux");
    expect(text).toContain("no agent has the registry capability");
    const write = await toolError("write_registry", { agent: "svc-web-1", key: "HKCU\\Software\\Vendor", valueName: "x", type: "sz", data: "y", dryRun: true });
    expect(write).toContain("lacks the registry capability");
  });

  it("an agent whose policy switches services off: the error names the rule and the agents that have it", async () => {
    const text = await toolError("get_services", { agent: "svc-locked" });
    expect(text).toContain("get_services failed (denied, PERMISSION_DENIED): agent svc-locked lacks the services capability");
    expect(text).toContain("capabilities.services");
    expect(text).toContain("agents with the services capability: svc-web-1");
    expect(existsSync(fx.pidFile)).toBe(false);
  });
});
