import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDataDir, createTestDb, describeDatabases, type TestDb } from "../../test/support/databases.ts";
import { isUniqueViolation, isUuid, openDb, sqlState } from "./db.ts";
import { migrationsStatus } from "./migrate.ts";

describeDatabases("Db", (kind) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb(kind);
    await t.db.exec(`
      CREATE TABLE probe (id bigserial PRIMARY KEY, name text UNIQUE, at timestamptz DEFAULT now(), tags text[], doc jsonb);
      CREATE TABLE probe2 (n int);`);
  });
  afterAll(() => t?.cleanup());

  it("returns int8 as numbers, timestamptz as Date, text[] and jsonb parsed", async () => {
    const { rows, rowCount } = await t.db.query("INSERT INTO probe (name, tags, doc) VALUES ($1, $2, $3) RETURNING *", [
      "a",
      ["x", "y"],
      JSON.stringify({ k: [1, 2] }),
    ]);
    expect(rowCount).toBe(1);
    expect(t.db.kind).toBe(kind);
    expect(typeof rows[0].id).toBe("number");
    expect((await t.db.query("SELECT count(*) AS n FROM probe")).rows[0].n).toBe(1);
    expect(rows[0].at).toBeInstanceOf(Date);
    expect(rows[0].tags).toEqual(["x", "y"]);
    expect(rows[0].doc).toEqual({ k: [1, 2] });
    const big = await t.db.query("SELECT 9007199254740991::int8 AS v, ARRAY[1, 2]::int8[] AS a");
    expect(big.rows[0]).toEqual({ v: 9007199254740991, a: [1, 2] });
  });

  it("reads plain parameters as PostgreSQL reads their text, whatever the column's type", async () => {
    await t.db.exec("CREATE TABLE plain (b bool, i int, f float8, n int8, t text, j jsonb, at timestamptz)");
    const { rows } = await t.db.query("INSERT INTO plain VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *", [
      true,
      42,
      1.5,
      9007199254740991n,
      'it\'s \\ "quoted"\n',
      JSON.stringify({ a: [1, "x"] }),
      "2024-01-02T03:04:05.678Z",
    ]);
    expect(rows[0]).toEqual({
      b: true,
      i: 42,
      f: 1.5,
      n: 9007199254740991,
      t: 'it\'s \\ "quoted"\n',
      j: { a: [1, "x"] },
      at: new Date("2024-01-02T03:04:05.678Z"),
    });
    const text = await t.db.query("SELECT $1::text AS yes, $2::text AS one, $3::bool AS from_string, $4::int AS nothing", [false, 1, "yes", null]);
    expect(text.rows[0]).toEqual({ yes: "false", one: "1", from_string: true, nothing: null });
    const typed = await t.db.query("SELECT $1::timestamptz AS at, $2::text[] AS list", [new Date("2024-01-02T03:04:05.678Z"), ["a", "b"]]);
    expect(typed.rows[0]).toEqual({ at: new Date("2024-01-02T03:04:05.678Z"), list: ["a", "b"] });
    expect((await t.db.query("UPDATE plain SET i = i + 1 WHERE b = $1", [true])).rowCount).toBe(1);
  });

  it("keeps the SQLSTATE and constraint on errors, and keeps working after one", async () => {
    await t.db.query("INSERT INTO probe (name) VALUES ('dup')");
    const err = await t.db.query("INSERT INTO probe (name) VALUES ('dup')").catch((e: unknown) => e);
    expect(sqlState(err)).toBe("23505");
    expect(isUniqueViolation(err, "probe_name_key")).toBe(true);
    expect(isUniqueViolation(err, "other")).toBe(false);
    expect(sqlState(await t.db.query("SELEC 1").catch((e: unknown) => e))).toBe("42601");
    expect((await t.db.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  });

  it("rolls a transaction back on throw, including after a SQL error, and the Db still works", async () => {
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query("INSERT INTO probe2 VALUES (1)");
        await tx.query("INSERT INTO probe (name) VALUES ('dup')"); // 23505 aborts the transaction
      }),
    ).rejects.toMatchObject({ code: "23505" });
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query("INSERT INTO probe2 VALUES (2)");
        throw new Error("app failure");
      }),
    ).rejects.toThrow("app failure");
    expect((await t.db.query("SELECT count(*) AS n FROM probe2")).rows[0].n).toBe(0);
    const committed = await t.db.transaction(async (tx) => {
      await tx.query("INSERT INTO probe2 VALUES (3)");
      return "ok";
    });
    expect(committed).toBe("ok");
    expect((await t.db.query("SELECT n FROM probe2")).rows).toEqual([{ n: 3 }]);
  });

  it("nests transactions as savepoints", async () => {
    await t.db.transaction(async (tx) => {
      await tx.query("INSERT INTO probe2 VALUES (10)");
      await tx
        .transaction(async (inner) => {
          await inner.query("INSERT INTO probe2 VALUES (11)");
          throw new Error("inner");
        })
        .catch(() => {});
      await tx.transaction((inner) => inner.query("INSERT INTO probe2 VALUES (12)"));
    });
    const { rows } = await t.db.query("SELECT n FROM probe2 WHERE n >= 10 ORDER BY n");
    expect(rows.map((r) => r.n)).toEqual([10, 12]);
  });

  it("does not interleave a concurrent query with a transaction", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tx = t.db.transaction(async (tx) => {
      await tx.query("INSERT INTO probe2 VALUES (100)");
      await gate;
      await tx.query("DELETE FROM probe2 WHERE n = 100");
    });
    // Outside the transaction: never sees its uncommitted row (pg: isolation; PGlite: waits for it).
    const outside = t.db.query("SELECT count(*) AS n FROM probe2 WHERE n = 100");
    setTimeout(release, 50);
    await tx;
    expect((await outside).rows[0].n).toBe(0);
  });
});

it("isUuid accepts uuids only", () => {
  expect(isUuid("6f1c2b1e-2d3a-4c5b-8a9f-0123456789ab")).toBe(true);
  expect(isUuid("not-a-uuid")).toBe(false);
  expect(isUuid(undefined)).toBe(false);
});

it("opens PGlite on disk under <dataDir>/db, and the data survives a reopen", async () => {
  const { dataDir, cleanup } = await createTestDataDir();
  try {
    const db = await openDb({ dataDir });
    expect(db.kind).toBe("pglite");
    expect((await migrationsStatus(db)).pending).toEqual([]);
    await db.query("INSERT INTO technicians (name, role) VALUES ('disk', 'tech')");
    await db.close();
    await db.close(); // idempotent
    const again = await openDb({ dataDir });
    expect((await again.query("SELECT name FROM technicians")).rows).toEqual([{ name: "disk" }]);
    await again.close();
  } finally {
    await cleanup();
  }
});
