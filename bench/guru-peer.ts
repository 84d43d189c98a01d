// GuruTunnel as the benchmarks' subject, the way a technician runs it: a
// `guru server` (embedded PGlite) plus one `guru agent`, both spawned, the
// admin token the server wrote, `guru cp` spawned as a person would run it,
// and the small measuring helpers the OpenSSH comparisons share.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createApiClients, type ApiClients } from "../lib/api-client.ts";
import { spawnGuru, type GuruProcess } from "../test/support/server-process.ts";

export const MiB = 1024 * 1024;
export const guruBin = fileURLToPath(new URL("../bin/guru.js", import.meta.url));
export const print = (line: string) => process.stdout.write(`${line}\n`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The p-th percentile (nearest rank) of samples. */
export function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const f0 = (n: number) => n.toFixed(0);
export const f1 = (n: number) => n.toFixed(1);
export const ratio = (ours: number, theirs: number) => (Number.isFinite(ours / theirs) ? `${(ours / theirs).toFixed(2)}` : "—");

/** Spawns and captures stdout; rejects on a non-zero exit. */
export function runOut(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ? { ...process.env, ...env } : process.env });
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ").slice(0, 200)} exited with ${code}: ${err}`))));
  });
}

/** Writes `bytes` of random data (each 4 MiB piece numbered, so none repeats) and returns its SHA-256. */
export async function makeFile(path: string, bytes: number): Promise<string> {
  const handle = await open(path, "w");
  const hash = createHash("sha256");
  const piece = randomBytes(4 * MiB);
  for (let done = 0; done < bytes; done += piece.length) {
    piece.writeUInt32BE(done / piece.length, 0);
    const part = piece.subarray(0, Math.min(piece.length, bytes - done));
    hash.update(part);
    await handle.write(part);
  }
  await handle.close();
  return hash.digest("hex");
}

export interface Guru {
  name: string;
  url: string;
  token: string;
  api: ApiClients;
  agentId: string;
  server: GuruProcess;
  agent: GuruProcess;
  agentRoot: string;
  /** What a spawned `guru` client needs: URL, token, its own state dir. */
  env: Record<string, string>;
}

export interface StartGuruOptions {
  tls?: { cert: string; key: string };
  /** The agent's local policy (terminals are off unless it turns them on). */
  agentPolicy?: Record<string, unknown>;
}

/** A server on a fresh data dir under `dir` and one agent enrolled as `name`, online when this resolves. */
export async function startGuru(dir: string, name: string, options: StartGuruOptions = {}): Promise<Guru> {
  const { tls } = options;
  const serverEnv: Record<string, string> = {
    GURU_LOG_LEVEL: "info",
    GURU_COMMAND_RATE_LIMIT: "1000000",
    GURU_FILE_OP_RATE_LIMIT: "1000000",
    GURU_TUNNEL_OPEN_RATE_LIMIT: "1000000",
  };
  if (tls) Object.assign(serverEnv, { GURU_TLS_CERT: tls.cert, GURU_TLS_KEY: tls.key });
  const server = spawnGuru(["server", "--port", "0", "--data-dir", join(dir, `${name}-server`)], serverEnv);
  const [, url] = await server.waitFor(/"url":"(https?:\/\/127\.0\.0\.1:\d+)"/, 120_000);
  const token = (await readFile(join(dir, `${name}-server`, "admin-token"), "utf8")).trim();
  const clientEnv: Record<string, string> = tls ? { NODE_EXTRA_CA_CERTS: tls.cert } : {};
  const api = createApiClients({ url, token, ca: tls ? readFileSync(tls.cert) : undefined });
  const { agentId, agentKey } = await api.admin.enrollAgent({ name });
  const agentRoot = join(dir, `${name}-root`);
  await mkdir(agentRoot, { recursive: true });
  const agentEnv: Record<string, string> = { GURU_AGENT_KEY: agentKey, GURU_LOG_LEVEL: "warn", ...clientEnv };
  if (options.agentPolicy) {
    const policyFile = join(dir, `${name}-policy.json`);
    await writeFile(policyFile, JSON.stringify(options.agentPolicy));
    agentEnv.GURU_POLICY = policyFile;
  }
  const agent = spawnGuru(["agent", "--server", url, "--state-dir", join(dir, `${name}-agent`), "--allow", agentRoot], agentEnv);
  for (let i = 0; !(await api.agents.listAgents({})).agents.find((a) => a.agentId === agentId)?.online; i++) {
    if (i > 1200) throw new Error(`agent ${name} did not come online:\n${agent.output()}`);
    await sleep(50);
  }
  return {
    name,
    url,
    token,
    api,
    agentId,
    server,
    agent,
    agentRoot,
    env: { GURU_URL: url, GURU_TOKEN: token, GURU_CLI_STATE_DIR: join(dir, "cli-state"), ...clientEnv },
  };
}

/** `guru cp FROM TO` spawned; resolves with its wall time in ms once it printed the expected SHA-256. */
export async function guruCp(g: Guru, from: string, to: string, sha256: string): Promise<number> {
  const started = performance.now();
  const out = await runOut(process.execPath, [guruBin, "cp", "--quiet", from, to], g.env);
  const ms = performance.now() - started;
  if (!out.includes(sha256)) throw new Error(`guru cp ${from} ${to}: SHA-256 differs: ${out}`);
  return ms;
}
