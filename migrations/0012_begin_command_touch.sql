-- guru_begin_command (0005) moved the session's last_activity on every
-- command: a new version of the session's row, and an entry in its activity
-- index, per command, the largest single cost of the function. Idle expiry
-- counts in minutes or hours, so the session is now touched only when its
-- last_activity is older than p_touch_after_ms (the server passes a tenth of
-- the idle limit, at most a second). Otherwise the row is locked FOR SHARE,
-- as the update would have locked it: a close racing the command waits for
-- it, or the command finds the session closed. The update is tried first, so
-- no transaction ever upgrades a share lock (two would wait for each other).
DROP FUNCTION IF EXISTS guru_begin_command(uuid, uuid, integer, double precision, text, text, text, jsonb);
CREATE OR REPLACE FUNCTION guru_begin_command(
  p_session uuid, p_technician uuid, p_limit integer, p_window_ms double precision,
  p_shell text, p_working_dir text, p_command text, p_env jsonb, p_touch_after_ms double precision)
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
      AND s.last_activity_at <= now() - p_touch_after_ms * interval '1 millisecond'
    RETURNING s.agent_id INTO v_agent;
  IF v_agent IS NULL THEN
    SELECT s.agent_id INTO v_agent FROM tunnel_sessions s
      WHERE s.id = p_session AND s.technician_id = p_technician AND s.status = 'active'
      FOR SHARE;
    IF v_agent IS NULL THEN
      RETURN;
    END IF;
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
