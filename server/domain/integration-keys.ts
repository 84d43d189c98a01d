// Administration of integration keys (admin role): create (the key shown
// once), list, revoke. Revoking a key ends its live sessions at once.
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import { generateIntegrationKey, hashIntegrationKey } from "../auth/integration-keys.ts";
import { normalizeOrigin } from "../auth/viewer-tokens.ts";
import type { Store } from "../store/index.ts";
import { requireUuid } from "./ids.ts";
import type { PartnerSessions } from "./partner-sessions.ts";
import { requireAdmin, type Principal } from "./principal.ts";

// No '@': technician names of a key are "<technician>@<key name>".
const keyNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

export function createIntegrationKeyAdmin(deps: { store: Store; partnerSessions: PartnerSessions; logger: Logger }) {
  const { store, logger } = deps;
  const audit = (principal: Principal, method: string, outcome: "ok" | "refused", keyId?: string, reason?: string) =>
    store.integrationKeys.audit({ keyId, method, outcome, reason, detail: { by: principal.technicianId } });

  return {
    async create(principal: Principal, input: { name: string; allowedOrigins: string[] }) {
      requireAdmin(principal);
      if (!keyNamePattern.test(input.name)) {
        throw new GuruError("invalid", `integration key name "${input.name}" must be 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit`);
      }
      const origins: string[] = [];
      for (const origin of input.allowedOrigins) {
        const normalized = normalizeOrigin(origin);
        if (normalized === undefined) throw new GuruError("invalid", `allowed origin "${origin}" is not a web origin such as https://rmm.example.com`);
        if (!origins.includes(normalized)) origins.push(normalized);
      }
      const key = generateIntegrationKey();
      const record = await store.integrationKeys.create({
        name: input.name,
        keyHash: hashIntegrationKey(key),
        allowedOrigins: origins,
        createdBy: principal.technicianId,
      });
      await audit(principal, "CreateIntegrationKey", "ok", record.id);
      logger.info({ keyId: record.id, name: record.name, by: principal.technicianId }, "integration key created");
      return { keyId: record.id, key };
    },

    async list(principal: Principal) {
      requireAdmin(principal);
      return store.integrationKeys.list();
    },

    async revoke(principal: Principal, keyId: string) {
      requireAdmin(principal);
      requireUuid(keyId, "integration key id");
      if (!(await store.integrationKeys.revoke(keyId))) {
        const existing = await store.integrationKeys.get(keyId);
        if (existing === undefined) throw new GuruError("not_found", `no integration key ${keyId}`);
        return; // already revoked
      }
      await deps.partnerSessions.endAllForKey(keyId, "the partner's integration key was revoked");
      await audit(principal, "RevokeIntegrationKey", "ok", keyId);
      logger.info({ keyId, by: principal.technicianId }, "integration key revoked");
    },
  };
}

export type IntegrationKeyAdmin = ReturnType<typeof createIntegrationKeyAdmin>;
