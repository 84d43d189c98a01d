-- Partner integration and attended consent: integration keys, agents a
-- partner provisioned (its own device id), sessions that exist before their
-- agent is online (pending), their mode, partner, technician and consent
-- receipt, single-use viewer tokens, and the audit of every partner call.
-- Idempotent: objects are created only if missing; constraints are dropped
-- and re-created under the same names.

CREATE TABLE IF NOT EXISTS integration_keys (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name            text NOT NULL UNIQUE,
  -- Hash of the key; the key itself is shown once and never stored.
  key_hash        text NOT NULL UNIQUE,
  allowed_origins text[] NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  created_by      uuid,
  revoked_at      timestamptz,
  last_used_at    timestamptz
);

-- A partner's device id, unique per key that provisioned the agent; and what
-- the agent's local policy said about consent in its last hello.
ALTER TABLE agents ADD COLUMN IF NOT EXISTS integration_key_id uuid REFERENCES integration_keys (id);
ALTER TABLE agents ADD COLUMN IF NOT EXISTS external_id text;
ALTER TABLE agents ADD COLUMN IF NOT EXISTS consent_mode text;
ALTER TABLE agents ADD COLUMN IF NOT EXISTS requires_consent boolean NOT NULL DEFAULT false;
ALTER TABLE agents DROP CONSTRAINT IF EXISTS agents_external_id_needs_key;
ALTER TABLE agents ADD CONSTRAINT agents_external_id_needs_key CHECK (external_id IS NULL OR integration_key_id IS NOT NULL);
ALTER TABLE agents DROP CONSTRAINT IF EXISTS agents_consent_mode_check;
ALTER TABLE agents ADD CONSTRAINT agents_consent_mode_check CHECK (consent_mode IS NULL OR consent_mode IN ('ask', 'auto-approve', 'deny'));
CREATE UNIQUE INDEX IF NOT EXISTS agents_external_id_per_key ON agents (integration_key_id, external_id) WHERE external_id IS NOT NULL;

-- Technicians a key created on first use: its people, audited by name.
ALTER TABLE technicians ADD COLUMN IF NOT EXISTS integration_key_id uuid REFERENCES integration_keys (id);

ALTER TABLE tunnel_sessions ADD COLUMN IF NOT EXISTS mode text;
ALTER TABLE tunnel_sessions ADD COLUMN IF NOT EXISTS integration_key_id uuid REFERENCES integration_keys (id);
ALTER TABLE tunnel_sessions ADD COLUMN IF NOT EXISTS capabilities text[] NOT NULL DEFAULT '{}';
ALTER TABLE tunnel_sessions ADD COLUMN IF NOT EXISTS consent_state text;
ALTER TABLE tunnel_sessions ADD COLUMN IF NOT EXISTS consent_receipt jsonb;
ALTER TABLE tunnel_sessions ADD COLUMN IF NOT EXISTS activated_at timestamptz;

-- 'pending' joins the statuses; a pending session is not closed either.
ALTER TABLE tunnel_sessions DROP CONSTRAINT IF EXISTS tunnel_sessions_status_check;
ALTER TABLE tunnel_sessions ADD CONSTRAINT tunnel_sessions_status_check
  CHECK (status IN ('pending', 'active', 'closed', 'expired'));
ALTER TABLE tunnel_sessions DROP CONSTRAINT IF EXISTS tunnel_sessions_check;
ALTER TABLE tunnel_sessions ADD CONSTRAINT tunnel_sessions_check
  CHECK ((status IN ('pending', 'active')) = (closed_at IS NULL));
ALTER TABLE tunnel_sessions DROP CONSTRAINT IF EXISTS tunnel_sessions_mode_check;
ALTER TABLE tunnel_sessions ADD CONSTRAINT tunnel_sessions_mode_check
  CHECK (mode IS NULL OR mode IN ('unattended', 'attended'));
-- Only partner sessions wait for their agent; a receipt only where someone was asked.
ALTER TABLE tunnel_sessions DROP CONSTRAINT IF EXISTS tunnel_sessions_pending_partner_check;
ALTER TABLE tunnel_sessions ADD CONSTRAINT tunnel_sessions_pending_partner_check
  CHECK (status <> 'pending' OR integration_key_id IS NOT NULL);
ALTER TABLE tunnel_sessions DROP CONSTRAINT IF EXISTS tunnel_sessions_consent_check;
ALTER TABLE tunnel_sessions ADD CONSTRAINT tunnel_sessions_consent_check
  CHECK ((consent_receipt IS NULL OR mode = 'attended')
     AND (consent_state IS NULL OR consent_state IN ('not_required', 'waiting', 'asked', 'approved', 'denied', 'timed_out')));

-- One live session per agent, pending ones included: a partner's pending
-- session holds the agent as an active tunnel does.
DROP INDEX IF EXISTS tunnel_sessions_one_active_per_agent;
CREATE UNIQUE INDEX tunnel_sessions_one_active_per_agent
  ON tunnel_sessions (agent_id) WHERE status IN ('pending', 'active');
CREATE INDEX IF NOT EXISTS tunnel_sessions_key_idx ON tunnel_sessions (integration_key_id, opened_at) WHERE integration_key_id IS NOT NULL;

-- Viewer tokens: the JWT's id, what it is bound to, and whether it was used.
CREATE TABLE IF NOT EXISTS viewer_tokens (
  jti                text PRIMARY KEY,
  session_id         uuid NOT NULL REFERENCES tunnel_sessions (id) ON DELETE CASCADE,
  integration_key_id uuid NOT NULL REFERENCES integration_keys (id),
  origin             text NOT NULL,
  issued_at          timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  redeemed_at        timestamptz,
  revoked_at         timestamptz
);
CREATE INDEX IF NOT EXISTS viewer_tokens_session_idx ON viewer_tokens (session_id);

-- Every call of the integration API, allowed or refused. No foreign keys:
-- a refusal names whatever was asked for.
CREATE TABLE IF NOT EXISTS integration_audit (
  id                 bigserial PRIMARY KEY,
  at                 timestamptz NOT NULL DEFAULT now(),
  integration_key_id uuid,
  method             text NOT NULL,
  outcome            text NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed')),
  session_id         uuid,
  agent_id           uuid,
  reason             text,
  detail             jsonb
);
CREATE INDEX IF NOT EXISTS integration_audit_key_idx ON integration_audit (integration_key_id, at);
CREATE INDEX IF NOT EXISTS integration_audit_at_idx ON integration_audit (at);
