// Cluster membership and agent ownership in PostgreSQL, where every node sees
// them: node heartbeats, which node holds each agent's link, and the clean-up
// of nodes whose heartbeat stopped. Only used when the server runs clustered.
import { isUuid, type Db } from "./db.ts";

export interface AgentOwner {
  agentId: string;
  nodeId: string;
}

export function createClusterNodesRepository(db: Db) {
  return {
    /** Joins (or rejoins after a restart) under this incarnation. */
    async register(nodeId: string, incarnation: string): Promise<void> {
      await db.query(
        `INSERT INTO cluster_nodes (node_id, incarnation) VALUES ($1, $2)
         ON CONFLICT (node_id) DO UPDATE SET incarnation = $2, started_at = now(), heartbeat_at = now(), draining = false`,
        [nodeId, incarnation],
      );
    },
    /** False when the row is gone or belongs to another incarnation (we were taken for dead). */
    async heartbeat(nodeId: string, incarnation: string, draining: boolean): Promise<boolean> {
      const r = await db.query("UPDATE cluster_nodes SET heartbeat_at = now(), draining = $3 WHERE node_id = $1 AND incarnation = $2", [
        nodeId,
        incarnation,
        draining,
      ]);
      return r.rowCount > 0;
    },
    async leave(nodeId: string, incarnation: string): Promise<void> {
      await db.query("DELETE FROM cluster_nodes WHERE node_id = $1 AND incarnation = $2", [nodeId, incarnation]);
    },
    /** Deletes nodes silent for longer than ttlMs; returns their ids (exactly one survivor gets each). */
    async expire(ttlMs: number): Promise<string[]> {
      const r = await db.query<{ nodeId: string }>(
        `DELETE FROM cluster_nodes WHERE heartbeat_at < now() - $1::float8 * interval '1 millisecond' RETURNING node_id AS "nodeId"`,
        [ttlMs],
      );
      return r.rows.map((row) => row.nodeId);
    },
    async liveNodes(): Promise<{ nodeId: string; draining: boolean }[]> {
      return (await db.query<{ nodeId: string; draining: boolean }>(`SELECT node_id AS "nodeId", draining FROM cluster_nodes ORDER BY node_id`)).rows;
    },
    /** Records this node as the agent's owner; returns the node that held it before (null: none). */
    async claim(agentId: string, nodeId: string): Promise<string | null> {
      if (!isUuid(agentId)) return null;
      const r = await db.query<{ previous: string | null }>(
        // The locked sub-select reads the row as it was before this update (a CTE would not).
        `UPDATE agents a SET owner_node = $2, online = true
         FROM (SELECT id, owner_node FROM agents WHERE id = $1 FOR UPDATE) prev
         WHERE a.id = prev.id RETURNING prev.owner_node AS previous`,
        [agentId, nodeId],
      );
      return r.rows[0]?.previous ?? null;
    },
    /** Marks the agent offline only if this node still owns it; true when it did. */
    async release(agentId: string, nodeId: string): Promise<boolean> {
      if (!isUuid(agentId)) return false;
      const r = await db.query("UPDATE agents SET online = false, owner_node = NULL, last_seen_at = now() WHERE id = $1 AND owner_node = $2", [
        agentId,
        nodeId,
      ]);
      return r.rowCount > 0;
    },
    /** Every agent a node owns goes offline (it restarted, stopped or died); returns their ids. */
    async releaseAll(nodeId: string): Promise<string[]> {
      const r = await db.query<{ id: string }>("UPDATE agents SET online = false, owner_node = NULL WHERE owner_node = $1 RETURNING id", [nodeId]);
      return r.rows.map((row) => row.id);
    },
    async owners(): Promise<AgentOwner[]> {
      return (await db.query<AgentOwner>(`SELECT id AS "agentId", owner_node AS "nodeId" FROM agents WHERE owner_node IS NOT NULL`)).rows;
    },
    /** Agents with an active tunnel but no live node holding their link. */
    async orphanedSessionAgents(): Promise<string[]> {
      const r = await db.query<{ agentId: string }>(
        `SELECT DISTINCT s.agent_id AS "agentId" FROM tunnel_sessions s JOIN agents a ON a.id = s.agent_id
         WHERE s.status = 'active'
           AND (a.owner_node IS NULL OR NOT EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.node_id = a.owner_node))`,
      );
      return r.rows.map((row) => row.agentId);
    },
  };
}

export type ClusterNodesRepository = ReturnType<typeof createClusterNodesRepository>;
