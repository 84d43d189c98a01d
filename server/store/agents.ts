// Agents: enrolment (name + hashed per-machine key), revocation, and the
// online state and inventory an agent reports in its hello.
import { GuruError } from "../../lib/errors.ts";
import { isUniqueViolation, isUuid, type Db } from "./db.ts";

export interface AgentInventory {
  hostname: string;
  os: string;
  osRelease: string;
  arch: string;
  agentVersion: string;
  capabilities: string[];
  /** Hello.features: wire behaviours beyond what neighbouring versions assume. */
  wireFeatures: string[];
}

export interface AgentRecord {
  id: string;
  name: string;
  enrolledAt: Date;
  /** Set once the key is revoked; the agent can no longer connect. */
  revokedAt: Date | null;
  online: boolean;
  lastSeenAt: Date | null;
  hostname: string | null;
  os: string | null;
  osRelease: string | null;
  arch: string | null;
  agentVersion: string | null;
  capabilities: string[];
  wireFeatures: string[];
}

export interface AgentsRepository {
  /** Duplicate name → GuruError "conflict". */
  enroll(input: { name: string; keyHash: string }): Promise<AgentRecord>;
  /**
   * The agents holding any of these key hashes, each with its `keyHash` (one
   * query for many handshakes). Revoked agents too, so auth can say "revoked"
   * rather than "unknown key".
   */
  findByKeyHashes(keyHashes: string[]): Promise<(AgentRecord & { keyHash: string })[]>;
  get(id: string): Promise<AgentRecord | undefined>;
  getByName(name: string): Promise<AgentRecord | undefined>;
  /** Ordered by name; nameContains matches case-insensitively; agentId keeps only that agent. */
  list(filter?: { nameContains?: string; agentId?: string }): Promise<AgentRecord[]>;
  /** True when a key was active and is now revoked. */
  revokeKey(id: string): Promise<boolean>;
  /** Re-enrols an existing agent with a new key (clears the revocation). */
  rotateKey(id: string, keyHash: string): Promise<AgentRecord | undefined>;
  markOnline(id: string, inventory: AgentInventory): Promise<AgentRecord | undefined>;
  markOffline(id: string): Promise<boolean>;
  /**
   * Many agents' link status in one transaction of two statements (the
   * handshake path's group commit): those online with their inventory, those
   * offline. An id in both lists is an error of the caller.
   */
  applyLinkStatus(online: { id: string; inventory: AgentInventory }[], offline: string[]): Promise<void>;
  touchLastSeen(id: string): Promise<boolean>;
  /** At server start: no link survives a restart. Returns how many were online. */
  markAllOffline(): Promise<number>;
}

const columns = `id, name, enrolled_at AS "enrolledAt", revoked_at AS "revokedAt", online,
  last_seen_at AS "lastSeenAt", hostname, os, os_release AS "osRelease", arch,
  agent_version AS "agentVersion", capabilities, wire_features AS "wireFeatures"`;

/** Escapes LIKE wildcards so user text matches literally. */
function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function createAgentsRepository(db: Db): AgentsRepository {
  const one = async (sql: string, params: unknown[]) => (await db.query<AgentRecord>(sql, params)).rows[0];

  return {
    async enroll({ name, keyHash }) {
      try {
        return await one(`INSERT INTO agents (name, key_hash) VALUES ($1, $2) RETURNING ${columns}`, [name, keyHash]);
      } catch (err) {
        if (isUniqueViolation(err, "agents_name_key")) {
          throw new GuruError("conflict", `an agent named "${name}" is already enrolled`, { cause: err, reason: "NAME_TAKEN", metadata: { name } });
        }
        if (isUniqueViolation(err)) throw new GuruError("conflict", "that agent key is already in use", { cause: err });
        throw err;
      }
    },
    async findByKeyHashes(keyHashes) {
      if (keyHashes.length === 0) return [];
      const r = await db.query<AgentRecord & { keyHash: string }>(`SELECT ${columns}, key_hash AS "keyHash" FROM agents WHERE key_hash = ANY($1::text[])`, [
        keyHashes,
      ]);
      return r.rows;
    },
    get: async (id) => (isUuid(id) ? one(`SELECT ${columns} FROM agents WHERE id = $1`, [id]) : undefined),
    getByName: (name) => one(`SELECT ${columns} FROM agents WHERE name = $1`, [name]),
    async list(filter = {}) {
      if (filter.agentId !== undefined && !isUuid(filter.agentId)) return [];
      const pattern = filter.nameContains ? `%${likeEscape(filter.nameContains)}%` : null;
      const r = await db.query<AgentRecord>(
        `SELECT ${columns} FROM agents WHERE ($1::text IS NULL OR name ILIKE $1) AND ($2::uuid IS NULL OR id = $2) ORDER BY name`,
        [pattern, filter.agentId ?? null],
      );
      return r.rows;
    },
    async revokeKey(id) {
      if (!isUuid(id)) return false;
      const r = await db.query("UPDATE agents SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", [id]);
      return r.rowCount > 0;
    },
    async rotateKey(id, keyHash) {
      if (!isUuid(id)) return undefined;
      try {
        return await one(`UPDATE agents SET key_hash = $2, revoked_at = NULL WHERE id = $1 RETURNING ${columns}`, [id, keyHash]);
      } catch (err) {
        if (isUniqueViolation(err)) throw new GuruError("conflict", "that agent key is already in use", { cause: err });
        throw err;
      }
    },
    markOnline: async (id, inv) =>
      !isUuid(id)
        ? undefined
        : one(
            `UPDATE agents SET online = true, last_seen_at = now(), hostname = $2, os = $3, os_release = $4,
           arch = $5, agent_version = $6, capabilities = $7, wire_features = $8
         WHERE id = $1 RETURNING ${columns}`,
            [id, inv.hostname, inv.os, inv.osRelease, inv.arch, inv.agentVersion, inv.capabilities, inv.wireFeatures],
          ),
    async markOffline(id) {
      if (!isUuid(id)) return false;
      const r = await db.query("UPDATE agents SET online = false, last_seen_at = now() WHERE id = $1", [id]);
      return r.rowCount > 0;
    },
    async applyLinkStatus(online, offline) {
      const on = online.filter((o) => isUuid(o.id));
      const off = offline.filter(isUuid);
      if (on.length === 0 && off.length === 0) return;
      await db.transaction(async (tx) => {
        if (on.length > 0) {
          await tx.query(
            `UPDATE agents a SET online = true, last_seen_at = now(), hostname = v.hostname, os = v.os, os_release = v.os_release,
               arch = v.arch, agent_version = v.agent_version,
               capabilities = ARRAY(SELECT jsonb_array_elements_text(v.capabilities::jsonb)),
               wire_features = ARRAY(SELECT jsonb_array_elements_text(v.wire_features::jsonb))
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
               AS v(id, hostname, os, os_release, arch, agent_version, capabilities, wire_features)
             WHERE a.id = v.id`,
            [
              on.map((o) => o.id),
              on.map((o) => o.inventory.hostname),
              on.map((o) => o.inventory.os),
              on.map((o) => o.inventory.osRelease),
              on.map((o) => o.inventory.arch),
              on.map((o) => o.inventory.agentVersion),
              on.map((o) => JSON.stringify(o.inventory.capabilities)),
              on.map((o) => JSON.stringify(o.inventory.wireFeatures)),
            ],
          );
        }
        if (off.length > 0) await tx.query("UPDATE agents SET online = false, last_seen_at = now() WHERE id = ANY($1::uuid[])", [off]);
      });
    },
    async touchLastSeen(id) {
      if (!isUuid(id)) return false;
      const r = await db.query("UPDATE agents SET last_seen_at = now() WHERE id = $1", [id]);
      return r.rowCount > 0;
    },
    async markAllOffline() {
      const r = await db.query("UPDATE agents SET online = false WHERE online");
      return r.rowCount;
    },
  };
}
