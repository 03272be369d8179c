-- The crime-type catalogue (issue 17 item 1, ADR 0026): one row per type created
-- through the log. OTHER is built in (never an event) and not stored here; the
-- queries add it.
CREATE TABLE crime_types (
    code             text PRIMARY KEY,
    -- Language tag → name; always has "en".
    names            jsonb NOT NULL,
    default_priority text NOT NULL,
    keywords         text[] NOT NULL DEFAULT '{}',
    service_code     text,
    group_name       text,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- The codes a report's free-text crime types resolved to at submission. Reports
-- submitted before the catalogue recorded none: the catalogue as of their position
-- was OTHER alone, so they resolve to OTHER (what a replay of their events gives).
ALTER TABLE reports ADD COLUMN crime_type_codes text[] NOT NULL DEFAULT '{OTHER}';
