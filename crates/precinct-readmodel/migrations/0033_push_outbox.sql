-- Officer notifications (ADR 0032): the push deliverer's cursor in the log and its
-- outbox. Not read models: never rebuilt from the log, written by the active push
-- deliverer only. No personal data: a device is named by its id (its endpoint and keys
-- stay sealed in the log), a notification by the report, its kind and priority.

-- The last log position the deliverer turned into outbox rows (one row).
CREATE TABLE push_cursor (
    id         smallint PRIMARY KEY CHECK (id = 1),
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (device, triggering log position): what to send, and how it went.
CREATE TABLE push_outbox (
    device_id       uuid NOT NULL,
    position        bigint NOT NULL,
    account_id      uuid NOT NULL,
    report_id       uuid NOT NULL,
    -- ASSIGNED, REASSIGNED or NOTIFY (SLA_WARNING with the SLA escalation, later).
    kind            text NOT NULL,
    priority        text NOT NULL,
    -- PENDING, DELIVERED, GONE (the push service said 404/410), DROPPED (the device
    -- was removed or erased first), EXPIRED (older than the TTL), DEAD (failed
    -- attempts ran out).
    status          text NOT NULL DEFAULT 'PENDING',
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    last_status     integer,
    occurred_at     timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    done_at         timestamptz,
    PRIMARY KEY (device_id, position)
);

CREATE INDEX push_outbox_pending ON push_outbox (next_attempt_at) WHERE status = 'PENDING';
