import { beforeAll, expect, it } from "vitest";
import { isGuruError } from "../../lib/errors.ts";
import { describeDatabases, useTestStore } from "../../test/support/databases.ts";
import { seedTechnician } from "../../test/support/store-fixtures.ts";
import { createCheckedTokens } from "./checked-tokens.ts";
import { loadOrCreateSigningKeys, type SigningKeys } from "./signing-keys.ts";
import { createTokenService } from "./tokens.ts";

const refusal = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isGuruError(err, "unauthenticated")).toBe(true);
  return (err as Error).message;
};

describeDatabases("technician tokens", (kind) => {
  const ctx = useTestStore(kind);
  let keys: SigningKeys;
  beforeAll(async () => {
    keys = await loadOrCreateSigningKeys(ctx.store);
  });

  it("a revocation through the service applies at once, even to a token it just confirmed", async () => {
    const tokens = createTokenService({ store: ctx.store, keys, defaultTtlSeconds: 600, checkCacheMs: 60_000 });
    const tech = await seedTechnician(ctx.store);
    const issued = await tokens.issue(tech.id);
    expect((await tokens.verify(issued.token)).technicianId).toBe(tech.id);
    expect(await tokens.revoke(issued.tokenId)).toBe(true);
    expect(await refusal(tokens.verify(issued.token))).toBe("the token has been revoked");
    expect(await tokens.revoke("6f1c2b1e-2d3a-4c5b-8a9f-0123456789ab")).toBe(false);
  });

  it("a revocation made elsewhere (another server process) applies within the check cache time", async () => {
    const tokens = createTokenService({ store: ctx.store, keys, defaultTtlSeconds: 600, checkCacheMs: 150 });
    const tech = await seedTechnician(ctx.store);
    const issued = await tokens.issue(tech.id);
    await tokens.verify(issued.token);
    await ctx.store.tokens.revoke(issued.tokenId);
    // Still the confirmed principal for up to 150 ms, then the database says no.
    expect((await tokens.verify(issued.token)).tokenId).toBe(issued.tokenId);
    await new Promise((r) => setTimeout(r, 200));
    expect(await refusal(tokens.verify(issued.token))).toBe("the token has been revoked");
  });

  it("without a check cache every call asks the database", async () => {
    const tokens = createTokenService({ store: ctx.store, keys, defaultTtlSeconds: 600, checkCacheMs: 0 });
    const tech = await seedTechnician(ctx.store);
    const issued = await tokens.issue(tech.id);
    await tokens.verify(issued.token);
    await ctx.store.tokens.revoke(issued.tokenId);
    expect(await refusal(tokens.verify(issued.token))).toBe("the token has been revoked");
  });

  it("expired, forged and unknown tokens are refused and never remembered", async () => {
    const tokens = createTokenService({ store: ctx.store, keys, defaultTtlSeconds: 600, checkCacheMs: 60_000 });
    const tech = await seedTechnician(ctx.store);
    const expired = await tokens.issue(tech.id, -10);
    expect(await refusal(tokens.verify(expired.token))).toContain("expired");
    const good = await tokens.issue(tech.id);
    const [h, p, sig] = good.token.split(".");
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), role: "admin" })).toString("base64url")}.${sig}`;
    expect(await refusal(tokens.verify(forged))).toContain("not valid");
    await ctx.store.tokens.sweepExpired(-3600_000); // forgets every token, as if issued elsewhere
    expect(await refusal(tokens.verify(good.token))).toBe("the token is not known to this server");
  });
});

it("checked tokens: trusted for ttl, never past the token's expiry, bounded, forgotten by id", () => {
  let now = 1_000;
  const checked = createCheckedTokens({ ttlMs: 100, maxEntries: 2, now: () => now });
  const principal = (tokenId: string) => ({ technicianId: "t", name: "n", role: "tech" as const, tokenId });
  checked.remember("a", principal("A"), 1_050);
  checked.remember("b", principal("B"), 5_000);
  expect(checked.get("a")?.tokenId).toBe("A");
  now = 1_050; // the token itself expired
  expect(checked.get("a")).toBeUndefined();
  expect(checked.get("b")?.tokenId).toBe("B");
  now = 1_100; // confirmed 100 ms ago: ask again
  expect(checked.get("b")).toBeUndefined();
  checked.remember("c", principal("C"), 5_000);
  checked.remember("d", principal("D"), 5_000);
  checked.remember("e", principal("C"), 5_000);
  expect(checked.size).toBe(2); // "c" went first
  expect(checked.get("c")).toBeUndefined();
  checked.forgetTokenId("C");
  expect(checked.get("e")).toBeUndefined();
  expect(checked.get("d")?.tokenId).toBe("D");
  const off = createCheckedTokens({ ttlMs: 0 });
  off.remember("x", principal("X"), Date.now() + 1000);
  expect(off.get("x")).toBeUndefined();
});
