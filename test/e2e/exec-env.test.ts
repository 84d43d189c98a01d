// What a command's environment holds, end to end through real agents (both
// ways of starting commands): never the agent's key, GURU_* or DATABASE_URL;
// a caller's variables only under the agent's env rules and local policy,
// recorded (secrets redacted) in the audit and the agent's operation log.
// Also: an unknown shell is refused by the agent itself, and a lying agent
// cannot push more than the output cap through the server.
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecRequestSchema, ExecResultSchema, ExitReason, OutputStream, type Shell } from "../../gen/guru/wire/v1/exec_pb.js";
import { ChannelDataSchema, ChannelOpenSchema, ChannelResultSchema, TunnelReadySchema } from "../../gen/guru/wire/v1/wire_pb.js";
import { isGuruError } from "../../lib/errors.ts";
import { describeDatabases } from "../support/databases.ts";
import { errorOf } from "../support/exec-helpers.ts";
import { startTestServer, type AgentProcess, type TestServer } from "../support/harness.ts";
import { rawUpgrade, waitFor, type RawAgent } from "../support/raw-agent.ts";
import { spawnGuru } from "../support/server-process.ts";

const linux = process.platform === "linux";
const databaseUrl = "postgres://guru:hunter2-db-password@db.internal/guru";
// The secrets a `guru start` process holds in its environment, which its agent inherits.
const serverEnv = { DATABASE_URL: databaseUrl, GURU_TOKEN: "canary-admin-token", GURU_CANARY_SECRET: "canary-secret-value" };

let counter = 0;

interface Started {
  agent: AgentProcess;
  agentKey: string;
  stateDir: string;
  sessionId: string;
  technicianId: string;
  api: Awaited<ReturnType<TestServer["createTech"]>>["api"];
}

async function start(t: TestServer, launcher: "direct" | "launcher", env: Record<string, string> = {}): Promise<Started> {
  const name = `env-${launcher}-${process.pid}-${++counter}`;
  const { agentId, agentKey } = await t.enrollAgent(name);
  const stateDir = await mkdtemp(join(t.tempDir, "state-"));
  const agent = await t.spawnAgent({ agentId, agentKey, stateDir, env: { ...serverEnv, GURU_PROCESS_LAUNCHER: launcher, ...env } });
  await agent.waitOnline();
  const tech = await t.createTech(`tech-${name}`);
  const { sessionId } = await tech.api.sessions.openTunnel({ agentId });
  return { agent, agentKey, stateDir, sessionId, technicianId: tech.technicianId, api: tech.api };
}

function envOf(stdout: Uint8Array): Map<string, string> {
  const text = Buffer.from(stdout).toString();
  return new Map(
    text
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

async function oplogEntries(stateDir: string): Promise<{ operation: string; result: string; detail: Record<string, unknown> }[]> {
  const text = await readFile(join(stateDir, "operations.log"), "utf8").catch(() => "");
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describeDatabases("command environment", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  for (const launcher of ["direct", "launcher"] as const) {
    it(`a command's env holds no GURU_*, no DATABASE_URL and not the agent key (${launcher})`, async () => {
      const s = await start(t, launcher);
      const res = await s.api.exec.runCommand({ sessionId: s.sessionId, command: "env" });
      const text = Buffer.from(res.stdout).toString();
      const env = envOf(res.stdout);
      expect(res.result?.exitCode).toBe(0);
      expect([...env.keys()].filter((k) => k.toUpperCase().startsWith("GURU_"))).toEqual([]);
      expect(env.has("DATABASE_URL")).toBe(false);
      for (const secret of [s.agentKey, "hunter2", "canary-admin-token", "canary-secret-value"]) expect(text).not.toContain(secret);
      expect(env.get("PATH")).toBe("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

      if (linux && launcher === "launcher") {
        // The launcher process itself was started without the agent's environment.
        const { stdout } = await s.api.exec.runCommand({ sessionId: s.sessionId, command: "cat /proc/$PPID/environ | tr '\\0' '\\n'" });
        const launcherEnv = Buffer.from(stdout).toString();
        expect(launcherEnv).toContain("PATH=");
        for (const secret of [s.agentKey, "GURU_", "DATABASE_URL", "hunter2"]) expect(launcherEnv).not.toContain(secret);
      }
    });
  }

  it("refuses BASH_ENV, LD_PRELOAD and PATH from a caller with PermissionDenied naming the variable; nothing runs; audited and logged", async () => {
    const s = await start(t, "launcher");
    const marker = join(t.tempDir, `bash-env-ran-${kind}`);
    const script = join(t.tempDir, `bash-env-${kind}.sh`);
    await writeFile(script, `touch ${marker}\n`);
    const cases: [string, string][] = [
      ["BASH_ENV", script],
      ["LD_PRELOAD", join(t.tempDir, "evil.so")],
      ["PATH", `${t.tempDir}:/usr/bin:/bin`],
    ];
    for (const [name, value] of cases) {
      const err = await errorOf(s.api.exec.runCommand({ sessionId: s.sessionId, command: `touch ${marker}`, shell: 1 as Shell, env: { [name]: value } }));
      expect(err.code, name).toBe(Code.PermissionDenied);
      expect(err.message).toContain(`environment variable ${name} refused by the agent's policy`);
      expect(err.message).toContain("exec.allowEnv");
      expect(existsSync(marker), `${name}: nothing may have run`).toBe(false);
    }
    const guru = await errorOf(s.api.exec.runCommand({ sessionId: s.sessionId, command: `touch ${marker}`, env: { GURU_AGENT_KEY: "x".repeat(20) } }));
    expect(guru.code).toBe(Code.PermissionDenied);
    expect(guru.message).toContain("GURU_AGENT_KEY");
    expect(existsSync(marker)).toBe(false);

    const rows = await t.server.store.audit.listCommands({ sessionId: s.sessionId });
    expect(rows.map((r) => [r.outcome, r.env])).toEqual([
      ["refused", { GURU_AGENT_KEY: "[redacted]" }],
      ...cases.reverse().map(([name, value]) => ["refused", { [name]: value }]),
    ]);
    await waitFor(async () => (await oplogEntries(s.stateDir)).length === 4, 5000, "the operation log");
    const logged = await oplogEntries(s.stateDir);
    expect(logged.map((e) => [e.result, e.detail.env])).toEqual([
      ["refused", { BASH_ENV: script }],
      ["refused", { LD_PRELOAD: join(t.tempDir, "evil.so") }],
      ["refused", { PATH: `${t.tempDir}:/usr/bin:/bin` }],
      ["refused", { GURU_AGENT_KEY: "[redacted]" }],
    ]);
  });

  it("passes a variable the policy allows, and an ordinary one, to the command; the audit and the log redact secret values", async () => {
    const policyFile = join(t.tempDir, `allow-env-${kind}.json`);
    await writeFile(policyFile, JSON.stringify({ exec: { allowEnv: ["PATH"] } }));
    const s = await start(t, "direct", { GURU_POLICY: policyFile });
    const env = { PATH: `/opt/tools/bin:/usr/bin:/bin`, APP_MODE: "blue", API_TOKEN: "tok-123-secret", DB_URL: "postgres://app:pw-456@db/app" };
    const res = await s.api.exec.runCommand({ sessionId: s.sessionId, command: 'printf "%s|%s|%s" "$PATH" "$APP_MODE" "$API_TOKEN"', env });
    expect(Buffer.from(res.stdout).toString()).toBe("/opt/tools/bin:/usr/bin:/bin|blue|tok-123-secret");

    await t.server.commands.drain();
    const [row] = await t.server.store.audit.listCommands({ sessionId: s.sessionId });
    const recorded = { PATH: env.PATH, APP_MODE: "blue", API_TOKEN: "[redacted]", DB_URL: "postgres://app:[redacted]@db/app" };
    expect(row).toMatchObject({ outcome: "allowed", exitCode: 0, env: recorded });
    await waitFor(async () => (await oplogEntries(s.stateDir)).length === 1, 5000, "the operation log");
    const [entry] = await oplogEntries(s.stateDir);
    expect(entry.detail.env).toEqual(recorded);
    expect(JSON.stringify(entry)).not.toContain("tok-123-secret");
    expect(JSON.stringify(entry)).not.toContain("pw-456");
  });

  it("refuses an unknown shell on the agent itself (invalid), running nothing", async () => {
    const s = await start(t, "launcher");
    const marker = join(t.tempDir, `unknown-shell-${kind}`);
    // Straight to the agent's link: the server's own check would stop it first.
    const channel = t.server.router.openChannel(
      s.agent.agentId,
      create(ChannelOpenSchema, {
        request: {
          case: "exec",
          value: create(ExecRequestSchema, {
            command: `touch ${marker}`,
            shell: 42 as Shell,
            timeoutMs: 5000,
            maxOutputBytes: 1024n,
            sessionId: s.sessionId,
            technicianId: s.technicianId,
          }),
        },
      }),
    );
    let error: unknown;
    for await (const m of channel.messages()) if (m.type === "error") error = m.error;
    expect(isGuruError(error, "invalid")).toBe(true);
    expect((error as Error).message).toContain("shell must be one of bash, sh, powershell, pwsh, cmd");
    expect(existsSync(marker)).toBe(false);
  });
});

describe.runIf(process.platform !== "win32")("the agent key", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind: "pglite" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("is refused from a key file group or others can read, with the chmod; a 0600 one connects", async () => {
    const { agentId, agentKey } = await t.enrollAgent("key-file-1");
    const keyFile = join(t.tempDir, "agent.key");
    await writeFile(keyFile, `${agentKey}\n`);
    await chmod(keyFile, 0o644);
    const open = await t.spawnAgent({ agentId, agentKey, env: { GURU_AGENT_KEY: "", GURU_AGENT_KEY_FILE: keyFile } });
    const code = await new Promise((r) => open.child.once("exit", r));
    expect(code).not.toBe(0);
    expect(open.output()).toContain(`agent key file ${keyFile} is readable by group or others (mode 644); run: chmod 600 ${keyFile}`);
    expect(t.server.router.isOnline(agentId)).toBe(false);

    await chmod(keyFile, 0o600);
    const agent = await t.spawnAgent({ agentId, agentKey, env: { GURU_AGENT_KEY: "", GURU_AGENT_KEY_FILE: keyFile } });
    await agent.waitOnline();
    await agent.stop();
  });

  it("given in GURU_AGENT_KEY, is removed from the agent's process.env once read", async () => {
    const { agentId, agentKey } = await t.enrollAgent("key-env-1");
    const dump = join(t.tempDir, "agent-env.json");
    // Loaded into the real agent process: on SIGUSR2, writes what process.env holds then.
    const probe = `import { writeFileSync } from "node:fs"; process.on("SIGUSR2", () => writeFileSync(${JSON.stringify(dump)}, JSON.stringify(process.env)));`;
    const agent = spawnGuru(
      ["agent", "--server", t.url, "--state-dir", await mkdtemp(join(t.tempDir, "state-")), "--allow", t.tempDir],
      { GURU_AGENT_KEY: agentKey, GURU_LOG_LEVEL: "warn" },
      { nodeArgs: ["--import", `data:text/javascript,${encodeURIComponent(probe)}`] },
    );
    try {
      await waitFor(() => t.server.router.isOnline(agentId), 15_000, "the agent online");
      agent.child.kill("SIGUSR2");
      await waitFor(() => existsSync(dump), 5000, "the env dump");
      const env = JSON.parse(await readFile(dump, "utf8")) as Record<string, string>;
      expect(env.GURU_LOG_LEVEL).toBe("warn"); // the probe saw the agent's environment
      expect(env).not.toHaveProperty("GURU_AGENT_KEY");
      expect(JSON.stringify(env)).not.toContain(agentKey);
    } finally {
      await agent.stop();
    }
  });
});

describe("a lying agent", () => {
  let t: TestServer;
  const capBytes = 4096;
  beforeAll(async () => {
    t = await startTestServer({ kind: "pglite", config: { execMaxOutputBytes: capBytes } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("that ignores the output cap gets cut at the server: at most the cap per stream, and the result says truncated", async () => {
    const { agentId, agentKey } = await t.enrollAgent("liar-1");
    const raw = (await rawUpgrade(t.url, { key: agentKey })) as RawAgent;
    raw.sendHello();
    await waitFor(() => raw.frames.some((f) => f.kind.case === "helloAck"), 3000, "HelloAck");
    const tech = await t.createTech("tech-liar");
    const opening = tech.api.sessions.openTunnel({ agentId });
    await waitFor(() => raw.frames.some((f) => f.kind.case === "tunnelOpen"), 3000, "TunnelOpen");
    const tunnelOpen = raw.frames.find((f) => f.kind.case === "tunnelOpen");
    const sessionId = tunnelOpen?.kind.case === "tunnelOpen" ? tunnelOpen.kind.value.sessionId : "";
    raw.send({ case: "tunnelReady", value: create(TunnelReadySchema, { sessionId }) });
    await opening;

    const running = tech.api.exec.runCommand({ sessionId, command: "yes" });
    await waitFor(() => raw.frames.some((f) => f.kind.case === "open"), 3000, "the exec channel");
    const open = raw.frames.find((f) => f.kind.case === "open")!;
    expect(open.kind.case === "open" && open.kind.value.request.case === "exec" && open.kind.value.request.value.maxOutputBytes).toBe(BigInt(capBytes));
    // 32 KiB on each stream, eight times the cap, claiming nothing was cut.
    const chunk = new Uint8Array(4000).fill(0x61);
    for (let i = 0; i < 8; i++) {
      for (const stream of [OutputStream.STDOUT, OutputStream.STDERR]) {
        raw.send({ case: "data", value: create(ChannelDataSchema, { data: chunk, stream }) }, open.channelId);
      }
    }
    raw.send(
      {
        case: "result",
        value: create(ChannelResultSchema, {
          result: {
            case: "exec",
            value: create(ExecResultSchema, { exitCode: 0, reason: ExitReason.EXITED, stdoutBytes: 10n, stderrBytes: 10n, truncated: false }),
          },
        }),
      },
      open.channelId,
    );
    const res = await running;
    expect(res.stdout.length).toBe(capBytes);
    expect(res.stderr.length).toBe(capBytes);
    expect(res.result?.truncated).toBe(true);
    expect(res.result?.stdoutBytes).toBe(32_000n);
    await t.server.commands.drain();
    const [row] = await t.server.store.audit.listCommands({ sessionId });
    expect(row).toMatchObject({ truncated: true, outcome: "allowed" });
    raw.ws.close();
  });
});
