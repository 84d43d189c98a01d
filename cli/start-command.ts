// `guru start` (behind `npm start`): the server on the embedded database, one
// local agent enrolled and connected as a child process, and the lines a user
// needs next. Ctrl-C stops both.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isGuruError } from "../lib/errors.ts";
import { parseArgs } from "../lib/flags.ts";
import { createLogger } from "../lib/logging.ts";
import { handleUnhandledRejections } from "../lib/unhandled-rejections.ts";
import { ensurePrivateDir, usePrivateUmask } from "../lib/private-dir.ts";
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
  // Before anything is created: the database, the env file with its admin token and the agent's state are private.
  usePrivateUmask();
  const { flags } = parseArgs(argv);
  const allow = ([] as string[]).concat((flags.allow as string | string[] | undefined) ?? process.cwd()).map((p) => resolve(p));
  const config = loadServerConfig({ flags });
  const dataDir = resolve(config.dataDir);
  await ensurePrivateDir(dataDir, "data dir");
  const logger = createLogger({ level: config.logLevel, name: "guru-server", file: join(dataDir, "server.log") });

  process.stdout.write(
    `Starting GuruTunnel (${config.databaseUrl ? "PostgreSQL" : `embedded database in ${join(dataDir, "db")}; the first start takes a few seconds`})…\n`,
  );
  const server = await startServer({ config: { ...config, dataDir }, logger });
  handleUnhandledRejections({ logger, onRejection: () => server.metrics.unhandledRejections.inc() });
  const admin = { technicianId: server.bootstrapAdmin.id, name: server.bootstrapAdmin.name, role: "admin" as const, tokenId: "quick-start" };
  const agent = await ensureLocalAgent(server, admin, dataDir);
  const { token } = await server.tokens.issue(server.bootstrapAdmin.id);
  // Claude Code gets a technician's token, never the admin's: it can run
  // commands and move files, not create technicians or enrol agents.
  const tech = await ensureLocalTechnician(server, admin);
  const { token: techToken } = await server.tokens.issue(tech.id);

  const keyFile = await writeAgentKeyFile(agent, dataDir);
  const child = await spawnAgent(server.url, agent, keyFile, allow, dataDir);
  await waitUntilOnline(server, agent.agentId, child);

  const envFile = join(dataDir, "env");
  await writeFile(envFile, `GURU_URL=${server.url}\nGURU_TOKEN=${token}\nGURU_TECH_TOKEN=${techToken}\nGURU_AGENT_ID=${agent.agentId}\n`, { mode: 0o600 });
  const launcher = await writeLauncher(dataDir);
  const seconds = ((performance.now() - began) / 1000).toFixed(1);
  process.stdout.write(
    readyMessage({
      url: server.url,
      seconds,
      agent,
      allow,
      envFile,
      dataDir,
      launcher,
      database: config.databaseUrl ? "PostgreSQL" : "embedded PGlite",
    }),
  );

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

/** The quick start's technician (role tech), for Claude Code; a new one if the last was disabled. */
async function ensureLocalTechnician(server: GuruServer, admin: Parameters<GuruServer["admin"]["createTech"]>[0]) {
  for (let n = 1; ; n++) {
    const name = n === 1 ? "local-tech" : `local-tech-${n}`;
    const existing = await server.store.technicians.getByName(name);
    if (existing !== undefined) {
      if (existing.role === "tech" && existing.disabledAt === null) return existing;
      continue;
    }
    try {
      return await server.admin.createTech(admin, name, "tech");
    } catch (err) {
      if (!isGuruError(err, "conflict")) throw err;
    }
  }
}

/** The local agent's key in a file only this user can read: not argv (ps shows it), not the environment (children inherit it). */
async function writeAgentKeyFile(agent: LocalAgent, dataDir: string): Promise<string> {
  const file = join(dataDir, "agent-key");
  await writeFile(file, `${agent.key}\n`, { mode: 0o600 });
  // writeFile's mode applies only when it creates the file.
  await chmod(file, 0o600);
  return file;
}

// The server's settings and credentials are not the agent's business.
const notForTheAgent = /^(DATABASE_URL|GURU_AGENT_KEY|GURU_TOKEN|GURU_TLS_KEY|GURU_ADMIN.*)$/;

async function spawnAgent(url: string, agent: LocalAgent, keyFile: string, allow: string[], dataDir: string): Promise<ChildProcess> {
  // The local agent is the user's own machine: its policy also enables
  // interactive terminals (`guru shell local`) and services, which agents keep off by default.
  const policyFile = join(dataDir, "local-agent-policy.json");
  await writeFile(policyFile, `${JSON.stringify({ allowedPaths: allow, capabilities: { terminal: true, services: true } }, null, 2)}\n`, { mode: 0o600 });
  const args = [guruBin, "agent", "--server", url, "--name", agent.name, "--key-file", keyFile, "--state-dir", join(dataDir, "agent"), "--policy", policyFile];
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !notForTheAgent.test(name)));
  return spawn(process.execPath, args, {
    env: { ...env, GURU_LOG_FILE: join(dataDir, "agent.log") },
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

/**
 * `DATA_DIR/bin/guru`: this checkout's guru on the Node that runs the quick
 * start, from any directory. `npx guru` spends a second or two in npm on
 * every call, and outside the checkout it would look for a package named
 * guru in the registry; Claude Code starts its MCP servers from the user's
 * project directory. Windows keeps `npx guru`.
 */
async function writeLauncher(dataDir: string): Promise<string | undefined> {
  if (process.platform === "win32") return undefined;
  const dir = join(dataDir, "bin");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, "guru");
  await writeFile(file, `#!/bin/sh\n# Written by guru start.\nexec ${shellWord(process.execPath)} ${shellWord(guruBin)} "$@"\n`, { mode: 0o700 });
  await chmod(file, 0o700); // an existing file keeps its mode through writeFile
  return file;
}

/** A path as one word for sh: as it is when nothing in it is special, else single-quoted. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

function readyMessage(m: {
  url: string;
  seconds: string;
  agent: LocalAgent;
  allow: string[];
  envFile: string;
  dataDir: string;
  launcher: string | undefined;
  database: string;
}): string {
  const guru = m.launcher === undefined ? "npx guru" : "guru";
  const cliSetup = m.launcher === undefined ? "" : `  export PATH=${shellWord(join(m.dataDir, "bin"))}:"$PATH"   # guru without npx's start-up\n`;
  return `
GuruTunnel is ready (${m.seconds} s).
  server  ${m.url}  (${m.database})
  agent   ${m.agent.name}  ${m.agent.agentId}  allowed paths: ${m.allow.join(", ")}
  logs    ${join(m.dataDir, "server.log")}, ${join(m.dataDir, "agent.log")}

In another terminal, load the address, an admin token (GURU_TOKEN) and a technician token
for Claude Code (GURU_TECH_TOKEN), kept in ${m.envFile}, mode 0600:
  set -a; . ${shellWord(m.envFile)}; set +a

Open a tunnel with curl:
  curl -s -H "Authorization: Bearer $GURU_TOKEN" -H 'Content-Type: application/json' \\
    -d "{\\"agentId\\":\\"$GURU_AGENT_ID\\"}" "$GURU_URL/guru.api.v1.SessionService/OpenTunnel"

Or the CLI:
${cliSetup}  ${guru} agents
  ${guru} run ${m.agent.name} -- uname -a
  ${guru} shell ${m.agent.name}
  ${guru} cp ./some-file ${m.agent.name}:${m.allow[0]}/some-file

Claude Code (with the technician token of local-tech, not the admin's):
  claude mcp add guru --env GURU_URL="$GURU_URL" --env GURU_TOKEN="$GURU_TECH_TOKEN" -- ${m.launcher === undefined ? "npx guru" : shellWord(m.launcher)} mcp

Ctrl-C stops the server and the agent.
`;
}
