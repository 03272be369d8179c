-- Issue 16 item 6: `GET /users` pages accounts in registration order (never by a
-- personal field: its cursor reaches callers who may not see e-mail addresses).
CREATE INDEX accounts_created ON accounts (created_at, id);
CREATE INDEX accounts_station_created ON accounts (station_id, created_at, id);
