// `npm start`'s command from a clean data dir: server on the embedded
// database, a local agent, the env file, and a tunnel opened with plain JSON
// over HTTP as the printed curl line does.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { expectPrivate, modesUnder } from "../support/file-modes.ts";
import { spawnGuru, type GuruProcess } from "../support/server-process.ts";

let quick: GuruProcess | undefined;
let dataDir: string | undefined;
afterAll(async () => {
  await quick?.stop("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it("starts a server and a local agent, writes the env file and opens a tunnel over JSON", async () => {
  dataDir = await mkdtemp(join(tmpdir(), "guru-quick-"));
  // Secrets in the quick start's own environment, which must never reach a command.
  quick = spawnGuru(["start", "--port", "0", "--data-dir", dataDir, "--allow", dataDir], {
    DATABASE_URL: undefined,
    GURU_CANARY_SECRET: "canary-secret-value",
    GURU_AGENT_KEY: undefined,
  });
  await quick.waitFor(/GuruTunnel is ready/, 90_000);
  expect(quick.output()).toContain("claude mcp add guru");
  const envFile = join(dataDir, "env");
  expect((await stat(envFile)).mode & 0o777).toBe(0o600);
  const env = Object.fromEntries(
    (await readFile(envFile, "utf8"))
      .trim()
      .split("\n")
      .map((l) => l.split(/=(.*)/s).slice(0, 2)),
  );
  expect(Object.keys(env).sort()).toEqual(["GURU_AGENT_ID", "GURU_TECH_TOKEN", "GURU_TOKEN", "GURU_URL"]);
  // The tokens are in the file, never in the terminal output.
  expect(quick.output()).not.toContain(env.GURU_TOKEN);
  expect(quick.output()).not.toContain(env.GURU_TECH_TOKEN);
  // The printed Claude Code line carries the technician token: role tech, never the admin's.
  const mcpLine =
    quick
      .output()
      .split("\n")
      .find((l) => l.includes("claude mcp add guru")) ?? "";
  const tokenVar = /--env GURU_TOKEN="\$(\w+)"/.exec(mcpLine)?.[1];
  expect(tokenVar, mcpLine).toBe("GURU_TECH_TOKEN");
  const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()) as { role: string; name: string };
  expect(claims(env[tokenVar as string])).toMatchObject({ role: "tech", name: "local-tech" });
  expect(claims(env.GURU_TOKEN).role).toBe("admin");
  // And the technician token works for what Claude Code does.
  const listed = await fetch(`${env.GURU_URL}/guru.api.v1.AgentService/ListAgents`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.GURU_TECH_TOKEN}`, "content-type": "application/json" },
    body: "{}",
  });
  expect(listed.status).toBe(200);

  // The CLI and Claude Code get a launcher on the quick start's own Node: no npx, from any directory.
  const launcher = join(dataDir, "bin", "guru");
  expect((await stat(launcher)).mode & 0o777).toBe(0o700);
  expect(mcpLine.endsWith(`-- ${launcher} mcp`), mcpLine).toBe(true);
  expect(quick.output()).toContain(`export PATH=${join(dataDir, "bin")}:"$PATH"`);
  const listedByCli = execFileSync(launcher, ["agents", "--json"], {
    cwd: tmpdir(),
    env: { PATH: "/usr/bin:/bin", GURU_URL: env.GURU_URL, GURU_TOKEN: env.GURU_TECH_TOKEN },
    encoding: "utf8",
  });
  expect(listedByCli).toContain(env.GURU_AGENT_ID);

  const res = await fetch(`${env.GURU_URL}/guru.api.v1.SessionService/OpenTunnel`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.GURU_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ agentId: env.GURU_AGENT_ID }),
  });
  const body = (await res.json()) as { sessionId: string; session: { status: string } };
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.sessionId).toMatch(/^[0-9a-f-]{36}$/);
  expect(body.session.status).toBe("SESSION_STATUS_ACTIVE");

  // The local agent's key is in a 0600 file, and a command sees neither it nor GURU_*.
  const keyFile = join(dataDir, "agent-key");
  expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
  const agentKey = (await readFile(keyFile, "utf8")).trim();
  const run = await fetch(`${env.GURU_URL}/guru.api.v1.ExecService/RunCommand`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.GURU_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ sessionId: body.sessionId, command: "env" }),
  });
  const ran = (await run.json()) as { stdout: string };
  expect(run.status, JSON.stringify(ran)).toBe(200);
  const commandEnv = Buffer.from(ran.stdout, "base64").toString();
  expect(commandEnv).toContain("PATH=");
  for (const secret of [agentKey, env.GURU_TOKEN, "canary-secret-value", "GURU_", "DATABASE_URL"]) expect(commandEnv).not.toContain(secret);
  // The quick start's own agent has terminals enabled (agents keep them off by default), and
  // services where the machine has a service manager.
  const agents = await fetch(`${env.GURU_URL}/guru.api.v1.AgentService/ListAgents`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.GURU_TOKEN}`, "content-type": "application/json" },
    body: "{}",
  });
  const agentList = (await agents.json()) as { agents: { agentId: string; capabilities: string[] }[] };
  const capabilities = agentList.agents.find((a) => a.agentId === env.GURU_AGENT_ID)?.capabilities;
  expect(capabilities).toContain("terminal");
  const hasManager = existsSync("/run/systemd/system") || existsSync("/etc/init.d");
  expect(capabilities?.includes("services")).toBe(process.platform === "linux" ? hasManager : true);
  expect((await stat(join(dataDir, "local-agent-policy.json"))).mode & 0o777).toBe(0o600);

  expect(await quick.stop("SIGINT")).toBe(0);
  expect(quick.output()).toContain("stopped.");
  // The database, the env file, the logs and the local agent's state: the user's alone.
  const entries = await modesUnder(dataDir);
  expect(entries.map((e) => e.path)).toEqual(
    expect.arrayContaining([join(dataDir, "db"), join(dataDir, "agent"), join(dataDir, "server.log"), join(dataDir, "local-agent.json")]),
  );
  // The launcher is the one executable: 0700, asserted above.
  expectPrivate(entries.filter((e) => e.path !== join(dataDir as string, "bin", "guru")));
}, 120_000);
