INSERT INTO analytics_reports (report_id, station_id, priority, status, crime_type_codes, latitude, longitude, cell,
  submitted_at, first_assigned_at, first_accepted_at, first_responding_at, first_resolved_at, first_closed_at, declines, last_position)
SELECT md5(g::text)::uuid, '54a90a57-0817-5fd4-985e-362a0f791619',
  (ARRAY['LOW','MEDIUM','HIGH','CRITICAL'])[1 + g % 4],
  CASE WHEN g % 20 < 15 THEN 'CLOSED' WHEN g % 20 < 16 THEN 'RESOLVED' WHEN g % 20 < 18 THEN 'ASSIGNED' ELSE 'NEW' END,
  CASE g % 5 WHEN 0 THEN ARRAY['THEFT'] WHEN 1 THEN ARRAY['ASSAULT'] WHEN 2 THEN ARRAY['NOISE'] WHEN 3 THEN ARRAY['THEFT','ASSAULT'] ELSE ARRAY['OTHER'] END,
  7.07, 125.61, 'wdq8zzzz',
  t, CASE WHEN g % 20 < 18 THEN t + (g % 600) * interval '1 s' END,
  CASE WHEN g % 20 < 16 THEN t + (g % 600 + g % 300) * interval '1 s' END,
  CASE WHEN g % 20 < 16 THEN t + (g % 600 + g % 300 + 60) * interval '1 s' END,
  CASE WHEN g % 20 < 16 THEN t + (g % 7200 + 1200) * interval '1 s' END,
  CASE WHEN g % 20 < 15 THEN t + (g % 7200 + 3600) * interval '1 s' END,
  CASE WHEN g % 50 = 0 THEN 1 ELSE 0 END, g
FROM (SELECT g, now() - (abs(hashint4(g)) % (365*86400)) * interval '1 s' AS t FROM generate_series(1, 1000000) g) s;
-- 200 patrols, 400 officers (the one who accepts also resolves).
-- Since migration 0043 an assignment carries its report's submission time.
SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'analytics_assignments'
  AND column_name = 'report_submitted_at') AS has_report_submitted \gset
\if :has_report_submitted
INSERT INTO analytics_assignments (report_id, seq, patrol_id, station_id, priority, assigned_at, auto, accepted_at, accepted_by, responding_at, resolved_at, resolved_by, ended_at, report_submitted_at)
SELECT report_id, 1, md5((hashtext(report_id::text) % 200)::text)::uuid, station_id, priority, first_assigned_at, false,
  first_accepted_at, CASE WHEN first_accepted_at IS NOT NULL THEN md5('officer' || (hashtext(report_id::text) % 400))::uuid END,
  first_responding_at, first_resolved_at, CASE WHEN first_resolved_at IS NOT NULL THEN md5('officer' || (hashtext(report_id::text) % 400))::uuid END,
  first_closed_at, submitted_at
FROM analytics_reports WHERE first_assigned_at IS NOT NULL;
\else
INSERT INTO analytics_assignments (report_id, seq, patrol_id, station_id, priority, assigned_at, auto, accepted_at, accepted_by, responding_at, resolved_at, resolved_by, ended_at)
SELECT report_id, 1, md5((hashtext(report_id::text) % 200)::text)::uuid, station_id, priority, first_assigned_at, false,
  first_accepted_at, CASE WHEN first_accepted_at IS NOT NULL THEN md5('officer' || (hashtext(report_id::text) % 400))::uuid END,
  first_responding_at, first_resolved_at, CASE WHEN first_resolved_at IS NOT NULL THEN md5('officer' || (hashtext(report_id::text) % 400))::uuid END,
  first_closed_at
FROM analytics_reports WHERE first_assigned_at IS NOT NULL;
\endif
