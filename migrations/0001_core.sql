-- Core schema: agents, technicians and their tokens, signing keys, tunnel
-- sessions, audit, uploads and rate-limit events. Idempotent: every object is
-- created only if missing, so re-running this file changes nothing.

CREATE TABLE IF NOT EXISTS agents (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL UNIQUE,
  -- Hash of the per-machine key; the key itself is shown once and never stored.
  key_hash      text UNIQUE,
  enrolled_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz,
  online        boolean NOT NULL DEFAULT false,
  last_seen_at  timestamptz,
  hostname      text,
  os            text,
  os_release    text,
  arch          text,
  agent_version text,
  capabilities  text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS technicians (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text NOT NULL UNIQUE,
  role       text NOT NULL CHECK (role IN ('admin', 'tech')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS issued_tokens (
  jti           text PRIMARY KEY,
  technician_id uuid NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
  issued_at     timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS issued_tokens_technician_idx ON issued_tokens (technician_id);
CREATE INDEX IF NOT EXISTS issued_tokens_expires_idx ON issued_tokens (expires_at);

CREATE TABLE IF NOT EXISTS signing_keys (
  kid         text PRIMARY KEY,
  alg         text NOT NULL,
  private_jwk jsonb NOT NULL,
  public_jwk  jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- Set when a newer key takes over; the public half stays to verify old tokens.
  retired_at  timestamptz
);

CREATE TABLE IF NOT EXISTS tunnel_sessions (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  agent_id         uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  technician_id    uuid NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed', 'expired')),
  opened_at        timestamptz NOT NULL DEFAULT now(),
  last_activity_at timestamptz NOT NULL DEFAULT now(),
  closed_at        timestamptz,
  close_reason     text,
  CHECK ((status = 'active') = (closed_at IS NULL))
);
-- One active tunnel per agent, enforced by the database: racing opens get a
-- unique violation that the store maps to a conflict naming the holder.
CREATE UNIQUE INDEX IF NOT EXISTS tunnel_sessions_one_active_per_agent
  ON tunnel_sessions (agent_id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS tunnel_sessions_active_activity_idx
  ON tunnel_sessions (last_activity_at) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS tunnel_sessions_agent_idx ON tunnel_sessions (agent_id, opened_at);
CREATE INDEX IF NOT EXISTS tunnel_sessions_technician_idx ON tunnel_sessions (technician_id, opened_at);

-- Audit tables carry no foreign keys: a record of a refusal names whatever
-- was asked for, and audit outlives the rows it speaks of.
CREATE TABLE IF NOT EXISTS tunnel_audit (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  event         text NOT NULL,
  session_id    uuid,
  agent_id      uuid,
  technician_id uuid,
  outcome       text,
  reason        text,
  detail        jsonb
);
CREATE INDEX IF NOT EXISTS tunnel_audit_session_idx ON tunnel_audit (session_id);
CREATE INDEX IF NOT EXISTS tunnel_audit_agent_idx ON tunnel_audit (agent_id, at);
CREATE INDEX IF NOT EXISTS tunnel_audit_at_idx ON tunnel_audit (at);

CREATE TABLE IF NOT EXISTS command_audit (
  id             bigserial PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  technician_id  uuid,
  agent_id       uuid,
  session_id     uuid,
  channel_id     integer,
  shell          text,
  working_dir    text,
  command        text NOT NULL,
  outcome        text NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
  refusal_reason text,
  exit_code      integer,
  exit_reason    text,
  signal         text,
  duration_ms    bigint,
  stdout_bytes   bigint,
  stderr_bytes   bigint,
  truncated      boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS command_audit_session_idx ON command_audit (session_id);
CREATE INDEX IF NOT EXISTS command_audit_technician_idx ON command_audit (technician_id, at);
CREATE INDEX IF NOT EXISTS command_audit_agent_idx ON command_audit (agent_id, at);
CREATE INDEX IF NOT EXISTS command_audit_at_idx ON command_audit (at);

CREATE TABLE IF NOT EXISTS file_audit (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  technician_id uuid,
  agent_id      uuid,
  session_id    uuid,
  operation     text NOT NULL,
  path          text,
  direction     text, -- 'upload' (to the agent) or 'download' (from it); null for stat and list
  bytes         bigint,
  sha256        text,
  outcome       text NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
  error         text,
  duration_ms   bigint
);
CREATE INDEX IF NOT EXISTS file_audit_session_idx ON file_audit (session_id);
CREATE INDEX IF NOT EXISTS file_audit_technician_idx ON file_audit (technician_id, at);
CREATE INDEX IF NOT EXISTS file_audit_agent_idx ON file_audit (agent_id, at);
CREATE INDEX IF NOT EXISTS file_audit_at_idx ON file_audit (at);

CREATE TABLE IF NOT EXISTS uploads (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id       uuid,
  agent_id         uuid NOT NULL,
  technician_id    uuid,
  path             text NOT NULL,
  size             bigint NOT NULL CHECK (size >= 0),
  sha256           text,
  overwrite        boolean NOT NULL DEFAULT false,
  committed_offset bigint NOT NULL DEFAULT 0 CHECK (committed_offset >= 0),
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'finished', 'aborted', 'failed')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  error            text
);
CREATE INDEX IF NOT EXISTS uploads_active_updated_idx ON uploads (updated_at) WHERE status = 'active';

-- Sliding-window rate limits live in the database so every server process
-- behind a load balancer counts the same events.
CREATE TABLE IF NOT EXISTS rate_limit_events (
  key text NOT NULL,
  at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS rate_limit_events_key_at_idx ON rate_limit_events (key, at);
CREATE INDEX IF NOT EXISTS rate_limit_events_at_idx ON rate_limit_events (at);
