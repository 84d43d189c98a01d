-- Services and registry operations, allowed, refused or failed: who did what
-- to which service or value, whether it was a dry run, and the value or state
-- before and after (as the agent reported it).
CREATE TABLE IF NOT EXISTS system_audit (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  technician_id uuid,
  agent_id      uuid,
  session_id    uuid,
  -- service_list, service_control, registry_list, registry_read, registry_write, registry_delete
  operation     text NOT NULL,
  -- the service name, or the registry key (and value name)
  target        text,
  -- start, stop, restart, enable, disable; the value type for a write
  action        text,
  dry_run       boolean NOT NULL DEFAULT false,
  outcome       text NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
  error         text,
  before        jsonb,
  after         jsonb,
  duration_ms   bigint
);
CREATE INDEX IF NOT EXISTS system_audit_session_idx ON system_audit (session_id);
CREATE INDEX IF NOT EXISTS system_audit_technician_idx ON system_audit (technician_id, at);
CREATE INDEX IF NOT EXISTS system_audit_agent_idx ON system_audit (agent_id, at);
CREATE INDEX IF NOT EXISTS system_audit_at_idx ON system_audit (at);
