-- Revocation and limits: a technician can be disabled (every token of theirs
-- stops working at once), and a tunnel remembers the token that opened it so
-- revoking that token ends the tunnel and its work. Rate limits on opening
-- tunnels and on file operations reuse rate_limit_events (0002) with keys of
-- their own.
ALTER TABLE technicians ADD COLUMN IF NOT EXISTS disabled_at timestamptz;
ALTER TABLE tunnel_sessions ADD COLUMN IF NOT EXISTS opened_token_id text;
CREATE INDEX IF NOT EXISTS tunnel_sessions_active_token_idx
  ON tunnel_sessions (opened_token_id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS uploads_active_owner_idx
  ON uploads (technician_id, agent_id) WHERE status = 'active';
