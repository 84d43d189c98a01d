import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, describeDatabases, testDatabases, type TestDb } from "../../test/support/databases.ts";
import { openDb } from "./db.ts";
import { defaultMigrationsDir, listMigrations, migrate, migrationsStatus } from "./migrate.ts";

describeDatabases("migrate", (kind) => {
  let t: TestDb;
  let dir: string;
  beforeAll(async () => {
    t = await createTestDb(kind);
    // A migrations dir of our own: the real files plus test ones added per test.
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "guru-migrations-"));
    await fs.cp(defaultMigrationsDir, dir, { recursive: true });
    await fs.writeFile(path.join(dir, "README.md"), "not a migration");
  });
  afterAll(async () => {
    await t?.cleanup();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("reports every shipped migration applied and none pending", async () => {
    const names = await listMigrations();
    expect(names[0]).toBe("0001_core");
    expect(await migrationsStatus(t.db)).toEqual({ applied: names, pending: [] });
  });

  it("is idempotent: a second run applies nothing, and the SQL itself can run again", async () => {
    expect(await migrate(t.db)).toEqual([]);
    await t.db.exec(await fs.readFile(path.join(defaultMigrationsDir, "0001_core.sql"), "utf8"));
    expect((await migrationsStatus(t.db)).pending).toEqual([]);
  });

  it("applies a new file exactly once when two runs race", async () => {
    await fs.writeFile(path.join(dir, "0900_extra.sql"), "CREATE TABLE IF NOT EXISTS extra (n int); INSERT INTO extra VALUES (1);");
    expect((await migrationsStatus(t.db, dir)).pending).toEqual(["0900_extra"]);
    const [a, b] = await Promise.all([migrate(t.db, dir), migrate(t.db, dir)]);
    expect([...a, ...b]).toEqual(["0900_extra"]);
    expect((await t.db.query("SELECT count(*) AS n FROM extra")).rows[0].n).toBe(1);
    expect((await migrationsStatus(t.db, dir)).pending).toEqual([]);
  });

  it("stops at a failing file, records nothing for it, and keeps the database usable", async () => {
    await fs.writeFile(path.join(dir, "0901_ok.sql"), "CREATE TABLE IF NOT EXISTS ok_table (n int);");
    await fs.writeFile(path.join(dir, "0902_bad.sql"), "CREATE TABLE bad_table (n int); SELEC 1;");
    await fs.writeFile(path.join(dir, "0903_after.sql"), "CREATE TABLE IF NOT EXISTS after_table (n int);");
    await expect(migrate(t.db, dir)).rejects.toMatchObject({ code: "42601" });
    const status = await migrationsStatus(t.db, dir);
    expect(status.applied).toContain("0901_ok");
    expect(status.pending).toEqual(["0902_bad", "0903_after"]);
    expect((await t.db.query("SELECT to_regclass('bad_table')::text AS t")).rows[0].t).toBeNull();
    await fs.rm(path.join(dir, "0902_bad.sql"));
    expect(await migrate(t.db, dir)).toEqual(["0903_after"]);
  });
});

const pg = testDatabases().find((d) => d.kind === "pg")!;
it.skipIf(!pg.available)(
  `two servers migrating one empty PostgreSQL database at once agree [pg]${pg.available ? "" : ` (skipped: ${pg.reason})`}`,
  async () => {
    const t = await createTestDb("pg", { migrate: false });
    const second = await openDb({ databaseUrl: t.url, dataDir: t.dataDir });
    try {
      expect(await migrationsStatus(t.db)).toEqual({ applied: [], pending: await listMigrations() });
      const [a, b] = await Promise.all([migrate(t.db), migrate(second)]);
      expect([...a, ...b].sort()).toEqual(await listMigrations());
      expect((await migrationsStatus(second)).pending).toEqual([]);
      expect((await t.db.query("SELECT count(*) AS n FROM schema_migrations")).rows[0].n).toBe((await listMigrations()).length);
    } finally {
      await second.close();
      await t.cleanup();
    }
  },
);
