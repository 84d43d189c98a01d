// Technicians, their issued tokens and the server's signing keys.
import { expect, it } from "vitest";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedTechnician } from "../../test/support/store-fixtures.ts";

describeDatabases("technicians, tokens, signing keys", (kind) => {
  const ctx = useTestStore(kind);

  it("creates technicians and refuses a duplicate name or a bad role", async () => {
    const alice = await ctx.store.technicians.create({ name: "alice", role: "admin" });
    expect(alice).toMatchObject({ name: "alice", role: "admin" });
    expect(alice.createdAt).toBeInstanceOf(Date);
    await expect(ctx.store.technicians.create({ name: "alice", role: "tech" })).rejects.toMatchObject({ kind: "conflict" });
    await expect(ctx.store.technicians.create({ name: "bob", role: "root" as never })).rejects.toMatchObject({ code: "23514" });
    await ctx.store.technicians.create({ name: "aaron", role: "tech" });
    expect(await ctx.store.technicians.get(alice.id)).toEqual(alice);
    expect(await ctx.store.technicians.getByName("alice")).toEqual(alice);
    expect(await ctx.store.technicians.get("x")).toBeUndefined();
    expect((await ctx.store.technicians.list()).map((x) => x.name)).toEqual(["aaron", "alice"]);
  });

  it("records, revokes and sweeps tokens", async () => {
    const tech = await seedTechnician(ctx.store);
    const expiresAt = new Date(Date.now() + 3600_000);
    const tok = await ctx.store.tokens.record({ jti: "jti-1", technicianId: tech.id, expiresAt });
    expect(tok).toMatchObject({ jti: "jti-1", technicianId: tech.id, expiresAt, revokedAt: null });
    expect(await ctx.store.tokens.isRevoked("jti-1")).toBe(false);
    expect(await ctx.store.tokens.revoke("jti-1")).toBe(true);
    expect(await ctx.store.tokens.revoke("jti-1")).toBe(false);
    expect(await ctx.store.tokens.isRevoked("jti-1")).toBe(true);
    expect(await ctx.store.tokens.isRevoked("unknown")).toBe(false);
    expect(await ctx.store.tokens.revoke("unknown")).toBe(false);

    await ctx.store.tokens.record({ jti: "jti-2", technicianId: tech.id, expiresAt });
    await ctx.store.tokens.record({ jti: "jti-3", technicianId: tech.id, expiresAt });
    expect(await ctx.store.tokens.revokeAllForTechnician(tech.id)).toBe(2);

    await ctx.store.tokens.record({ jti: "old", technicianId: tech.id, expiresAt: new Date(Date.now() - 60_000) });
    expect(await ctx.store.tokens.sweepExpired()).toBe(1);
    expect(await ctx.store.tokens.get("old")).toBeUndefined();
    await expect(ctx.store.tokens.record({ jti: "jti-1", technicianId: tech.id, expiresAt })).rejects.toMatchObject({ code: "23505" });
  });

  it("keeps one signing key when servers race to create it", async () => {
    expect(await ctx.store.signingKeys.getCurrent()).toBeUndefined();
    const keys = Array.from({ length: 5 }, (_, i) => ({
      kid: `kid-${i}`,
      alg: "EdDSA",
      privateJwk: { kty: "OKP", crv: "Ed25519", d: `d${i}`, x: `x${i}` },
      publicJwk: { kty: "OKP", crv: "Ed25519", x: `x${i}` },
    }));
    const results = await Promise.all(keys.map((k) => ctx.store.signingKeys.insertIfAbsent(k)));
    expect(new Set(results.map((r) => r.kid)).size).toBe(1);
    const current = await ctx.store.signingKeys.getCurrent();
    expect(current).toEqual(results[0]);
    expect(current!.privateJwk).toMatchObject({ kty: "OKP", d: expect.any(String) });
    const pub = await ctx.store.signingKeys.listPublic();
    expect(pub).toHaveLength(1);
    expect(pub[0]).toEqual({ kid: current!.kid, alg: "EdDSA", publicJwk: current!.publicJwk, createdAt: current!.createdAt });
    expect(pub[0]).not.toHaveProperty("privateJwk");
  });
});
