import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDb, describeDatabases, type TestDb } from "../../test/support/databases.ts";
import { seedAgent } from "../../test/support/store-fixtures.ts";
import { createStore, type Store } from "./index.ts";

describeDatabases("uploads", (kind) => {
  let t: TestDb;
  let store: Store;
  let agentId: string;
  beforeAll(async () => {
    t = await createTestDb(kind);
    store = createStore(t.db);
    agentId = (await seedAgent(store)).id;
  });
  afterAll(() => t?.cleanup());

  it("creates, advances and finishes an upload", async () => {
    const u = await store.uploads.create({ agentId, path: "/srv/big.iso", size: 6_000_000_000, sha256: "abc" });
    expect(u).toMatchObject({ agentId, path: "/srv/big.iso", size: 6_000_000_000, committedOffset: 0, status: "active", overwrite: false, error: null });
    expect(await store.uploads.setCommitted(u.id, 4_294_967_296)).toBe(true);
    expect((await store.uploads.get(u.id))!.committedOffset).toBe(4_294_967_296);
    const done = await store.uploads.setStatus(u.id, "finished");
    expect(done).toMatchObject({ status: "finished", error: null });
    expect(done!.updatedAt.getTime()).toBeGreaterThanOrEqual(u.updatedAt.getTime());
    expect(await store.uploads.setCommitted(u.id, 5)).toBe(false);
    expect(await store.uploads.get("nope")).toBeUndefined();
  });

  it("records failures and lists stale active uploads", async () => {
    const a = await store.uploads.create({ agentId, path: "/a", size: 1, overwrite: true });
    const b = await store.uploads.create({ agentId, path: "/b", size: 1 });
    expect(await store.uploads.setStatus(b.id, "failed", "disk full")).toMatchObject({ status: "failed", error: "disk full" });
    await t.db.query("UPDATE uploads SET updated_at = now() - interval '1 hour'");
    expect((await store.uploads.listStale(60_000)).map((x) => x.id)).toEqual([a.id]);
    await expect(store.uploads.setStatus(a.id, "paused" as never)).rejects.toMatchObject({ code: "23514" });
  });
});
