-- The SLA endpoint's cohort is the reports submitted in a range; it measured their
-- assignments by joining every row of `analytics_assignments` with the cohort (a
-- sequential scan of the whole table: 1.3 s of a 2 s answer over 900,000 assignments,
-- issue 17 item 5). Each assignment now carries its report's submission time, which
-- never changes, and an index on it that holds the columns the endpoint reads, so the
-- cohort's assignments are one index-only range scan (then joined with the cohort's
-- reports for the station and filters, which may change). The index holds columns an
-- assignment's lifecycle updates (`accepted_at`, …), so those updates are no longer
-- HOT: a few index writes per lifecycle event, against reads that scanned the table.
ALTER TABLE analytics_assignments ADD COLUMN report_submitted_at timestamptz;
UPDATE analytics_assignments a SET report_submitted_at = r.submitted_at
  FROM analytics_reports r WHERE r.report_id = a.report_id;
ALTER TABLE analytics_assignments ALTER COLUMN report_submitted_at SET NOT NULL;
CREATE INDEX analytics_assignments_report_submitted ON analytics_assignments
    (report_submitted_at)
    INCLUDE (report_id, assigned_at, accepted_at, responding_at, ended_at, declined_at,
             withdrawn_at, sla_accept_breached, sla_respond_breached, sla_resolve_breached);
