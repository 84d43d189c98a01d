// `npm start`'s command from a clean data dir: server on the embedded
// database, a local agent, the env file, and a tunnel opened with plain JSON
// over HTTP as the printed curl line does.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { spawnGuru, type GuruProcess } from "../support/server-process.ts";

let quick: GuruProcess | undefined;
let dataDir: string | undefined;
afterAll(async () => {
  await quick?.stop("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it("starts a server and a local agent, writes the env file and opens a tunnel over JSON", async () => {
  dataDir = await mkdtemp(join(tmpdir(), "guru-quick-"));
  quick = spawnGuru(["start", "--port", "0", "--data-dir", dataDir, "--allow", dataDir], { DATABASE_URL: undefined });
  await quick.waitFor(/GuruTunnel is ready/, 90_000);
  expect(quick.output()).toContain("claude mcp add guru");
  const envFile = join(dataDir, "env");
  expect((await stat(envFile)).mode & 0o777).toBe(0o600);
  const env = Object.fromEntries((await readFile(envFile, "utf8")).trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2)));
  expect(Object.keys(env).sort()).toEqual(["GURU_AGENT_ID", "GURU_TOKEN", "GURU_URL"]);
  // The token is in the file, never in the terminal output.
  expect(quick.output()).not.toContain(env.GURU_TOKEN);

  const res = await fetch(`${env.GURU_URL}/guru.api.v1.SessionService/OpenTunnel`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.GURU_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ agentId: env.GURU_AGENT_ID }),
  });
  const body = (await res.json()) as { sessionId: string; session: { status: string } };
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.sessionId).toMatch(/^[0-9a-f-]{36}$/);
  expect(body.session.status).toBe("SESSION_STATUS_ACTIVE");

  // The local agent has services switched on, where the machine has a service manager.
  const listed = await fetch(`${env.GURU_URL}/guru.api.v1.AgentService/ListAgents`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.GURU_TOKEN}`, "content-type": "application/json" },
    body: "{}",
  });
  const { agents } = (await listed.json()) as { agents: { agentId: string; capabilities: string[] }[] };
  const hasManager = existsSync("/run/systemd/system") || existsSync("/etc/init.d");
  expect(agents.find((a) => a.agentId === env.GURU_AGENT_ID)?.capabilities.includes("services")).toBe(process.platform === "linux" ? hasManager : true);

  expect(await quick.stop("SIGINT")).toBe(0);
  expect(quick.output()).toContain("stopped.");
}, 120_000);
