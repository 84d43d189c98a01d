-- A technician may open a tunnel attended (OpenTunnelRequest.attended): it is
-- pending, holding its agent, while the person at the endpoint decides, as a
-- partner's attended session is. Pending was for partner sessions only.
ALTER TABLE tunnel_sessions DROP CONSTRAINT IF EXISTS tunnel_sessions_pending_partner_check;
ALTER TABLE tunnel_sessions ADD CONSTRAINT tunnel_sessions_pending_partner_check
  CHECK (status <> 'pending' OR integration_key_id IS NOT NULL OR mode IS NOT DISTINCT FROM 'attended');
