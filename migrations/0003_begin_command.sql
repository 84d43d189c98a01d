-- Everything a command needs from the database before it is dispatched, as
-- one round trip: the session is the caller's and active (and its
-- last_activity moves), the technician's rate limit on that agent takes the
-- hit, and the command's audit row is written, so no command runs without
-- its row. Answers the agent, whether the rate limit allowed it, the wait if
-- not, and the audit row's id; no row at all when the session is not the
-- caller's active one (the caller then explains why from the session).
CREATE OR REPLACE FUNCTION guru_begin_command(
  p_session uuid, p_technician uuid, p_limit integer, p_window_ms double precision,
  p_shell text, p_working_dir text, p_command text)
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
    INSERT INTO command_audit (technician_id, agent_id, session_id, shell, working_dir, command, outcome)
      VALUES (p_technician, v_agent, p_session, p_shell, p_working_dir, p_command, 'allowed')
      RETURNING id INTO v_audit;
  END IF;
  RETURN QUERY SELECT v_agent, v_allowed, v_retry, v_audit;
END
$$;
