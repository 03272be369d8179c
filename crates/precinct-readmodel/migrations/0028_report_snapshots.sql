-- Snapshots of a report's state for `as_of` (ADR 0022): the state after the report's
-- first `events` events, sealed as one value under its data subject's key. A cache of
-- the log written by readers (positions never change, so a snapshot never goes stale),
-- not a projection: a rebuild starts without any. Erasing the subject deletes them.
CREATE TABLE report_snapshots (
    report_id        uuid        NOT NULL,
    events           integer     NOT NULL CHECK (events > 0),
    position         bigint      NOT NULL,
    max_occurred_at  timestamptz NOT NULL,
    subject          uuid        NOT NULL,
    state            jsonb       NOT NULL,
    PRIMARY KEY (report_id, events)
);
CREATE INDEX report_snapshots_subject ON report_snapshots (subject);
