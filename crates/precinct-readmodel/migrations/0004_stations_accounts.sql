-- Precincts and divisions: the routing rules are this data.
CREATE TABLE stations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL,
    latitude    double precision,
    longitude   double precision,
    -- GeoJSON Polygon geometry object, or null.
    area        jsonb,
    crime_types text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);

CREATE INDEX stations_name ON stations (name, id);

-- Accounts without any credential: the password hash never leaves the log.
CREATE TABLE accounts (
    id         uuid PRIMARY KEY,
    email      text NOT NULL,
    name       text NOT NULL,
    role       text NOT NULL,
    station_id uuid,
    active     boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX accounts_email ON accounts (email, id);
CREATE INDEX accounts_station ON accounts (station_id, email, id);
