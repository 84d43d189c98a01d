// The server's token-signing key pair: Ed25519, generated on first start and
// kept in the database so every server process behind a load balancer signs
// and verifies with the same key.
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import type { Store } from "../store/index.ts";

export interface SigningKeys {
  kid: string;
  alg: "EdDSA";
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export async function loadOrCreateSigningKeys(store: Store): Promise<SigningKeys> {
  let current = await store.signingKeys.getCurrent();
  if (current === undefined) {
    const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    current = await store.signingKeys.insertIfAbsent({
      kid: randomUUID(),
      alg: "EdDSA",
      privateJwk: await exportJWK(privateKey),
      publicJwk: await exportJWK(publicKey),
    });
  }
  return {
    kid: current.kid,
    alg: "EdDSA",
    privateKey: (await importJWK(current.privateJwk as JWK, "EdDSA")) as CryptoKey,
    publicKey: (await importJWK(current.publicJwk as JWK, "EdDSA")) as CryptoKey,
  };
}
