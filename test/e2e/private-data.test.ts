// What a server and an agent leave on disk is their user's alone: real `guru
// server` processes on fresh data dirs, and real `guru agent` processes on
// fresh state dirs. Modes are checked with stat (tests run as root, so a
// failed read would prove nothing).
import { createHash, randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createApiClients } from "../../lib/api-client.ts";
import { createTestDb, describeDatabases } from "../support/databases.ts";
import { startTestServer, type TestServer } from "../support/harness.ts";
import { waitFor } from "../support/raw-agent.ts";
import { expectPrivate, modesUnder } from "../support/file-modes.ts";
import { spawnGuru, type GuruProcess } from "../support/server-process.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describeDatabases("private server data", (kind) => {
  let parent: string;
  let pgUrl: string | undefined;
  let pgCleanup: (() => Promise<void>) | undefined;
  const processes: GuruProcess[] = [];
  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), "guru-private-"));
    if (kind === "pg") {
      const pg = await createTestDb(kind);
      await pg.db.close();
      pgUrl = pg.url;
      pgCleanup = pg.cleanup;
    }
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    await pgCleanup?.();
    await rm(parent, { recursive: true, force: true });
  });

  it("a fresh server's data dir is 0700 and every file in it 0600, the embedded database's included", { timeout: 90_000 }, async () => {
    const dataDir = join(parent, "fresh", "data");
    const server = spawnGuru(["server", "--port", "0", "--data-dir", dataDir], { DATABASE_URL: pgUrl, GURU_LOG_LEVEL: "info" });
    processes.push(server);
    const [, url] = await server.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
    // Some writes (a technician, an agent, tokens), so the database has written since it opened.
    const token = (await readFile(join(dataDir, "admin-token"), "utf8")).trim();
    const api = createApiClients({ url, token });
    await api.admin.enrollAgent({ name: "private-check" });
    await api.admin.createTech({ name: "tech-private" });
    const running = await modesUnder(dataDir);
    if (kind === "pglite") expect(running.filter((e) => e.path.includes(`${join(dataDir, "db")}/`)).length).toBeGreaterThan(100);
    expect(running.map((e) => e.path)).toContain(join(dataDir, "admin-token"));
    expectPrivate(running);
    expect(await server.stop("SIGTERM")).toBe(0);
    // Whatever the database wrote while closing too.
    expectPrivate(await modesUnder(dataDir));
    // Its parents that it created are private as well.
    expect((await lstat(join(parent, "fresh"))).mode & 0o777).toBe(0o700);
  });

  it("refuses to start on a data dir others can read, naming the chmod that fixes it, and creates nothing", async () => {
    const dataDir = join(parent, "open");
    await mkdir(dataDir);
    await chmod(dataDir, 0o755);
    const server = spawnGuru(["server", "--port", "0", "--data-dir", dataDir], { DATABASE_URL: pgUrl });
    processes.push(server);
    const code = await new Promise<number | null>((resolve) => server.child.once("exit", (c) => resolve(c)));
    expect(code).toBe(1);
    expect(server.output()).toContain(`guru server: data dir ${dataDir} is open to other users (mode 0755)`);
    expect(server.output()).toContain(`run: chmod 700 ${dataDir}`);
    expect(await readdir(dataDir)).toEqual([]);
    expect((await lstat(dataDir)).mode & 0o777).toBe(0o755);
  });
});

describeDatabases("private agent state", (kind) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ kind });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a fresh agent's state dir (operation log, upload records) is 0700 with 0600 files", { timeout: 60_000 }, async () => {
    const root = await mkdtemp(join(t.tempDir, "allowed-"));
    const stateDir = join(t.tempDir, "fresh-agent", "state");
    const { agentId, agentKey } = await t.enrollAgent(`private-${kind}`);
    const agent = await t.spawnAgent({ agentId, agentKey, allow: [root], stateDir });
    await agent.waitOnline();
    const { sessionId } = await t.admin.sessions.openTunnel({ agentId });
    await t.admin.files.stat({ sessionId, path: "." });
    const data = randomBytes(100_000);
    const { uploadId } = await t.admin.files.startUpload({ sessionId, path: "partial.bin", size: BigInt(data.length), sha256: sha(data) });
    await t.admin.files.uploadChunk({ uploadId, offset: 0n, data: data.subarray(0, 40_000) });
    await waitFor(async () => (await t.admin.files.getUpload({ uploadId })).committedOffset === 40_000n, 5000, "bytes committed");
    await waitFor(async () => (await readdir(stateDir)).includes("operations.log"), 5000, "the operation log");
    const entries = await modesUnder(stateDir);
    expect(entries.map((e) => e.path)).toEqual(expect.arrayContaining([join(stateDir, "operations.log"), join(stateDir, "uploads", `${uploadId}.json`)]));
    expectPrivate(entries);
    // The partial beside the target is private too while it is in progress.
    const partial = (await readdir(root)).find((n) => n.includes(".guru-upload-"));
    expect(partial).toBeDefined();
    expect((await lstat(join(root, partial!))).mode & 0o7777).toBe(0o600);
    await agent.stop();
  });

  it("refuses to start on a state dir others can read, naming the chmod", async () => {
    const stateDir = await mkdtemp(join(t.tempDir, "open-state-"));
    await chmod(stateDir, 0o750);
    const { agentId, agentKey } = await t.enrollAgent(`open-state-${kind}`);
    const agent = await t.spawnAgent({ agentId, agentKey, stateDir });
    const code = await new Promise<number | null>((resolve) => agent.child.once("exit", (c) => resolve(c)));
    expect(code).toBe(1);
    expect(agent.output()).toContain(`agent state dir ${stateDir} is open to other users (mode 0750)`);
    expect(agent.output()).toContain(`run: chmod 700 ${stateDir}`);
    expect(await readdir(stateDir)).toEqual([]);
    expect(t.server.router.isOnline(agentId)).toBe(false);
  });
});
