-- Several server processes on one database: each live node has a row it
-- refreshes (its heartbeat), and an agent's row names the node holding its
-- link. A node whose heartbeat is older than the cluster's TTL is dead: the
-- survivors delete its row, mark its agents offline and close their tunnels.
-- A server without NATS never writes either, so owner_node stays NULL.
CREATE TABLE IF NOT EXISTS cluster_nodes (
  node_id      text PRIMARY KEY,
  -- One process per start: a restarted node (same id) gets a new incarnation.
  incarnation  uuid NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  draining     boolean NOT NULL DEFAULT false
);
ALTER TABLE agents ADD COLUMN IF NOT EXISTS owner_node text;
CREATE INDEX IF NOT EXISTS agents_owner_node_idx ON agents (owner_node) WHERE owner_node IS NOT NULL;
