// One migrated PGlite data dir, built once and copied per test file: a cold
// PGlite start (initdb) costs seconds, a copy plus reopen well under one.
// Cached in the OS temp dir under a hash of the migrations and the PGlite
// version, so later runs skip the build until a migration changes. Built in a
// scratch dir and renamed into place, so concurrent runs never see half of it.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { PGlite } from "@electric-sql/pglite";
import { openDb } from "../../server/store/db.ts";
import { defaultMigrationsDir, listMigrations, migrate } from "../../server/store/migrate.ts";

const prefix = "guru-pglite-template-";
/** Inside the template dir, beside `db/`: the same database as a dumpDataDir() tarball. */
export const templateTarName = "db.tar";
const staleAfterMs = 24 * 60 * 60 * 1000;

async function templateKey(): Promise<string> {
  const hash = createHash("sha256");
  // The package does not export its package.json; find it beside the resolved entry (dist/).
  const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite");
  hash.update(await fs.readFile(path.join(path.dirname(entry), "..", "package.json")));
  hash.update("layout-2"); // bump when the template's layout changes
  for (const name of await listMigrations()) {
    hash.update(name);
    hash.update(await fs.readFile(path.join(defaultMigrationsDir, `${name}.sql`)));
  }
  return hash.digest("hex").slice(0, 16);
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** The template's data dir (its PGlite in `<dir>/db`, a tarball of it in `<dir>/db.tar`), building it if missing. */
export async function ensurePgliteTemplate(): Promise<{ dir: string; built: boolean; ms: number }> {
  const started = Date.now();
  const dir = path.join(os.tmpdir(), prefix + (await templateKey()));
  if (await exists(dir)) return { dir, built: false, ms: Date.now() - started };
  const scratch = `${dir}.build-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    const db = await openDb({ dataDir: scratch });
    await migrate(db);
    await db.close();
    // Also as a tarball, which tests load into an in-memory PGlite: no disk
    // copy of ~1000 files, which is slow when other processes write a lot.
    const raw = await PGlite.create(path.join(scratch, "db"));
    const tar = await raw.dumpDataDir("none");
    await raw.close();
    await fs.writeFile(path.join(scratch, templateTarName), Buffer.from(await tar.arrayBuffer()));
    await fs.rename(scratch, dir);
  } catch (err) {
    // Another run renamed its build into place first: use that one.
    if (!(await exists(dir))) throw err;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
  return { dir, built: true, ms: Date.now() - started };
}

/** Removes templates of older migration sets, once nobody can still be using them. */
export async function removeStaleTemplates(keep: string): Promise<void> {
  for (const name of await fs.readdir(os.tmpdir())) {
    if (!name.startsWith(prefix)) continue;
    const p = path.join(os.tmpdir(), name);
    if (p === keep) continue;
    const stat = await fs.stat(p).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > staleAfterMs) await fs.rm(p, { recursive: true, force: true });
  }
}
