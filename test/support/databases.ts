// Test databases for every test file that needs one: embedded PGlite (a copy
// of the migrated template) and, when reachable, a fresh database on a real
// PostgreSQL server. Use describeDatabases() so pg variants are skipped with a
// visible reason when no server is reachable, never silently passing.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, inject, type ProvidedContext } from "vitest";
import { openDb, openPgliteDb, type Db } from "../../server/store/db.ts";
import { migrate } from "../../server/store/migrate.ts";
import { createStore, type Store } from "../../server/store/index.ts";
import { ensurePgliteTemplate, templateTarName } from "./pglite-template.ts";
import { testPgUrl } from "./pg-url.ts";

export type TestDbKind = "pg" | "pglite";

export interface TestDatabase {
  kind: TestDbKind;
  available: boolean;
  /** Why it is not available. */
  reason?: string;
}

export interface TestDb {
  db: Db;
  /** pg only: the fresh database's URL, to pass to a server as DATABASE_URL. */
  url?: string;
  /** A fresh, empty data dir (pglite test databases live in memory; see createTestDataDir for one on disk). */
  dataDir: string;
  /** Closes the Db and drops the database or removes the data dir. Idempotent. */
  cleanup(): Promise<void>;
}

export function testDatabases(): TestDatabase[] {
  const pgAvailable = provided("guruPgAvailable");
  const pgReason = pgAvailable === undefined ? "not probed: test/support/global-setup.ts is not in vitest's globalSetup" : provided("guruPgReason");
  return [
    { kind: "pglite", available: true },
    { kind: "pg", available: pgAvailable === true, reason: pgAvailable === true ? undefined : pgReason },
  ];
}

/** One describe block per database kind; unavailable kinds are skipped and say why in the title. */
export function describeDatabases(title: string, body: (kind: TestDbKind) => void): void {
  for (const d of testDatabases()) {
    const name = d.available ? `${title} [${d.kind}]` : `${title} [${d.kind}] (skipped: ${d.reason})`;
    describe.skipIf(!d.available)(name, () => body(d.kind));
  }
}

/**
 * A fresh database of the given kind, opened and migrated. `migrate: false`
 * gives an empty one: on pg a new database, on pglite a cold initdb (seconds).
 * pglite databases are in memory; pg ones are dropped by cleanup().
 */
export async function createTestDb(kind: TestDbKind, options: { migrate?: boolean } = {}): Promise<TestDb> {
  const migrated = options.migrate ?? true;
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "guru-test-"));
  const undo: (() => Promise<unknown>)[] = [() => fs.rm(dataDir, { recursive: true, force: true })];
  const cleanup = once(async () => {
    for (const step of undo.reverse()) await step();
  });
  try {
    let db: Db;
    let url: string | undefined;
    if (kind === "pglite") {
      // In memory, loaded from the migrated template's tarball: a fresh database
      // without initdb or a disk copy. The data dir stays empty (for other files).
      db = await openPgliteDb({ loadDataDir: migrated ? await templateTar() : undefined });
    } else {
      const name = `guru_test_${randomBytes(6).toString("hex")}`;
      await adminQuery(`CREATE DATABASE ${name}`);
      undo.push(() => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
      url = withDatabase(testPgUrl(), name);
      db = await openDb({ databaseUrl: url, dataDir });
    }
    undo.push(() => db.close());
    if (migrated) await migrate(db);
    return { db, url, dataDir, cleanup };
  } catch (err) {
    await cleanup().catch(() => {});
    throw err;
  }
}

/**
 * A fresh data dir holding a migrated PGlite database, not opened: for tests
 * that start a server process on it (PGlite allows one opener per dir).
 */
export async function createTestDataDir(): Promise<{ dataDir: string; cleanup(): Promise<void> }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "guru-test-"));
  await copyTemplate(dataDir);
  return { dataDir, cleanup: () => fs.rm(dataDir, { recursive: true, force: true }) };
}

async function templateDir(): Promise<string> {
  // Outside vitest's globalSetup (a lone script), build or find the template here.
  return provided("guruPgliteTemplate") ?? (await ensurePgliteTemplate()).dir;
}

let tarball: Promise<Blob> | undefined;
function templateTar(): Promise<Blob> {
  tarball ??= templateDir().then(async (dir) => new Blob([await fs.readFile(path.join(dir, templateTarName))]));
  return tarball;
}

async function copyTemplate(dataDir: string): Promise<void> {
  await fs.cp(path.join(await templateDir(), "db"), path.join(dataDir, "db"), { recursive: true });
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: testPgUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** What globalSetup provided; undefined outside a vitest worker (a lone script) or without the globalSetup. */
function provided<K extends keyof ProvidedContext & string>(key: K): ProvidedContext[K] | undefined {
  try {
    return inject(key);
  } catch {
    return undefined;
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

/**
 * A migrated database of the given kind and a store over it for the current
 * describe block: opened in beforeAll, removed in afterAll. Read `store` and
 * `testDb` inside hooks and tests, not at collection time.
 */
export function useTestStore(kind: TestDbKind): { readonly store: Store; readonly testDb: TestDb } {
  let testDb: TestDb | undefined;
  let store: Store | undefined;
  beforeAll(async () => {
    testDb = await createTestDb(kind);
    store = createStore(testDb.db);
  });
  afterAll(() => testDb?.cleanup());
  return {
    get store() {
      if (store === undefined) throw new Error("useTestStore: the store is ready only inside hooks and tests");
      return store;
    },
    get testDb() {
      if (testDb === undefined) throw new Error("useTestStore: the database is ready only inside hooks and tests");
      return testDb;
    },
  };
}
