-- Outbound webhooks (issue 18 item 1, ADR 0028).
--
-- `webhooks` is a read model (projection `webhooks`): one row per subscription created
-- through the log. The signing secret is never stored here (it is sealed in the log).
CREATE TABLE webhooks (
    id               uuid PRIMARY KEY,
    url              text NOT NULL,
    -- Report event types; empty: every report event.
    event_types      text[] NOT NULL DEFAULT '{}',
    station_id       uuid,
    -- GeoJSON polygon coordinates, or null.
    area             jsonb,
    personal_data    boolean NOT NULL,
    enabled          boolean NOT NULL,
    disabled_reason  text,
    deleted          boolean NOT NULL DEFAULT false,
    -- The last replay request: from which position, and the request's own position.
    replay_from      bigint,
    replay_position  bigint,
    created_by       uuid NOT NULL,
    -- Position of the creating event: delivery starts after it.
    created_position bigint NOT NULL,
    -- Position of the subscription's last event (its version).
    version          bigint NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX webhooks_station ON webhooks (station_id, id);

-- The delivery ledger: not a read model (never rebuilt from the log, written by the
-- active deliverer). Per subscription: the last log position handled (delivered, or
-- not matching the filter), the replay request last applied, and the current run of
-- failed attempts.
CREATE TABLE webhook_cursors (
    webhook_id           uuid PRIMARY KEY,
    position             bigint NOT NULL,
    replay_seen          bigint NOT NULL DEFAULT 0,
    consecutive_failures integer NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- One row per (subscription, log position) delivered or tried; a replay updates it.
CREATE TABLE webhook_deliveries (
    webhook_id      uuid NOT NULL,
    position        bigint NOT NULL,
    message_id      text NOT NULL,
    event_type      text NOT NULL,
    -- DELIVERED, RETRYING or DEAD.
    status          text NOT NULL,
    attempts        integer NOT NULL,
    last_error      text,
    last_status     integer,
    latency_ms      integer,
    first_attempt_at timestamptz NOT NULL,
    last_attempt_at  timestamptz NOT NULL,
    delivered_at     timestamptz,
    PRIMARY KEY (webhook_id, position)
);
