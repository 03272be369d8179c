-- Issue 13, items 6 and 10. Both read models are projected again from the log after
-- this migration (their checkpoints go back to 0), so every row gets what the new
-- projection code derives from the events: nothing is back-filled from other tables.

-- The station each audit row's target belonged to when the event happened, as the audit
-- projection learnt it from the events it projected (null: a target without a station,
-- e.g. a citizen's account, an ADMIN, an e-mail reservation, a data subject). A
-- SUPERVISOR reads only the rows of their own station.
ALTER TABLE audit ADD COLUMN station_id uuid;
CREATE INDEX audit_station ON audit (station_id, position) WHERE station_id IS NOT NULL;

-- The audit projection's own memory of which station each target belongs to (never
-- read from another read model, which may be ahead or behind it).
CREATE TABLE audit_targets (
    target_id  uuid PRIMARY KEY,
    station_id uuid
);

-- An account's e-mail and name are personal data: gone once its subject is erased.
ALTER TABLE accounts
    ALTER COLUMN email DROP NOT NULL,
    ALTER COLUMN name DROP NOT NULL,
    ADD COLUMN personal_erased boolean NOT NULL DEFAULT false;

TRUNCATE audit, accounts;
UPDATE checkpoints SET position = 0, failed_position = NULL, error = NULL
    WHERE projection IN ('audit', 'accounts');
