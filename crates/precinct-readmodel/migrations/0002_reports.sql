-- One row per report: its full current state. Personal data (description, street,
-- contact) sits in its own columns so it can be encrypted or dropped on its own.
CREATE TABLE reports (
    id                      uuid PRIMARY KEY,
    status                  text NOT NULL,
    station_id              uuid NOT NULL,
    priority                text NOT NULL,
    -- 0 (LOW) .. 3 (CRITICAL): what the queue sorts on.
    priority_rank           smallint GENERATED ALWAYS AS (
                                CASE priority
                                    WHEN 'CRITICAL' THEN 3
                                    WHEN 'HIGH' THEN 2
                                    WHEN 'MEDIUM' THEN 1
                                    ELSE 0
                                END) STORED,
    title                   text NOT NULL,
    crime_types             text[] NOT NULL DEFAULT '{}',
    latitude                double precision NOT NULL,
    longitude               double precision NOT NULL,
    -- The public, coarse location: rounded to 3 decimals (about 100 m).
    public_latitude         double precision GENERATED ALWAYS AS
                                (round(latitude::numeric, 3)::double precision) STORED,
    public_longitude        double precision GENERATED ALWAYS AS
                                (round(longitude::numeric, 3)::double precision) STORED,
    city                    text,
    state                   text,
    occurred_at             timestamptz,
    media_urls              text[] NOT NULL DEFAULT '{}',
    reporter_id             uuid,
    anonymous               boolean NOT NULL,
    tracking_token_hash     text,
    description             text NOT NULL,
    street                  text,
    contact                 text,
    routing_rule            text NOT NULL,
    routing                 jsonb NOT NULL,
    patrol_id               uuid,
    assigned_at             timestamptz,
    accepted_at             timestamptz,
    responding_at           timestamptz,
    resolved_at             timestamptz,
    closed_at               timestamptz,
    resolution_notes        text,
    rejection_justification text,
    withdrawal_reason       text,
    declines                integer NOT NULL DEFAULT 0,
    evidence                jsonb NOT NULL DEFAULT '[]',
    notes                   jsonb NOT NULL DEFAULT '[]',
    sla_accept_breached_at  timestamptz,
    sla_respond_breached_at timestamptz,
    submitted_at            timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    last_position           bigint NOT NULL
);

CREATE INDEX reports_station_status ON reports (station_id, status);
CREATE INDEX reports_reporter ON reports (reporter_id, submitted_at DESC, id DESC)
    WHERE reporter_id IS NOT NULL;
CREATE INDEX reports_patrol ON reports (patrol_id) WHERE patrol_id IS NOT NULL;
CREATE INDEX reports_location ON reports (latitude, longitude);
CREATE INDEX reports_public_location ON reports (public_latitude, public_longitude);
CREATE INDEX reports_submitted ON reports (submitted_at DESC, id DESC);
CREATE INDEX reports_station_submitted ON reports (station_id, submitted_at DESC, id DESC);
-- The open-report queue: highest priority, then oldest, then id.
CREATE INDEX reports_queue ON reports (station_id, priority_rank DESC, submitted_at, id)
    WHERE status IN ('NEW', 'ASSIGNED', 'ACCEPTED', 'RESPONDING', 'RESOLVED');
-- SLA views: reports waiting to be accepted / to respond, oldest clock first.
CREATE INDEX reports_sla_accept ON reports (assigned_at, id) WHERE status = 'ASSIGNED';
CREATE INDEX reports_sla_respond ON reports (accepted_at, id) WHERE status = 'ACCEPTED';
