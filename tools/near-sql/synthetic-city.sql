-- 1,000,000 reports uniform over the bench's city square (7.07, 125.61) ± 0.05°, submitted
-- over 365 days, 1 in 20 WITHDRAWN (left out of the public list), with text and JSON of
-- a realistic width (the heap rows the final page reads).
INSERT INTO reports (id, status, station_id, priority, title, crime_types, crime_type_codes,
  latitude, longitude, city, anonymous, description, street, routing_rule, routing,
  submitted_at, updated_at, last_position)
SELECT md5(g::text)::uuid,
  (ARRAY['NEW','ASSIGNED','ACCEPTED','RESPONDING','RESOLVED','CLOSED','CLOSED','CLOSED','CLOSED','CLOSED',
         'CLOSED','CLOSED','CLOSED','CLOSED','CLOSED','CLOSED','CLOSED','REJECTED','REJECTED','WITHDRAWN'])[1 + g % 20],
  md5((g % 8)::text)::uuid,
  (ARRAY['LOW','MEDIUM','HIGH','CRITICAL'])[1 + g % 4],
  'Report ' || g || ' near the market',
  ARRAY['theft'], ARRAY['THEFT'],
  7.07 + (abs(hashint4(g)) / 2147483647.0 * 2 - 1) * 0.05,
  125.61 + (abs(hashint4(-g)) / 2147483647.0 * 2 - 1) * 0.05,
  'Davao City', g % 3 = 0,
  'A bicycle was taken from the front of the shop while the owner was inside; two men, one in a red shirt, left on foot towards the river.',
  'Rizal Street ' || (g % 500),
  'PRECINCT_AREA',
  jsonb_build_object('station_id', md5((g % 8)::text)::uuid, 'rule', 'PRECINCT_AREA', 'matched_keyword', null, 'distance_m', g % 4000),
  now() - (abs(hashint4(g * 7 + 1)) % (365 * 86400)) * interval '1 s' - (g % 1000) * interval '1 ms',
  now(), g
FROM generate_series(1, 1000000) g;
