-- SLA policy per station and priority, warnings and the resolve deadline (ADR 0035).
-- The station's policy as its last StationSlaPolicySet holds it (NULL: the server's
-- defaults throughout); the SLA worker reads it at every scan.
ALTER TABLE stations ADD COLUMN sla_policy jsonb;

-- The SLA worker's bookkeeping: when each warning (and the resolve breach) was
-- recorded. A mark older than its clock's start belongs to an earlier assignment.
ALTER TABLE reports
    ADD COLUMN sla_resolve_breached_at timestamptz,
    ADD COLUMN sla_accept_warned_at timestamptz,
    ADD COLUMN sla_respond_warned_at timestamptz,
    ADD COLUMN sla_resolve_warned_at timestamptz;

-- Reports waiting on the resolve clock (accepted, not yet resolved).
CREATE INDEX reports_sla_resolve ON reports (accepted_at, id)
    WHERE status IN ('ACCEPTED', 'RESPONDING');
