-- Interactive terminals: one audit row per terminal (its id is also its
-- recording's id), written when it opens (or is refused) and completed when
-- it ends; and the recording itself, asciicast v2 text in ordered chunks, in
-- the database so every server process behind a load balancer can read it.
-- Chunks go with their audit row (the retention sweep removes both).
CREATE TABLE IF NOT EXISTS terminal_audit (
  id                  uuid PRIMARY KEY,
  at                  timestamptz NOT NULL DEFAULT now(),
  technician_id       uuid,
  agent_id            uuid,
  session_id          uuid,
  channel_id          integer,
  shell               text,
  command             text,
  working_dir         text,
  columns             integer,
  rows                integer,
  outcome             text NOT NULL CHECK (outcome IN ('running', 'exited', 'failed', 'refused')),
  refusal_reason      text,
  exit_code           integer,
  exit_reason         text,
  signal              text,
  ended_at            timestamptz,
  duration_ms         bigint,
  input_bytes         bigint NOT NULL DEFAULT 0,
  output_bytes        bigint NOT NULL DEFAULT 0,
  -- The recording of this terminal (its own id); null when it never started.
  recording_id        uuid,
  recording_bytes     bigint NOT NULL DEFAULT 0,
  recording_truncated boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS terminal_audit_session_idx ON terminal_audit (session_id);
CREATE INDEX IF NOT EXISTS terminal_audit_technician_idx ON terminal_audit (technician_id, at);
CREATE INDEX IF NOT EXISTS terminal_audit_agent_idx ON terminal_audit (agent_id, at);
CREATE INDEX IF NOT EXISTS terminal_audit_at_idx ON terminal_audit (at);

CREATE TABLE IF NOT EXISTS terminal_recording_chunks (
  recording_id uuid NOT NULL REFERENCES terminal_audit (id) ON DELETE CASCADE,
  seq          integer NOT NULL CHECK (seq >= 0),
  -- gzip-compressed asciicast text; the chunks in seq order make the recording.
  data         bytea NOT NULL,
  PRIMARY KEY (recording_id, seq)
);
