import { beforeAll, expect, it } from "vitest";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedAgent } from "../../test/support/store-fixtures.ts";

describeDatabases("uploads", (kind) => {
  const ctx = useTestStore(kind);
  let agentId: string;
  beforeAll(async () => {
    agentId = (await seedAgent(ctx.store)).id;
  });

  it("creates, advances and finishes an upload", async () => {
    const u = await ctx.store.uploads.create({ agentId, path: "/srv/big.iso", size: 6_000_000_000, sha256: "abc" });
    expect(u).toMatchObject({ agentId, path: "/srv/big.iso", size: 6_000_000_000, committedOffset: 0, status: "active", overwrite: false, error: null });
    expect(await ctx.store.uploads.setCommitted(u.id, 4_294_967_296)).toBe(true);
    expect((await ctx.store.uploads.get(u.id))!.committedOffset).toBe(4_294_967_296);
    const done = await ctx.store.uploads.setStatus(u.id, "finished");
    expect(done).toMatchObject({ status: "finished", error: null });
    expect(done!.updatedAt.getTime()).toBeGreaterThanOrEqual(u.updatedAt.getTime());
    expect(await ctx.store.uploads.setCommitted(u.id, 5)).toBe(false);
    expect(await ctx.store.uploads.get("nope")).toBeUndefined();
  });

  it("marks a verified upload finished in one statement, keeping a declared SHA-256 and recording one given at finish", async () => {
    const declared = await ctx.store.uploads.create({ agentId, path: "/d", size: 10, sha256: "a".repeat(64) });
    const late = await ctx.store.uploads.create({ agentId, path: "/l", size: 10 });
    await ctx.store.uploads.markFinished(declared.id, 10, "b".repeat(64));
    await ctx.store.uploads.markFinished(late.id, 10, "c".repeat(64));
    expect(await ctx.store.uploads.get(declared.id)).toMatchObject({ status: "finished", committedOffset: 10, sha256: "a".repeat(64), error: null });
    expect(await ctx.store.uploads.get(late.id)).toMatchObject({ status: "finished", committedOffset: 10, sha256: "c".repeat(64), error: null });
  });

  it("records failures and lists stale active uploads", async () => {
    const a = await ctx.store.uploads.create({ agentId, path: "/a", size: 1, overwrite: true });
    const b = await ctx.store.uploads.create({ agentId, path: "/b", size: 1 });
    expect(await ctx.store.uploads.setStatus(b.id, "failed", "disk full")).toMatchObject({ status: "failed", error: "disk full" });
    await ctx.testDb.db.query("UPDATE uploads SET updated_at = now() - interval '1 hour'");
    expect((await ctx.store.uploads.listStale(60_000)).map((x) => x.id)).toEqual([a.id]);
    await expect(ctx.store.uploads.setStatus(a.id, "paused" as never)).rejects.toMatchObject({ code: "23514" });
  });
});
