// With TLS configured, one listener serves gRPC over HTTP/2 (ALPN), Connect
// over HTTP/1.1, and agents over wss; the CLI bundle (which loads https and
// http2 only when first used) talks to it.
import { integrationContractVersion } from "../../lib/integration-contract-version.ts";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AgentService } from "../../gen/guru/api/v1/agents_pb.js";
import { IntegrationService } from "../../gen/guru/integration/v1/integration_pb.js";
import { SessionService } from "../../gen/guru/api/v1/sessions_pb.js";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { openShell, terminalAgentEnv } from "../support/terminal-helpers.ts";
import { makeSelfSignedCert } from "../support/self-signed-cert.ts";
import { buildCliBundle } from "../../scripts/build-cli.ts";

const guruBin = fileURLToPath(new URL("../../bin/guru.js", import.meta.url));

let t: TestServer;
let certDir: string;
let ca: Buffer;
function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

beforeAll(async () => {
  certDir = await mkdtemp(join(tmpdir(), "guru-tls-"));
  makeSelfSignedCert(certDir);
  ca = await readFile(join(certDir, "cert.pem"));
  t = await startTestServer({ kind: "pglite", config: { tlsCertFile: join(certDir, "cert.pem"), tlsKeyFile: join(certDir, "key.pem") } });
});
afterAll(async () => {
  await t?.close();
  await rm(certDir, { recursive: true, force: true });
});

it("serves gRPC over HTTP/2 and Connect over HTTP/1.1 on the same TLS port, and agents over wss", async () => {
  expect(t.url).toMatch(/^https:/);
  const agent = await t.spawnAgent({ ...(await t.enrollAgent("tls-1")), env: { NODE_EXTRA_CA_CERTS: join(certDir, "cert.pem") } });
  await agent.waitOnline();

  const grpc = createClient(AgentService, createGrpcTransport({ baseUrl: t.url, nodeOptions: { ca }, interceptors: [bearer(t.adminToken)] }));
  const { agents } = await grpc.listAgents({ nameContains: "tls-1" });
  expect(agents.map((a) => [a.name, a.online])).toEqual([["tls-1", true]]);

  const connect11 = createClient(IntegrationService, createConnectTransport({ baseUrl: t.url, httpVersion: "1.1", nodeOptions: { ca } }));
  const caps = await connect11.getCapabilities({});
  expect(caps.contractVersion).toBe(integrationContractVersion);
  expect(caps.wireProtocol).toBe("guru.wire.v1");
});

it("serves the terminal WebSocket over wss on the same port", async () => {
  const agent = await t.spawnAgent({
    ...(await t.enrollAgent("tls-term")),
    env: { NODE_EXTRA_CA_CERTS: join(certDir, "cert.pem"), ...(await terminalAgentEnv(t)) },
  });
  await agent.waitOnline();
  const tech = await t.createTech("tls-term-tech");
  const tlsApi = createClient(
    SessionService,
    createConnectTransport({ baseUrl: t.url, httpVersion: "1.1", nodeOptions: { ca }, interceptors: [bearer(tech.token)] }),
  );
  const { sessionId } = await tlsApi.openTunnel({ agentId: agent.agentId });
  const shell = await openShell(t.url, { token: tech.token, sessionId, command: "echo over-wss" }, { ca });
  await shell.until(/over-wss/);
  expect((await shell.conn.exit).exitCode).toBe(0);
});

it("runs the CLI from its bundle over https: a command, and a file up and down (Connect and the bulk route over TLS)", async () => {
  const bundleDir = await mkdtemp(join(tmpdir(), "guru-tls-bundle-"));
  try {
    await buildCliBundle(bundleDir);
    const agent = await t.spawnAgent({ ...(await t.enrollAgent("tls-cli")), allow: [certDir], env: { NODE_EXTRA_CA_CERTS: join(certDir, "cert.pem") } });
    await agent.waitOnline();
    const tech = await t.createTech("tls-cli-tech");
    const env = { GURU_URL: t.url, GURU_TOKEN: tech.token, NODE_EXTRA_CA_CERTS: join(certDir, "cert.pem"), GURU_CLI_BUNDLE: bundleDir };
    const guru = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [guruBin, ...args],
          { env: { ...process.env, ...env, GURU_CLI_STATE_DIR: join(certDir, "cli-state") } },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    expect(await guru(["run", "tls-cli", "--", "echo over-https"])).toEqual({ code: 0, stdout: "over-https\n", stderr: "" });
    const local = join(certDir, "local.bin");
    await writeFile(local, randomBytes(3 * 1024 * 1024 + 7));
    const up = await guru(["cp", "--quiet", local, `tls-cli:${join(certDir, "remote.bin")}`]);
    expect(up.code, up.stderr).toBe(0);
    const down = await guru(["cp", "--quiet", `tls-cli:${join(certDir, "remote.bin")}`, join(certDir, "back.bin")]);
    expect(down.code, down.stderr).toBe(0);
    expect((await readFile(join(certDir, "back.bin"))).equals(await readFile(local))).toBe(true);
  } finally {
    await rm(bundleDir, { recursive: true, force: true });
  }
});
