// Partner sessions: tunnel sessions created through guru.integration.v1, with
// their mode, partner key, technician, capabilities and consent receipt. A
// pending session already holds its agent (the one-live-session index covers
// pending), so a technician cannot slip in before the agent connects.
import { GuruError } from "../../lib/errors.ts";
import { isUniqueViolation, isUuid, type Db } from "./db.ts";
import type { SessionStatus } from "./sessions.ts";

export type SessionMode = "unattended" | "attended";
export type ConsentState = "not_required" | "waiting" | "asked" | "approved" | "denied" | "timed_out";

export interface ConsentReceipt {
  technician: string;
  partner: string;
  capabilities: string[];
  approved: boolean;
  responder: string;
  reason: string;
  askedAt: string;
  answeredAt: string;
}

export interface PartnerSessionRecord {
  id: string;
  agentId: string;
  externalId: string | null;
  technicianId: string;
  technicianName: string;
  keyId: string;
  mode: SessionMode;
  status: SessionStatus;
  capabilities: string[];
  consentState: ConsentState;
  consentReceipt: ConsentReceipt | null;
  openedAt: Date;
  activatedAt: Date | null;
  closedAt: Date | null;
  closeReason: string | null;
}

export interface PartnerSessionsRepository {
  /** A pending session; another live session on the agent → "conflict" naming it. */
  create(input: {
    agentId: string;
    technicianId: string;
    keyId: string;
    mode: SessionMode;
    capabilities: string[];
    consentState: ConsentState;
  }): Promise<PartnerSessionRecord>;
  get(id: string): Promise<PartnerSessionRecord | undefined>;
  /** Newest first. */
  list(filter: { keyId: string; agentId?: string; status?: SessionStatus; ids?: string[] }): Promise<PartnerSessionRecord[]>;
  pendingForAgent(agentId: string): Promise<PartnerSessionRecord | undefined>;
  /** Moves the consent state of a pending session; undefined when it is no longer pending. */
  setConsent(id: string, state: ConsentState, receipt?: ConsentReceipt): Promise<PartnerSessionRecord | undefined>;
  /** pending → active; undefined when it was not pending (ended meanwhile). */
  activate(id: string): Promise<PartnerSessionRecord | undefined>;
  /** Ends pending sessions (an offline agent's revoked key, a revoked partner key); returns their ids. */
  closePending(filter: { agentId?: string; keyId?: string }, reason: string): Promise<string[]>;
  /** Ends one pending session; false when it was not pending. */
  closeOnePending(id: string, reason: string): Promise<boolean>;
}

const columns = `s.id, s.agent_id AS "agentId", a.external_id AS "externalId", s.technician_id AS "technicianId",
  t.name AS "technicianName", s.integration_key_id AS "keyId", s.mode, s.status, s.capabilities,
  s.consent_state AS "consentState", s.consent_receipt AS "consentReceipt", s.opened_at AS "openedAt",
  s.activated_at AS "activatedAt", s.closed_at AS "closedAt", s.close_reason AS "closeReason"`;
const from = "tunnel_sessions s JOIN agents a ON a.id = s.agent_id JOIN technicians t ON t.id = s.technician_id";

export function createPartnerSessionsRepository(db: Db): PartnerSessionsRepository {
  const byId = async (id: string) =>
    (await db.query<PartnerSessionRecord>(`SELECT ${columns} FROM ${from} WHERE s.id = $1 AND s.integration_key_id IS NOT NULL`, [id])).rows[0];
  const updated = async (sql: string, params: unknown[]) => {
    const r = await db.query<{ id: string }>(sql, params);
    return r.rows[0] === undefined ? undefined : byId(r.rows[0].id);
  };
  return {
    async create(input) {
      let id: string;
      try {
        const r = await db.query<{ id: string }>(
          `INSERT INTO tunnel_sessions (agent_id, technician_id, integration_key_id, mode, capabilities, consent_state, status)
           VALUES ($1, $2, $3, $4, $5, $6, 'pending') RETURNING id`,
          [input.agentId, input.technicianId, input.keyId, input.mode, input.capabilities, input.consentState],
        );
        id = r.rows[0].id;
      } catch (err) {
        if (!isUniqueViolation(err, "tunnel_sessions_one_active_per_agent")) throw err;
        const holder = (
          await db.query<{ id: string; status: string }>("SELECT id, status FROM tunnel_sessions WHERE agent_id = $1 AND status IN ('pending', 'active')", [
            input.agentId,
          ])
        ).rows[0];
        throw new GuruError(
          "conflict",
          `agent ${input.agentId} already has a live session (session ${holder?.id ?? "unknown"}, ${holder?.status ?? "ending"})`,
          {
            cause: err,
            reason: "AGENT_BUSY",
            details: { agentId: input.agentId, holderSessionId: holder?.id },
          },
        );
      }
      return (await byId(id)) as PartnerSessionRecord;
    },
    get: async (id) => (isUuid(id) ? byId(id) : undefined),
    async list({ keyId, agentId, status, ids }) {
      if (!isUuid(keyId) || (agentId !== undefined && !isUuid(agentId))) return [];
      const r = await db.query<PartnerSessionRecord>(
        `SELECT ${columns} FROM ${from}
         WHERE s.integration_key_id = $1 AND ($2::uuid IS NULL OR s.agent_id = $2) AND ($3::text IS NULL OR s.status = $3)
           AND ($4::uuid[] IS NULL OR s.id = ANY($4))
         ORDER BY s.opened_at DESC, s.id`,
        [keyId, agentId ?? null, status ?? null, ids ?? null],
      );
      return r.rows;
    },
    async pendingForAgent(agentId) {
      const r = await db.query<PartnerSessionRecord>(
        `SELECT ${columns} FROM ${from} WHERE s.agent_id = $1 AND s.status = 'pending' AND s.integration_key_id IS NOT NULL`,
        [agentId],
      );
      return r.rows[0];
    },
    setConsent: (id, state, receipt) =>
      updated(
        `UPDATE tunnel_sessions SET consent_state = $2, consent_receipt = COALESCE($3::jsonb, consent_receipt), last_activity_at = now()
         WHERE id = $1 AND status = 'pending' RETURNING id`,
        [id, state, receipt === undefined ? null : JSON.stringify(receipt)],
      ),
    activate: (id) =>
      updated(
        `UPDATE tunnel_sessions SET status = 'active', activated_at = now(), last_activity_at = now()
         WHERE id = $1 AND status = 'pending' RETURNING id`,
        [id],
      ),
    async closePending({ agentId, keyId }, reason) {
      if (agentId === undefined && keyId === undefined) return [];
      const r = await db.query<{ id: string }>(
        `UPDATE tunnel_sessions SET status = 'closed', closed_at = now(), close_reason = $3
         WHERE status = 'pending' AND integration_key_id IS NOT NULL AND ($1::uuid IS NULL OR agent_id = $1) AND ($2::uuid IS NULL OR integration_key_id = $2) RETURNING id`,
        [agentId ?? null, keyId ?? null, reason],
      );
      return r.rows.map((row) => row.id);
    },
    async closeOnePending(id, reason) {
      const r = await db.query("UPDATE tunnel_sessions SET status = 'closed', closed_at = now(), close_reason = $2 WHERE id = $1 AND status = 'pending'", [
        id,
        reason,
      ]);
      return r.rowCount > 0;
    },
  };
}
