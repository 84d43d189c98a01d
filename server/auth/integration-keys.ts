// Integration keys: 256 random bits with a recognisable prefix, shown once;
// only a SHA-256 is stored (the key is random, not a password). The prefix
// lets every other API say "integration keys are not accepted here" instead
// of a confusing token error.
import { createHash, randomBytes } from "node:crypto";
import { GuruError, type ErrorReason } from "../../lib/errors.ts";
import type { PartnerKey } from "../domain/partner-key.ts";
import type { Store } from "../store/index.ts";

const integrationKeyPrefix = "guru_ik_";

export function generateIntegrationKey(): string {
  return integrationKeyPrefix + randomBytes(32).toString("base64url");
}

export function hashIntegrationKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export function looksLikeIntegrationKey(credential: string): boolean {
  return credential.startsWith(integrationKeyPrefix);
}

/** Checks a presented key; every refusal is audited with the method it was for. */
export function createIntegrationKeyCheck(deps: { store: Store }) {
  const { store } = deps;
  async function refuse(method: string, message: string, reason: ErrorReason, keyId?: string): Promise<never> {
    await store.integrationKeys.audit({ keyId, method, outcome: "refused", reason: message, detail: { reason } });
    throw new GuruError("unauthenticated", message, { reason });
  }
  return {
    async verify(credential: string | undefined, method: string): Promise<PartnerKey> {
      if (credential === undefined) {
        return refuse(method, `${method} needs an integration key: send 'Authorization: Bearer <integration key>'`, "INTEGRATION_KEY_REQUIRED");
      }
      if (!looksLikeIntegrationKey(credential)) {
        return refuse(
          method,
          "technician tokens are not accepted by IntegrationService; use an integration key (AdminService.CreateIntegrationKey)",
          "TECHNICIAN_TOKEN_REFUSED",
        );
      }
      const key = await store.integrationKeys.findByHash(hashIntegrationKey(credential));
      if (key === undefined) return refuse(method, "unknown integration key", "INTEGRATION_KEY_UNKNOWN");
      if (key.revokedAt !== null) return refuse(method, `integration key ${key.name} has been revoked`, "INTEGRATION_KEY_REVOKED", key.id);
      await store.integrationKeys.markUsed(key.id);
      return { keyId: key.id, name: key.name, allowedOrigins: key.allowedOrigins };
    },
  };
}

export type IntegrationKeyCheck = ReturnType<typeof createIntegrationKeyCheck>;
