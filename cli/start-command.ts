// `guru start` (behind `npm start`): the server on the embedded database, one
// local agent enrolled and connected as a child process, and the lines a user
// needs next. Ctrl-C stops both.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isGuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { createLogger } from "../lib/logging.ts";
import { loadServerConfig } from "../server/config.ts";
import { startServer, type GuruServer } from "../server/server.ts";
import { untilSignal } from "./signals.ts";

const guruBin = fileURLToPath(new URL("../bin/guru.js", import.meta.url));

interface LocalAgent {
  agentId: string;
  name: string;
  key: string;
}

export async function startCommand(argv: string[]): Promise<number> {
  const began = performance.now();
  const { flags } = parseArgs(argv);
  const allow = ([] as string[]).concat((flags.allow as string | string[] | undefined) ?? process.cwd()).map((p) => resolve(p));
  const config = loadServerConfig({ flags });
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const logger = createLogger({ level: config.logLevel, name: "guru-server", file: join(dataDir, "server.log") });

  process.stdout.write(`Starting GuruTunnel (${config.databaseUrl ? "PostgreSQL" : `embedded database in ${join(dataDir, "db")}; the first start takes a few seconds`})…\n`);
  const server = await startServer({ config: { ...config, dataDir }, logger });
  const admin = { technicianId: server.bootstrapAdmin.id, name: server.bootstrapAdmin.name, role: "admin" as const, tokenId: "quick-start" };
  const agent = await ensureLocalAgent(server, admin, dataDir);
  const { token } = await server.tokens.issue(server.bootstrapAdmin.id);

  const child = spawnAgent(server.url, agent, allow, dataDir);
  await waitUntilOnline(server, agent.agentId, child);

  const envFile = join(dataDir, "env");
  await writeFile(envFile, `GURU_URL=${server.url}\nGURU_TOKEN=${token}\nGURU_AGENT_ID=${agent.agentId}\n`, { mode: 0o600 });
  const seconds = ((performance.now() - began) / 1000).toFixed(1);
  process.stdout.write(readyMessage({ url: server.url, seconds, agent, allow, envFile, dataDir, database: config.databaseUrl ? "PostgreSQL" : "embedded PGlite" }));

  const signal = await untilSignal();
  process.stdout.write(`\n${signal}: stopping the agent and the server…\n`);
  await stopChild(child);
  await server.close();
  process.stdout.write("stopped.\n");
  return 0;
}

async function ensureLocalAgent(server: GuruServer, admin: Parameters<GuruServer["admin"]["enrollAgent"]>[0], dataDir: string): Promise<LocalAgent> {
  const file = join(dataDir, "local-agent.json");
  if (existsSync(file)) {
    const saved = JSON.parse(await readFile(file, "utf8")) as LocalAgent;
    const record = await server.store.agents.get(saved.agentId);
    if (record !== undefined && record.revokedAt === null) return saved;
  }
  for (let n = 1; ; n++) {
    const name = n === 1 ? "local" : `local-${n}`;
    try {
      const { agentId, agentKey } = await server.admin.enrollAgent(admin, name);
      const agent = { agentId, name, key: agentKey };
      await writeFile(file, JSON.stringify(agent), { mode: 0o600 });
      return agent;
    } catch (err) {
      if (!isGuruError(err, "conflict")) throw err;
    }
  }
}

function spawnAgent(url: string, agent: LocalAgent, allow: string[], dataDir: string): ChildProcess {
  const args = [guruBin, "agent", "--server", url, "--name", agent.name, "--state-dir", join(dataDir, "agent"), "--enable", "services", ...allow.flatMap((p) => ["--allow", p])];
  // The key goes through the environment, not argv, which any user can read in ps.
  return spawn(process.execPath, args, {
    env: { ...process.env, GURU_AGENT_KEY: agent.key, GURU_LOG_FILE: join(dataDir, "agent.log") },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

async function waitUntilOnline(server: GuruServer, agentId: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!server.router.isOnline(agentId)) {
    if (child.exitCode !== null) throw new Error(`the local agent exited with code ${child.exitCode}; see its log`);
    if (Date.now() > deadline) throw new Error("the local agent did not connect within 30 s; see .guru/agent.log");
    await new Promise((r) => setTimeout(r, 25));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

function readyMessage(m: { url: string; seconds: string; agent: LocalAgent; allow: string[]; envFile: string; dataDir: string; database: string }): string {
  return `
GuruTunnel is ready (${m.seconds} s).
  server  ${m.url}  (${m.database})
  agent   ${m.agent.name}  ${m.agent.agentId}  allowed paths: ${m.allow.join(", ")}
  logs    ${join(m.dataDir, "server.log")}, ${join(m.dataDir, "agent.log")}

In another terminal, load the address and an admin token (kept in ${m.envFile}, mode 0600):
  set -a; . ${m.envFile}; set +a

Open a tunnel with curl:
  curl -s -H "Authorization: Bearer $GURU_TOKEN" -H 'Content-Type: application/json' \\
    -d "{\\"agentId\\":\\"$GURU_AGENT_ID\\"}" "$GURU_URL/guru.api.v1.SessionService/OpenTunnel"

Or the CLI:
  npx guru agents
  npx guru run ${m.agent.name} -- uname -a
  npx guru cp ./some-file ${m.agent.name}:${m.allow[0]}/some-file

Claude Code:
  claude mcp add guru --env GURU_URL="$GURU_URL" --env GURU_TOKEN="$GURU_TOKEN" -- npx guru mcp

Ctrl-C stops the server and the agent.
`;
}
