-- The environment variables a command was given, as the audit keeps them:
-- names and values, with the values of secret-looking names redacted by the
-- server before they are written. null: no variables (and rows from before).
ALTER TABLE command_audit ADD COLUMN IF NOT EXISTS env jsonb;

-- guru_begin_command (0003) now writes the env too. The old signature goes,
-- so no caller can write a row without it by mistake.
DROP FUNCTION IF EXISTS guru_begin_command(uuid, uuid, integer, double precision, text, text, text);
CREATE OR REPLACE FUNCTION guru_begin_command(
  p_session uuid, p_technician uuid, p_limit integer, p_window_ms double precision,
  p_shell text, p_working_dir text, p_command text, p_env jsonb)
RETURNS TABLE (agent_id uuid, allowed boolean, retry_after_ms double precision, audit_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_agent uuid;
  v_allowed boolean;
  v_retry double precision;
  v_audit bigint;
BEGIN
  UPDATE tunnel_sessions s SET last_activity_at = now()
    WHERE s.id = p_session AND s.technician_id = p_technician AND s.status = 'active'
    RETURNING s.agent_id INTO v_agent;
  IF v_agent IS NULL THEN
    RETURN;
  END IF;
  SELECT h.allowed, h.retry_after_ms INTO v_allowed, v_retry
    FROM guru_rate_limit_hit('exec:' || p_technician || ':' || v_agent, p_limit, p_window_ms) h;
  IF v_allowed THEN
    INSERT INTO command_audit (technician_id, agent_id, session_id, shell, working_dir, command, env, outcome)
      VALUES (p_technician, v_agent, p_session, p_shell, p_working_dir, p_command, p_env, 'allowed')
      RETURNING id INTO v_audit;
  END IF;
  RETURN QUERY SELECT v_agent, v_allowed, v_retry, v_audit;
END
$$;
