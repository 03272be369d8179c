-- Resolve breaches in analytics (ADR 0035, issue 17): `GET /analytics/sla` counts the
-- resolve deadlines the SLA worker recorded (`SlaBreached` kind RESOLVE) under
-- `time_to_resolve`, as it counts accept and respond breaches under theirs.
ALTER TABLE analytics_reports ADD COLUMN sla_resolve_breaches integer NOT NULL DEFAULT 0;
ALTER TABLE analytics_assignments ADD COLUMN sla_resolve_breached boolean NOT NULL DEFAULT false;

-- The analytics read model is projected again from the log (its checkpoint goes back
-- to 0, as in 0021), so every row gets what the projection derives from the events —
-- every breach of every assignment — nothing back-filled from other tables.
TRUNCATE analytics_reports, analytics_assignments, analytics_hourly;
UPDATE checkpoints SET position = 0, failed_position = NULL, error = NULL
    WHERE projection = 'analytics';
