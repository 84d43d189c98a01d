// The one small interface both databases sit behind: a `pg` Pool against
// DATABASE_URL, or embedded PGlite through its own client (never
// pglite-socket: with `pg` on top of it, any SQL error drops the connection).
//
// Value conventions, identical for both kinds:
// - int8/bigint/bigserial (and count(*)) come back as JS numbers. Our int8
//   columns are ids, byte counts and offsets, far below 2^53.
// - timestamptz comes back as Date; jsonb as parsed JSON; text[] as string[].
// - Pass jsonb parameters as JSON.stringify(...) text: both drivers send a
//   string unchanged, while a JS array would become a PG array in `pg`.
// - Errors from the database are rethrown as-is, so the SQLSTATE stays on
//   `err.code` (e.g. "23505") and the constraint on `err.constraint`.
import fs from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { GuruError } from "../../lib/errors.ts";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import type { Logger } from "../../lib/logging.ts";
import { makeTreePrivate } from "../../lib/private-dir.ts";
import { embeddedFileError } from "./pglite-file-errors.ts";
import { queryInOneMessage } from "./pglite-query.ts";

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Db {
  readonly kind: "pg" | "pglite";
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements, without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Runs fn in one transaction (BEGIN/COMMIT, ROLLBACK on throw) on one
   * connection. Use only `tx` inside fn: on PGlite the outer Db waits for the
   * transaction to end, so calling it from inside would deadlock. Nested calls
   * on `tx` use a SAVEPOINT.
   */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface OpenDbOptions {
  databaseUrl?: string;
  /** The server's data dir; PGlite lives in `<dataDir>/db`. */
  dataDir: string;
  logger?: Logger;
}

const INT8_OID = 20;
const INT8_ARRAY_OID = 1016;

export async function openDb(options: OpenDbOptions): Promise<Db> {
  if (options.databaseUrl) return openPg(options.databaseUrl, options.logger);
  return openPgliteDb({ dir: path.join(options.dataDir, "db"), logger: options.logger });
}

/** SQLSTATE of a database error, whichever driver threw it. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** True for a unique violation (23505), optionally of one named constraint or index. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (sqlState(err) !== "23505") return false;
  if (constraint === undefined) return true;
  const e = err as { constraint?: string; message?: string };
  return e.constraint === constraint || (e.message ?? "").includes(`"${constraint}"`);
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids are uuids; a look-up by anything else matches nothing rather than failing in SQL (22P02). */
export function isUuid(value: unknown): value is string {
  return typeof value === "string" && uuidPattern.test(value);
}

export function isForeignKeyViolation(err: unknown): boolean {
  return sqlState(err) === "23503";
}

function parseInt8(value: string): number {
  return Number(value);
}

const connectionErrorCodes = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * Errors that say the database cannot be reached (refused, dropped, shutting
 * down, no connection in time) become GuruError "unavailable": the caller
 * gets Unavailable and may retry, rather than an internal error. SQL errors
 * (constraint violations and the like) pass through untouched.
 */
function databaseUnavailableError(err: unknown): GuruError | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  const byCode =
    typeof code === "string" && (connectionErrorCodes.has(code) || code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03");
  const byMessage =
    /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Client was closed and is not queryable)/.test(
      err.message,
    );
  if (!byCode && !byMessage) return undefined;
  return new GuruError("unavailable", "the database is unavailable; retry shortly", { cause: err });
}

function rethrowUnavailable(err: unknown): never {
  throw databaseUnavailableError(err) ?? err;
}

function openPg(databaseUrl: string, logger?: Logger): Db {
  const types: pg.CustomTypesConfig = {
    getTypeParser(oid: number, format?: "text" | "binary") {
      if (oid === INT8_OID) return parseInt8;
      if (oid === INT8_ARRAY_OID) return parsePgIntArray;
      return pg.types.getTypeParser(oid, format);
    },
  };
  // No connectionTimeoutMillis: pg-pool applies it to the wait for a free
  // client too, so a busy server would fail calls that only queue. A stopped
  // database refuses connections at once, which is answered as Unavailable.
  const pool = new pg.Pool({ connectionString: databaseUrl, types });
  // An idle client losing its server (restart, network) must not crash the process.
  pool.on("error", (err) => logger?.warn({ err }, "idle database connection failed"));
  let closed = false;

  const clientDb = (client: pg.PoolClient, depth: number): Db => ({
    kind: "pg",
    async query<R>(sql: string, params?: unknown[]) {
      const r = await client.query(sql, params).catch(rethrowUnavailable);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
    async exec(sql: string) {
      await client.query(sql).catch(rethrowUnavailable);
    },
    transaction: (fn) => savepoint(clientDb(client, depth + 1), depth, fn),
    close: async () => {
      throw new Error("close() is not available inside a transaction");
    },
  });

  return {
    kind: "pg",
    async query<R>(sql: string, params?: unknown[]) {
      const r = await pool.query(sql, params).catch(rethrowUnavailable);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
    async exec(sql: string) {
      await pool.query(sql).catch(rethrowUnavailable);
    },
    async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
      const client = await pool.connect().catch(rethrowUnavailable);
      let broken: Error | undefined;
      try {
        await client.query("BEGIN").catch(rethrowUnavailable);
        try {
          const result = await fn(clientDb(client, 1));
          await client.query("COMMIT").catch(rethrowUnavailable);
          return result;
        } catch (err) {
          await client.query("ROLLBACK").catch((rollbackErr: Error) => {
            broken = rollbackErr;
          });
          throw err;
        }
      } finally {
        // A connection whose ROLLBACK failed is in an unknown state: destroy it.
        client.release(broken);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/**
 * Embedded PGlite: on disk in `dir`, or in memory when `dir` is absent
 * (optionally loaded from a `dumpDataDir()` tarball: how tests get a fresh
 * migrated database without initdb or disk copies).
 */
export async function openPgliteDb(options: { dir?: string; loadDataDir?: Blob; logger?: Logger }): Promise<Db> {
  const { dir, logger } = options;
  if (dir) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const started = Date.now();
  const pglite = await PGlite.create(dir, {
    loadDataDir: options.loadDataDir,
    parsers: { [INT8_OID]: parseInt8, [INT8_ARRAY_OID]: parsePgIntArray },
  }).catch((err: unknown) => {
    throw embeddedFileError(err, dir ?? "memory") ?? err;
  });
  // The database holds the token signing keys: PGlite writes its files 0666 whatever the umask, so they are made owner-only here.
  if (dir) await makeTreePrivate(dir);
  logger?.info({ dir: dir ?? "memory", ms: Date.now() - started }, "embedded database opened");
  let closed = false;

  const txDb = (tx: Transaction, depth: number): Db => ({
    kind: "pglite",
    async query<R>(sql: string, params?: unknown[]) {
      return toResult<R>(await tx.query<R>(sql, params));
    },
    async exec(sql: string) {
      await tx.exec(sql);
    },
    transaction: (fn) => savepoint(txDb(tx, depth + 1), depth, fn),
    close: async () => {
      throw new Error("close() is not available inside a transaction");
    },
  });

  return {
    kind: "pglite",
    // PGlite has one backend; its query() and transaction() share one mutex,
    // so a query issued while a transaction runs waits for it to end.
    async query<R>(sql: string, params?: unknown[]) {
      return toResult<R>(await (queryInOneMessage<R>(pglite, sql, params) ?? pglite.query<R>(sql, params)));
    },
    async exec(sql: string) {
      await pglite.exec(sql);
    },
    // PGlite's transaction() issues BEGIN, COMMIT, and ROLLBACK when fn throws.
    transaction: (fn) => pglite.transaction((tx) => fn(txDb(tx, 1))),
    async close() {
      if (closed) return;
      closed = true;
      await pglite.close();
    },
  };
}

function toResult<R>(r: { rows: R[]; rowCount?: number; affectedRows?: number }): QueryResult<R> {
  return { rows: r.rows, rowCount: r.rowCount ?? r.affectedRows ?? r.rows.length };
}

function parsePgIntArray(value: string): number[] {
  const inner = value.slice(1, -1);
  return inner === "" ? [] : inner.split(",").map(Number);
}

/** A nested transaction: a SAVEPOINT, released on success, rolled back to on throw. */
async function savepoint<T>(tx: Db, depth: number, fn: (tx: Db) => Promise<T>): Promise<T> {
  const name = `guru_sp_${depth}`;
  await tx.query(`SAVEPOINT ${name}`);
  try {
    const result = await fn(tx);
    await tx.query(`RELEASE SAVEPOINT ${name}`);
    return result;
  } catch (err) {
    await tx.query(`ROLLBACK TO SAVEPOINT ${name}`);
    throw err;
  }
}
