// Tunnel sessions. The database holds the invariant "one active tunnel per
// agent" (a partial unique index); this repository turns its violation into a
// conflict that names the holder, whichever server process opened it.
import { GuruError } from "../../lib/errors.ts";
import { isForeignKeyViolation, isUniqueViolation, isUuid, type Db } from "./db.ts";
import type { ConsentReceipt } from "./partner-sessions.ts";

export type SessionStatus = "pending" | "active" | "closed" | "expired";

export interface SessionRecord {
  id: string;
  agentId: string;
  technicianId: string;
  status: SessionStatus;
  openedAt: Date;
  lastActivityAt: Date;
  closedAt: Date | null;
  closeReason: string | null;
}

export interface SessionsRepository {
  /**
   * Opens an active session. Another active session on the agent → GuruError
   * "conflict" with details.holderSessionId; unknown agent or technician →
   * "not_found".
   */
  open(input: {
    agentId: string;
    technicianId: string;
    tokenId?: string;
    forCommands?: boolean;
    /** Pending (holding the agent) while the person at the endpoint is asked to approve these capabilities. */
    attended?: { capabilities: string[] };
  }): Promise<SessionRecord>;
  get(id: string): Promise<SessionRecord | undefined>;
  getActiveForAgent(agentId: string): Promise<SessionRecord | undefined>;
  /** Newest first. */
  list(filter?: { agentId?: string; technicianId?: string; status?: SessionStatus }): Promise<SessionRecord[]>;
  /** The updated record only if it was active, else undefined (closing twice is harmless). */
  close(id: string, outcome: { status: "closed" | "expired"; reason: string }): Promise<SessionRecord | undefined>;
  closeActiveForAgent(agentId: string, reason: string): Promise<SessionRecord[]>;
  /** Closes the active tunnels of a technician, or only those opened with one token (it was revoked). */
  closeActiveFor(holder: { technicianId: string } | { tokenId: string }, reason: string): Promise<SessionRecord[]>;
  /** At server start: no tunnel survives a restart of the process that carried it. */
  closeAllActive(reason: string): Promise<SessionRecord[]>;
  /** Expires live sessions (pending ones too) idle for more than idleMs; reason "idle". */
  expireIdle(idleMs: number): Promise<SessionRecord[]>;
  /** last_activity_at = now() on an active session; false when not active. */
  touch(id: string): Promise<boolean>;
  /** Moves last_activity of an active session of this technician and returns it; undefined otherwise. */
  touchOwnedActive(id: string, technicianId: string): Promise<SessionRecord | undefined>;
  /**
   * One more command runs in a tunnel opened for commands (see open's
   * forCommands, which counts its opener): "joined"; "not_for_commands" for
   * an active tunnel the technician opened (commands use it, never close it);
   * "ended" when it is closed or its last command is closing it.
   */
  joinCommands(id: string): Promise<"joined" | "not_for_commands" | "ended">;
  /** A command in a tunnel opened for commands ended: how many still run in it (0: close it); undefined if it is not active. */
  leaveCommands(id: string): Promise<number | undefined>;
  /** An attended tunnel's answer from the person at the endpoint; false when it is no longer pending. */
  recordConsent(id: string, state: "approved" | "denied" | "timed_out", receipt: ConsentReceipt): Promise<boolean>;
  /** pending → active once the agent opened the attended tunnel; undefined when it ended meanwhile. */
  activate(id: string): Promise<SessionRecord | undefined>;
  /** Ends a pending (attended) tunnel; false when it was not pending. */
  closePending(id: string, reason: string): Promise<boolean>;
}

const ONE_ACTIVE_INDEX = "tunnel_sessions_one_active_per_agent";

const columns = `id, agent_id AS "agentId", technician_id AS "technicianId", status, opened_at AS "openedAt",
  last_activity_at AS "lastActivityAt", closed_at AS "closedAt", close_reason AS "closeReason"`;

/** Optional id filters: absent is fine, present must be a uuid (else nothing can match). */
export function validIds(...ids: (string | undefined)[]): boolean {
  return ids.every((id) => id === undefined || isUuid(id));
}

export function createSessionsRepository(db: Db): SessionsRepository {
  const many = async (sql: string, params: unknown[] = []) => (await db.query<SessionRecord>(sql, params)).rows;
  const getActiveForAgent = async (agentId: string) =>
    // A partner's pending session holds the agent too.
    !isUuid(agentId) ? undefined : (await many(`SELECT ${columns} FROM tunnel_sessions WHERE agent_id = $1 AND status IN ('pending', 'active')`, [agentId]))[0];

  return {
    async open({ agentId, technicianId, tokenId, forCommands, attended }) {
      if (!isUuid(agentId) || !isUuid(technicianId)) {
        throw new GuruError("not_found", "unknown agent or technician", {
          reason: "AGENT_NOT_FOUND",
          metadata: { agentId },
          details: { agentId, technicianId },
        });
      }
      // The holder may close between our failed insert and the look-up; then
      // the tunnel is free and a retry can win it.
      for (let attempt = 0; ; attempt++) {
        try {
          const rows = await many(
            attended === undefined
              ? `INSERT INTO tunnel_sessions (agent_id, technician_id, opened_token_id, command_users) VALUES ($1, $2, $3, $4) RETURNING ${columns}`
              : `INSERT INTO tunnel_sessions (agent_id, technician_id, opened_token_id, command_users, status, mode, capabilities, consent_state)
                 VALUES ($1, $2, $3, $4, 'pending', 'attended', $5, 'asked') RETURNING ${columns}`,
            attended === undefined
              ? [agentId, technicianId, tokenId ?? null, forCommands ? 1 : null]
              : [agentId, technicianId, tokenId ?? null, forCommands ? 1 : null, attended.capabilities],
          );
          return rows[0];
        } catch (err) {
          if (isForeignKeyViolation(err)) {
            throw new GuruError("not_found", "unknown agent or technician", {
              cause: err,
              reason: "AGENT_NOT_FOUND",
              metadata: { agentId },
              details: { agentId, technicianId },
            });
          }
          if (!isUniqueViolation(err, ONE_ACTIVE_INDEX)) throw err;
          const holder = await getActiveForAgent(agentId);
          if (holder || attempt >= 2) {
            const holderSessionId = holder?.id;
            throw new GuruError("conflict", `agent ${agentId} already has an active tunnel (session ${holderSessionId ?? "unknown"})`, {
              cause: err,
              reason: "TUNNEL_ACTIVE",
              metadata: { agentId, sessionId: holderSessionId },
              details: { agentId, holderSessionId, holderTechnicianId: holder?.technicianId },
            });
          }
        }
      }
    },
    async get(id) {
      if (!isUuid(id)) return undefined;
      return (await many(`SELECT ${columns} FROM tunnel_sessions WHERE id = $1`, [id]))[0];
    },
    getActiveForAgent,
    async list(filter = {}) {
      if (!validIds(filter.agentId, filter.technicianId)) return [];
      return many(
        `SELECT ${columns} FROM tunnel_sessions
         WHERE ($1::uuid IS NULL OR agent_id = $1) AND ($2::uuid IS NULL OR technician_id = $2) AND ($3::text IS NULL OR status = $3)
         ORDER BY opened_at DESC, id`,
        [filter.agentId ?? null, filter.technicianId ?? null, filter.status ?? null],
      );
    },
    async close(id, { status, reason }) {
      if (!isUuid(id)) return undefined;
      const rows = await many(
        `UPDATE tunnel_sessions SET status = $2, closed_at = now(), close_reason = $3
         WHERE id = $1 AND status = 'active' RETURNING ${columns}`,
        [id, status, reason],
      );
      return rows[0];
    },
    async closeActiveForAgent(agentId, reason) {
      if (!isUuid(agentId)) return [];
      return many(
        `UPDATE tunnel_sessions SET status = 'closed', closed_at = now(), close_reason = $2
         WHERE agent_id = $1 AND status = 'active' RETURNING ${columns}`,
        [agentId, reason],
      );
    },
    async closeActiveFor(holder, reason) {
      const byToken = "tokenId" in holder;
      if (!byToken && !isUuid(holder.technicianId)) return [];
      return many(
        `UPDATE tunnel_sessions SET status = 'closed', closed_at = now(), close_reason = $2
         WHERE ${byToken ? "opened_token_id = $1" : "technician_id = $1::uuid"} AND status = 'active' RETURNING ${columns}`,
        [byToken ? holder.tokenId : holder.technicianId, reason],
      );
    },
    closeAllActive(reason) {
      return many(
        `UPDATE tunnel_sessions SET status = 'closed', closed_at = now(), close_reason = $1
         WHERE status = 'active' RETURNING ${columns}`,
        [reason],
      );
    },
    expireIdle(idleMs) {
      return many(
        `UPDATE tunnel_sessions SET status = 'expired', closed_at = now(), close_reason = 'idle'
         WHERE status IN ('active', 'pending') AND last_activity_at < now() - $1::float8 * interval '1 millisecond' RETURNING ${columns}`,
        [idleMs],
      );
    },
    async touchOwnedActive(id, technicianId) {
      if (!validIds(id, technicianId)) return undefined;
      const rows = await many(
        `UPDATE tunnel_sessions SET last_activity_at = now()
         WHERE id = $1 AND technician_id = $2 AND status = 'active' RETURNING ${columns}`,
        [id, technicianId],
      );
      return rows[0];
    },
    async touch(id) {
      if (!isUuid(id)) return false;
      const r = await db.query("UPDATE tunnel_sessions SET last_activity_at = now() WHERE id = $1 AND status = 'active'", [id]);
      return r.rowCount > 0;
    },
    async joinCommands(id) {
      if (!isUuid(id)) return "ended";
      const joined = await db.query("UPDATE tunnel_sessions SET command_users = command_users + 1 WHERE id = $1 AND status = 'active' AND command_users > 0", [
        id,
      ]);
      if (joined.rowCount > 0) return "joined";
      const r = await db.query<{ forCommands: boolean }>(
        `SELECT command_users IS NOT NULL AS "forCommands" FROM tunnel_sessions WHERE id = $1 AND status = 'active'`,
        [id],
      );
      return r.rows.length === 1 && !r.rows[0].forCommands ? "not_for_commands" : "ended";
    },
    async leaveCommands(id) {
      if (!isUuid(id)) return undefined;
      const r = await db.query<{ left: number }>(
        `UPDATE tunnel_sessions SET command_users = command_users - 1 WHERE id = $1 AND status = 'active' AND command_users > 0
         RETURNING command_users AS "left"`,
        [id],
      );
      return r.rows[0]?.left;
    },
    async recordConsent(id, state, receipt) {
      const r = await db.query(
        "UPDATE tunnel_sessions SET consent_state = $2, consent_receipt = $3::jsonb, last_activity_at = now() WHERE id = $1 AND status = 'pending'",
        [id, state, JSON.stringify(receipt)],
      );
      return r.rowCount > 0;
    },
    async activate(id) {
      const rows = await many(
        `UPDATE tunnel_sessions SET status = 'active', activated_at = now(), last_activity_at = now()
         WHERE id = $1 AND status = 'pending' RETURNING ${columns}`,
        [id],
      );
      return rows[0];
    },
    async closePending(id, reason) {
      const r = await db.query("UPDATE tunnel_sessions SET status = 'closed', closed_at = now(), close_reason = $2 WHERE id = $1 AND status = 'pending'", [
        id,
        reason,
      ]);
      return r.rowCount > 0;
    },
  };
}
