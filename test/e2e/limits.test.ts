// Limits beyond commands, through real HTTP: failed authentications per
// client address (RPC and the agent WebSocket), tunnel opens and file
// operations per technician, HTTP timeouts that leave streams alone, the
// metrics token, a readiness answer without the driver's text, and the
// config's upper bounds.
import { connect } from "node:net";
import { Writable } from "node:stream";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import WebSocket from "ws";
import { AgentService } from "../../gen/guru/api/v1/agents_pb.js";
import { loadServerConfig } from "../../server/config.ts";
import { createOperationalRoutes } from "../../server/http/health.ts";
import { startListener } from "../../server/http/listener.ts";
import { createMetrics } from "../../server/metrics.ts";
import { openDb } from "../../server/store/db.ts";
import { describeDatabases } from "../support/databases.ts";
import { collectStream, openTunnel } from "../support/exec-helpers.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { errorOf } from "../support/rpc-errors.ts";
import { spawnGuru } from "../support/server-process.ts";

/** AgentService from a chosen source address (127.0.0.2 reaches 127.0.0.1 over loopback). */
function agentsFrom(url: string, localAddress: string, token: string) {
  return createClient(
    AgentService,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "1.1",
      nodeOptions: { localAddress },
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    }),
  );
}

/** The status line of an agent WebSocket upgrade from a chosen source address. */
function upgradeStatus(url: string, localAddress: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/agent`, "guru.wire.v1", { localAddress, headers: { authorization: `Bearer ${key}` } });
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("open", () => {
      resolve(101);
      ws.terminate();
    });
    ws.on("error", (err) => reject(err));
  });
}

describeDatabases("limits", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      kind,
      config: {
        authFailureLimit: 5,
        authFailureWindowMs: 60_000,
        authBlockMs: 2_000,
        tunnelOpenRateLimit: 3,
        tunnelOpenRateWindowMs: 60_000,
        fileOpRateLimit: 4,
        fileOpRateWindowMs: 60_000,
        httpRequestTimeoutMs: 1_000,
        httpHeadersTimeoutMs: 1_000,
        metricsToken: "metrics-secret-0123456789",
      },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("failed authentications block the address (a good token too, RPC and agent upgrade), not other addresses, for the block time", async () => {
    const agent = await t.enrollAgent("limits-agent-1");
    for (let i = 0; i < 5; i++) {
      expect((await errorOf(agentsFrom(t.url, "127.0.0.2", `bad-${i}`).listAgents({}))).code).toBe(Code.Unauthenticated);
    }
    const blocked = await errorOf(agentsFrom(t.url, "127.0.0.2", t.adminToken).listAgents({}));
    expect(blocked.code, blocked.message).toBe(Code.ResourceExhausted);
    expect(blocked.message).toContain("GURU_AUTH_FAILURE_LIMIT");
    expect(await upgradeStatus(t.url, "127.0.0.2", agent.agentKey)).toBe(429);
    // Another address is unaffected.
    expect((await agentsFrom(t.url, "127.0.0.1", t.adminToken).listAgents({})).agents.length).toBeGreaterThan(0);
    expect(await upgradeStatus(t.url, "127.0.0.3", "guru_ak_wrong")).toBe(401);
    // After the block the good token works again.
    await new Promise((r) => setTimeout(r, 2_100));
    expect((await agentsFrom(t.url, "127.0.0.2", t.adminToken).listAgents({})).agents.length).toBeGreaterThan(0);
  });

  it("bad agent keys count too: the upgrade is refused with 429 once the address is over the limit", async () => {
    for (let i = 0; i < 5; i++) expect(await upgradeStatus(t.url, "127.0.0.4", `guru_ak_bad${i}`)).toBe(401);
    expect(await upgradeStatus(t.url, "127.0.0.4", "guru_ak_bad")).toBe(429);
    expect((await errorOf(agentsFrom(t.url, "127.0.0.4", t.adminToken).listAgents({}))).code).toBe(Code.ResourceExhausted);
  });

  it("OpenTunnel and file operations are rate-limited per technician; a refusal changes nothing", async () => {
    const tunnel = await openTunnel(t, "rate"); // open 1 of 3
    for (let i = 0; i < 4; i++) await tunnel.api.files.stat({ sessionId: tunnel.sessionId, path: t.tempDir });
    const files = await errorOf(tunnel.api.files.listDirectory({ sessionId: tunnel.sessionId, path: t.tempDir }));
    expect(files.code, files.message).toBe(Code.ResourceExhausted);
    expect(files.message).toContain("GURU_FILE_OP_RATE_LIMIT");
    const refusedRows = (await t.server.store.audit.listFiles({ sessionId: tunnel.sessionId })).filter((r) => r.operation === "list");
    expect(refusedRows.map((r) => r.outcome)).toEqual(["failed"]);

    await tunnel.api.sessions.closeTunnel({ sessionId: tunnel.sessionId });
    for (let i = 0; i < 2; i++) {
      const { sessionId } = await tunnel.api.sessions.openTunnel({ agentId: tunnel.agent.agentId });
      await tunnel.api.sessions.closeTunnel({ sessionId });
    }
    const open = await errorOf(tunnel.api.sessions.openTunnel({ agentId: tunnel.agent.agentId }));
    expect(open.code, open.message).toBe(Code.ResourceExhausted);
    expect(open.message).toContain("GURU_TUNNEL_OPEN_RATE_LIMIT");
    expect(await t.server.store.sessions.list({ agentId: tunnel.agent.agentId, status: "active" })).toEqual([]);
    // Another technician is not affected.
    const other = await t.createTech(`rate-other-${kind}`);
    const { sessionId } = await other.api.sessions.openTunnel({ agentId: tunnel.agent.agentId });
    await other.api.sessions.closeTunnel({ sessionId });
  });

  it("a streaming answer outlives the request timeout; a request body slower than it is cut", async () => {
    const tunnel = await openTunnel(t, "stream");
    const started = Date.now();
    const out = await collectStream(
      tunnel.api.exec.streamCommand({ sessionId: tunnel.sessionId, command: "echo start; sleep 2.5; echo done", timeoutMs: 10_000 }),
    );
    expect(Date.now() - started).toBeGreaterThan(2_400);
    expect(out.stdout).toBe("start\ndone\n");

    // Headers, then a body that never completes: Node answers 408 after about 1 s.
    const { port } = new URL(t.url);
    const answer = await new Promise<{ text: string; ms: number }>((resolve) => {
      const began = Date.now();
      const socket = connect(Number(port), "127.0.0.1", () => {
        socket.write("POST /guru.api.v1.AgentService/ListAgents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
      });
      let text = "";
      socket.on("data", (d) => (text += d));
      socket.on("close", () => resolve({ text, ms: Date.now() - began }));
    });
    expect(answer.text).toMatch(/^HTTP\/1\.1 408/);
    expect(answer.ms).toBeLessThan(5_000);
  });

  it("/metrics needs the metrics token when one is set", async () => {
    expect((await fetch(`${t.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${t.url}/metrics`, { headers: { authorization: "Bearer metrics-secret-WRONG-456789" } })).status).toBe(401);
    const ok = await fetch(`${t.url}/metrics`, { headers: { authorization: "Bearer metrics-secret-0123456789" } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("guru_tunnels_opened_total");
    // The other operational routes stay open.
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });
});

it("/readyz answers without the database driver's text and logs it instead", async () => {
  const db = await openDb({ databaseUrl: "postgres://someuser:s3cretpw@127.0.0.1:1/somedb", dataDir: "/nonexistent" });
  let logged = "";
  const logger = pino(
    { level: "warn" },
    new Writable({
      write: (chunk, _enc, cb) => {
        logged += chunk;
        cb();
      },
    }),
  );
  const routes = createOperationalRoutes({ db, metrics: createMetrics().registry, logger });
  const listener = await startListener({
    host: "127.0.0.1",
    port: 0,
    onRequest: (req, res) => void routes(req, res),
    onUpgrade: (_req, socket) => socket.destroy(),
  });
  try {
    const res = await fetch(`${listener.url}/readyz`);
    expect(res.status).toBe(503);
    const body = await res.text();
    expect(body).toBe("database unreachable\n");
    expect(logged).toContain("ECONNREFUSED");
  } finally {
    await listener.close();
    await db.close();
  }
});

it("config refuses a token lifetime over 30 days and a check cache over 10 s, naming the variable", async () => {
  expect(() => loadServerConfig({ env: { GURU_TOKEN_TTL_SECONDS: String(30 * 24 * 3600 + 1) } })).toThrow(/GURU_TOKEN_TTL_SECONDS/);
  expect(() => loadServerConfig({ env: { GURU_TOKEN_CHECK_CACHE_MS: "10001" } })).toThrow(/GURU_TOKEN_CHECK_CACHE_MS/);
  expect(loadServerConfig({ env: { GURU_TOKEN_TTL_SECONDS: String(30 * 24 * 3600), GURU_TOKEN_CHECK_CACHE_MS: "10000" } })).toMatchObject({
    tokenTtlSeconds: 2_592_000,
    tokenCheckCacheMs: 10_000,
  });
  // And a real `guru server` stops before listening.
  const server = spawnGuru(["server", "--port", "0", "--data-dir", "/nonexistent-guru"], { GURU_TOKEN_CHECK_CACHE_MS: "60000" });
  const code = await new Promise<number | null>((resolve) => server.child.once("exit", resolve));
  expect(code).not.toBe(0);
  expect(server.output()).toContain("GURU_TOKEN_CHECK_CACHE_MS");
}, 30_000);
