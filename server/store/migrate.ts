// Applies migrations/NNNN_name.sql in order, each once, recorded in
// schema_migrations. Every step runs under a transaction-scoped advisory lock,
// so servers starting at once apply each file exactly once between them; the
// files are idempotent anyway, so a half-recorded run can be repeated.
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Db } from "./db.ts";
import type { Logger } from "../../lib/logging.ts";

export const defaultMigrationsDir = fileURLToPath(new URL("../../migrations/", import.meta.url));

// Arbitrary but fixed: "guru" in ASCII, the lock id every GuruTunnel server agrees on.
const MIGRATION_LOCK_ID = 0x67757275;
const fileNamePattern = /^(\d{4}_[a-z0-9_]+)\.sql$/;

export interface MigrationsStatus {
  applied: string[];
  pending: string[];
}

/** Migration names (file names without `.sql`) in the directory, in order. */
export async function listMigrations(dir: string = defaultMigrationsDir): Promise<string[]> {
  const names: string[] = [];
  for (const file of await fs.readdir(dir)) {
    const m = fileNamePattern.exec(file);
    if (m) names.push(m[1]);
  }
  return names.sort();
}

/** Applies pending migrations; returns the names applied by this call. */
export async function migrate(db: Db, dir: string = defaultMigrationsDir, logger?: Logger): Promise<string[]> {
  const names = await listMigrations(dir);
  await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_ID]);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         name text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
  });
  const appliedNow: string[] = [];
  for (const name of names) {
    const sql = await fs.readFile(path.join(dir, `${name}.sql`), "utf8");
    const applied = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_ID]);
      // Checked under the lock: another server may have applied it while we waited.
      const done = await tx.query("SELECT 1 FROM schema_migrations WHERE name = $1", [name]);
      if (done.rowCount > 0) return false;
      await tx.exec(sql);
      await tx.query("INSERT INTO schema_migrations (name) VALUES ($1)", [name]);
      return true;
    });
    if (applied) {
      appliedNow.push(name);
      logger?.info({ migration: name }, "migration applied");
    }
  }
  return appliedNow;
}

/** What /readyz reports: applied names (from the database) and files not yet applied. */
export async function migrationsStatus(db: Db, dir: string = defaultMigrationsDir): Promise<MigrationsStatus> {
  const names = await listMigrations(dir);
  const exists = await db.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!exists.rows[0]?.t) return { applied: [], pending: names };
  const rows = await db.query<{ name: string }>("SELECT name FROM schema_migrations ORDER BY name");
  const applied = rows.rows.map((r) => r.name);
  const appliedSet = new Set(applied);
  return { applied, pending: names.filter((n) => !appliedSet.has(n)) };
}
