WITH r AS (SELECT r.report_id, r.submitted_at, r.first_assigned_at, r.first_resolved_at, r.first_closed_at FROM analytics_reports r WHERE r.submitted_at >= (now() - interval '30 days') AND r.submitted_at < now() AND r.station_id = '54a90a57-0817-5fd4-985e-362a0f791619'),
 a AS (SELECT a.* FROM analytics_assignments a JOIN r USING (report_id)),
 d AS (SELECT 'time_to_assign' AS metric, extract(epoch FROM r.first_assigned_at - r.submitted_at)::float8 AS d, NULL::boolean AS within FROM r WHERE r.first_assigned_at IS NOT NULL
  UNION ALL SELECT 'time_to_accept', extract(epoch FROM a.accepted_at - a.assigned_at)::float8, a.accepted_at - a.assigned_at <= make_interval(secs => 300) FROM a WHERE a.accepted_at IS NOT NULL
  UNION ALL SELECT 'time_to_respond', extract(epoch FROM a.responding_at - a.accepted_at)::float8, a.responding_at - a.accepted_at <= make_interval(secs => 900) FROM a WHERE a.responding_at IS NOT NULL AND a.accepted_at IS NOT NULL
  UNION ALL SELECT 'time_to_resolve', extract(epoch FROM r.first_resolved_at - r.submitted_at)::float8, NULL FROM r WHERE r.first_resolved_at IS NOT NULL
  UNION ALL SELECT 'time_to_close', extract(epoch FROM r.first_closed_at - r.submitted_at)::float8, NULL FROM r WHERE r.first_closed_at IS NOT NULL)
 SELECT metric, count(*), percentile_cont(ARRAY[0.5,0.9,0.99]::float8[]) WITHIN GROUP (ORDER BY d), count(*) FILTER (WHERE within) FROM d GROUP BY metric;
