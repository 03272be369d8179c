-- The patrol roster with each patrol's workload (what automatic assignment ranks on).
CREATE TABLE patrols (
    id               uuid PRIMARY KEY,
    call_sign        text NOT NULL,
    station_id       uuid NOT NULL,
    officer_ids      uuid[] NOT NULL DEFAULT '{}',
    status           text NOT NULL,
    -- Last known position; filled by the live-location path (not an event projection).
    latitude         double precision,
    longitude        double precision,
    location_at      timestamptz,
    open_assignments integer NOT NULL DEFAULT 0,
    declines         integer NOT NULL DEFAULT 0,
    last_assigned_at timestamptz,
    registered_at    timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_position    bigint NOT NULL
);

CREATE INDEX patrols_station ON patrols (station_id, call_sign, id);
CREATE INDEX patrols_call_sign ON patrols (call_sign, id);
CREATE INDEX patrols_officers ON patrols USING gin (officer_ids);
