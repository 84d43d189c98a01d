-- One rate-limit hit as one round trip: the same sliding window as before
-- (advisory lock per key, drop events past the window, count, record if
-- below the limit), in a function, because the five statements of a
-- client-side transaction cost more than the command they guard.
CREATE OR REPLACE FUNCTION guru_rate_limit_hit(p_key text, p_limit integer, p_window_ms double precision)
RETURNS TABLE (allowed boolean, retry_after_ms double precision, event_count bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_now timestamptz;
  v_count bigint;
  v_oldest timestamptz;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('guru.rate_limit'), hashtext(p_key));
  -- clock_timestamp(), not now(): a hit that waited on the lock must count after the hits it waited for.
  v_now := clock_timestamp();
  DELETE FROM rate_limit_events e WHERE e.key = p_key AND e.at <= v_now - p_window_ms * interval '1 millisecond';
  SELECT count(*), min(e.at) INTO v_count, v_oldest FROM rate_limit_events e WHERE e.key = p_key;
  IF v_count < p_limit THEN
    INSERT INTO rate_limit_events (key, at) VALUES (p_key, v_now);
    RETURN QUERY SELECT true, 0::double precision, v_count + 1;
  ELSE
    RETURN QUERY SELECT false,
      greatest(1, ceil(extract(epoch FROM (v_oldest + p_window_ms * interval '1 millisecond' - v_now)) * 1000))::double precision,
      v_count;
  END IF;
END
$$;
