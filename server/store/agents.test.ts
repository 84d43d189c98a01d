import { expect, it } from "vitest";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedAgent, uniqueName } from "../../test/support/store-fixtures.ts";

const inventory = {
  hostname: "host1",
  os: "linux",
  osRelease: "6.1",
  arch: "x64",
  agentVersion: "0.1.0",
  capabilities: ["exec", "files"],
  wireFeatures: ["upload_sha256_at_finish"],
};

describeDatabases("agents", (kind) => {
  const ctx = useTestStore(kind);

  it("enrols, finds by key hash, id and name", async () => {
    const a = await ctx.store.agents.enroll({ name: "Front-Desk", keyHash: "h-front" });
    expect(a).toMatchObject({ name: "Front-Desk", online: false, revokedAt: null, lastSeenAt: null, capabilities: [] });
    expect(a.enrolledAt).toBeInstanceOf(Date);
    expect(await ctx.store.agents.findByKeyHashes(["h-front"])).toEqual([{ ...a, keyHash: "h-front" }]);
    expect(await ctx.store.agents.get(a.id)).toEqual(a);
    expect(await ctx.store.agents.getByName("Front-Desk")).toEqual(a);
    expect(await ctx.store.agents.findByKeyHashes(["nope"])).toEqual([]);
    expect(await ctx.store.agents.get("not-a-uuid")).toBeUndefined();
    expect(await ctx.store.agents.get("6f1c2b1e-2d3a-4c5b-8a9f-0123456789ab")).toBeUndefined();
  });

  it("refuses a duplicate name or key as a conflict and changes nothing", async () => {
    const before = await ctx.store.agents.list();
    await expect(ctx.store.agents.enroll({ name: "Front-Desk", keyHash: "h-other" })).rejects.toMatchObject({ kind: "conflict" });
    await expect(ctx.store.agents.enroll({ name: "someone-else", keyHash: "h-front" })).rejects.toMatchObject({ kind: "conflict" });
    expect(await ctx.store.agents.list()).toEqual(before);
  });

  it("lists by name, filtering case-insensitively and literally", async () => {
    await ctx.store.agents.enroll({ name: "back-office", keyHash: "h-back" });
    await ctx.store.agents.enroll({ name: "100%_sure", keyHash: "h-pct" });
    expect((await ctx.store.agents.list()).map((a) => a.name)).toEqual(["100%_sure", "Front-Desk", "back-office"].sort());
    expect((await ctx.store.agents.list({ nameContains: "FRONT" })).map((a) => a.name)).toEqual(["Front-Desk"]);
    expect((await ctx.store.agents.list({ nameContains: "%" })).map((a) => a.name)).toEqual(["100%_sure"]);
    expect((await ctx.store.agents.list({ nameContains: "_" })).map((a) => a.name)).toEqual(["100%_sure"]);
  });

  it("lists one agent by id, and none for an unknown id or one that is not an id", async () => {
    const front = (await ctx.store.agents.getByName("Front-Desk"))!;
    expect((await ctx.store.agents.list({ agentId: front.id })).map((a) => a.name)).toEqual(["Front-Desk"]);
    expect(await ctx.store.agents.list({ agentId: front.id, nameContains: "front" })).toHaveLength(1);
    expect(await ctx.store.agents.list({ agentId: front.id, nameContains: "back" })).toEqual([]);
    expect(await ctx.store.agents.list({ agentId: "6f1c2b1e-2d3a-4c5b-8a9f-0123456789ab" })).toEqual([]);
    expect(await ctx.store.agents.list({ agentId: "Front-Desk' OR 1=1 --" })).toEqual([]);
  });

  it("finds many agents by key hash in one query", async () => {
    const a = await ctx.store.agents.enroll({ name: uniqueName("many"), keyHash: "h-many-1" });
    const b = await ctx.store.agents.enroll({ name: uniqueName("many"), keyHash: "h-many-2" });
    const found = await ctx.store.agents.findByKeyHashes(["h-many-2", "h-many-1", "h-none", "h-many-1"]);
    expect(found.map((f) => [f.id, f.keyHash]).sort()).toEqual(
      [
        [a.id, "h-many-1"],
        [b.id, "h-many-2"],
      ].sort(),
    );
    expect(await ctx.store.agents.findByKeyHashes([])).toEqual([]);
  });

  it("tracks online state and inventory", async () => {
    const a = await seedAgent(ctx.store);
    const online = await ctx.store.agents.markOnline(a.id, inventory);
    expect(online).toMatchObject({
      online: true,
      hostname: "host1",
      osRelease: "6.1",
      agentVersion: "0.1.0",
      capabilities: ["exec", "files"],
      wireFeatures: ["upload_sha256_at_finish"],
    });
    expect(online!.lastSeenAt).toBeInstanceOf(Date);
    expect(await ctx.store.agents.touchLastSeen(a.id)).toBe(true);
    expect(await ctx.store.agents.markOffline(a.id)).toBe(true);
    expect((await ctx.store.agents.get(a.id))!.online).toBe(false);
    expect((await ctx.store.agents.get(a.id))!.hostname).toBe("host1");
    expect(await ctx.store.agents.markOnline("6f1c2b1e-2d3a-4c5b-8a9f-0123456789ab", inventory)).toBeUndefined();
    expect(await ctx.store.agents.markOffline("bogus")).toBe(false);
  });

  it("writes many agents' link status in one call, each with its own inventory", async () => {
    const [a, b, c] = await Promise.all([seedAgent(ctx.store), seedAgent(ctx.store), seedAgent(ctx.store)]);
    await ctx.store.agents.markOnline(c.id, inventory);
    const other = { ...inventory, hostname: "host2", capabilities: [], wireFeatures: [] };
    await ctx.store.agents.applyLinkStatus(
      [
        { id: a.id, inventory },
        { id: b.id, inventory: other },
        { id: "not-a-uuid", inventory },
      ],
      [c.id, "bogus"],
    );
    expect(await ctx.store.agents.get(a.id)).toMatchObject({ online: true, hostname: "host1", capabilities: ["exec", "files"] });
    expect(await ctx.store.agents.get(a.id)).toMatchObject({ wireFeatures: ["upload_sha256_at_finish"] });
    expect(await ctx.store.agents.get(b.id)).toMatchObject({ online: true, hostname: "host2", capabilities: [], wireFeatures: [] });
    expect(await ctx.store.agents.get(c.id)).toMatchObject({ online: false, hostname: "host1" });
    expect((await ctx.store.agents.get(a.id))!.lastSeenAt).toBeInstanceOf(Date);
    await ctx.store.agents.applyLinkStatus([], []);
  });

  it("marks every agent offline at server start", async () => {
    const a = await seedAgent(ctx.store);
    const b = await seedAgent(ctx.store);
    await ctx.store.agents.markOnline(a.id, inventory);
    await ctx.store.agents.markOnline(b.id, inventory);
    expect(await ctx.store.agents.markAllOffline()).toBeGreaterThanOrEqual(2);
    expect((await ctx.store.agents.list()).filter((x) => x.online)).toEqual([]);
  });

  it("revokes a key once and can re-enrol with a new key", async () => {
    const a = await seedAgent(ctx.store, uniqueName("rev"));
    expect(await ctx.store.agents.revokeKey(a.id)).toBe(true);
    expect(await ctx.store.agents.revokeKey(a.id)).toBe(false);
    expect((await ctx.store.agents.get(a.id))!.revokedAt).toBeInstanceOf(Date);
    const rotated = await ctx.store.agents.rotateKey(a.id, "h-rotated");
    expect(rotated!.revokedAt).toBeNull();
    expect((await ctx.store.agents.findByKeyHashes(["h-rotated"]))[0]?.id).toBe(a.id);
    await expect(ctx.store.agents.rotateKey(a.id, "h-back")).rejects.toMatchObject({ kind: "conflict" });
  });
});
