// A PostgreSQL server of a test's own, in a temp dir on a free port, for
// tests that stop and start the database (the shared server on 5432 is never
// touched). initdb refuses to run as root, so as root the cluster belongs to
// the `postgres` user and its commands run through runuser.
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free-port.ts";

const run = promisify(execFile);

export interface PrivatePostgres {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

function binDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], "bin") : undefined;
}

/** Why a private PostgreSQL cannot be started here, or undefined when it can. */
export function privatePostgresUnavailable(): string | undefined {
  if (binDir() === undefined) return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin";
  if (userInfo().uid === 0 && !existsSync("/usr/sbin/runuser")) return "running as root without runuser to start initdb as postgres";
  return undefined;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  if (bin === undefined) throw new Error(privatePostgresUnavailable());
  const dir = await mkdtemp(join(tmpdir(), "guru-private-pg-"));
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const pgRun = (tool: string, args: string[]) =>
    asRoot ? run("/usr/sbin/runuser", ["-u", "postgres", "--", join(bin, tool), ...args]) : run(join(bin, tool), args);
  const data = join(dir, "data");
  await pgRun("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const ctl = (action: string, extra: string[] = []) => pgRun("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "60", ...extra, action]);
  await ctl("start", ["-o", options]);
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      // fast: connections are terminated at once, as when a database host goes down.
      await ctl("stop", ["-m", "fast"]);
      running = false;
    },
    async start() {
      await ctl("start", ["-o", options]);
      running = true;
    },
    async cleanup() {
      if (running) await ctl("stop", ["-m", "immediate"]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
