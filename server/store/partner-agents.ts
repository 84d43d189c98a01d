// What a partner owns besides its key: the agents it provisioned (found by
// the partner's own device id too), the technicians it named, and what each
// agent's local policy said about consent in its last hello.
import { GuruError } from "../../lib/errors.ts";
import { isUniqueViolation, isUuid, type Db } from "./db.ts";

export type ConsentMode = "ask" | "auto-approve" | "deny";

export interface PartnerAgentRecord {
  id: string;
  name: string;
  externalId: string | null;
  integrationKeyId: string | null;
  revokedAt: Date | null;
  lastSeenAt: Date | null;
  /** Null: the agent never said (an agent that cannot ask for consent). */
  consentMode: ConsentMode | null;
  requiresConsent: boolean;
}

export interface PartnerAgentsRepository {
  findByExternalId(keyId: string, externalId: string): Promise<PartnerAgentRecord | undefined>;
  /** The agent only if this key provisioned it. */
  getOwned(keyId: string, agentId: string): Promise<PartnerAgentRecord | undefined>;
  get(agentId: string): Promise<PartnerAgentRecord | undefined>;
  /** Duplicate name or external id → GuruError "conflict". */
  provision(input: { keyId: string; externalId: string; name: string; keyHash: string }): Promise<PartnerAgentRecord>;
  setConsentPolicy(agentId: string, policy: { mode: ConsentMode | null; requiresConsent: boolean }): Promise<void>;
  /** The technician of that name owned by the key, created (role tech) on first use; another's → "denied". */
  ownedTechnician(keyId: string, name: string): Promise<{ id: string; name: string }>;
}

const columns = `id, name, external_id AS "externalId", integration_key_id AS "integrationKeyId", revoked_at AS "revokedAt",
  last_seen_at AS "lastSeenAt", consent_mode AS "consentMode", requires_consent AS "requiresConsent"`;

export function createPartnerAgentsRepository(db: Db): PartnerAgentsRepository {
  const one = async (sql: string, params: unknown[]) => (await db.query<PartnerAgentRecord>(sql, params)).rows[0];
  return {
    findByExternalId: (keyId, externalId) => one(`SELECT ${columns} FROM agents WHERE integration_key_id = $1 AND external_id = $2`, [keyId, externalId]),
    getOwned: async (keyId, agentId) =>
      isUuid(agentId) && isUuid(keyId) ? one(`SELECT ${columns} FROM agents WHERE id = $1 AND integration_key_id = $2`, [agentId, keyId]) : undefined,
    get: async (agentId) => (isUuid(agentId) ? one(`SELECT ${columns} FROM agents WHERE id = $1`, [agentId]) : undefined),
    async provision({ keyId, externalId, name, keyHash }) {
      try {
        return await one(`INSERT INTO agents (name, key_hash, integration_key_id, external_id) VALUES ($1, $2, $3, $4) RETURNING ${columns}`, [
          name,
          keyHash,
          keyId,
          externalId,
        ]);
      } catch (err) {
        if (isUniqueViolation(err, "agents_name_key")) {
          throw new GuruError("conflict", `an agent named "${name}" already exists; pass another name`, {
            cause: err,
            reason: "AGENT_NAME_TAKEN",
            details: { name },
          });
        }
        if (isUniqueViolation(err, "agents_external_id_per_key")) {
          throw new GuruError("conflict", `device ${externalId} is being provisioned by another call; retry`, { cause: err, details: { externalId } });
        }
        throw err;
      }
    },
    async setConsentPolicy(agentId, { mode, requiresConsent }) {
      await db.query("UPDATE agents SET consent_mode = $2, requires_consent = $3 WHERE id = $1", [agentId, mode, requiresConsent]);
    },
    async ownedTechnician(keyId, name) {
      // ON CONFLICT keeps racing first uses from failing each other.
      await db.query("INSERT INTO technicians (name, role, integration_key_id) VALUES ($1, 'tech', $2) ON CONFLICT (name) DO NOTHING", [name, keyId]);
      const r = await db.query<{ id: string; name: string; keyId: string | null }>(
        `SELECT id, name, integration_key_id AS "keyId" FROM technicians WHERE name = $1`,
        [name],
      );
      const tech = r.rows[0];
      if (tech === undefined || tech.keyId !== keyId) {
        throw new GuruError("denied", `technician ${name} is not one of this integration key's technicians`, { reason: "TECHNICIAN_NOT_OWNED" });
      }
      return { id: tech.id, name: tech.name };
    },
  };
}
