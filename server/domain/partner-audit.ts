// Every call of the integration API lands in integration_audit: the key, the
// method, what it named, and whether it was done, refused or failed.
import { toGuruError } from "../../lib/errors.ts";
import type { Store } from "../store/index.ts";
import type { PartnerKey } from "./partner-key.ts";

export interface AuditTarget {
  sessionId?: string;
  agentId?: string;
  detail?: Record<string, unknown>;
}

export function createPartnerAudit(store: Store) {
  return {
    /** Runs fn and audits its outcome; `targetOf` names what the result touched. */
    async run<T>(key: PartnerKey, method: string, asked: AuditTarget, fn: () => Promise<T>, targetOf?: (result: T) => AuditTarget): Promise<T> {
      try {
        const result = await fn();
        const target = { ...asked, ...targetOf?.(result) };
        await store.integrationKeys.audit({
          keyId: key.keyId,
          method,
          outcome: "ok",
          sessionId: target.sessionId,
          agentId: target.agentId,
          detail: target.detail,
        });
        return result;
      } catch (err) {
        const failure = toGuruError(err);
        await store.integrationKeys.audit({
          keyId: key.keyId,
          method,
          outcome: failure.kind === "internal" ? "failed" : "refused",
          sessionId: asked.sessionId,
          agentId: asked.agentId,
          reason: failure.message,
          detail: { ...asked.detail, kind: failure.kind, reason: failure.reason },
        });
        throw err;
      }
    },
  };
}

export type PartnerAudit = ReturnType<typeof createPartnerAudit>;
