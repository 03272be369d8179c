-- Poison events (ADR 0009). A projector that cannot apply an event records it here and
-- holds back that aggregate's later events in that projection (also recorded, as
-- `held`), commits its checkpoint past them and goes on with the rest of the log.
-- Derived state like the read models: a rebuild empties it and quarantines again.
CREATE TABLE quarantine (
    projection     text NOT NULL,
    position       bigint NOT NULL,
    -- The aggregate held back; NULL when the entry could not be read at all, or the
    -- source has no aggregates (the request log).
    aggregate_type text,
    aggregate_id   uuid,
    event_type     text NOT NULL,
    -- `poison`: this event failed; `held`: held back behind an earlier poison event of
    -- its aggregate; `skipped`: an operator dropped its effect (quarantine_decisions).
    reason         text NOT NULL CHECK (reason IN ('poison', 'held', 'skipped')),
    -- decode, missing_row, data, integrity, unreadable, other.
    error_class    text,
    -- For operators only (never served over HTTP).
    error          text,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    -- Set when the entry no longer holds anything back: `retried` (applied by
    -- `precinct projections retry`) or `skipped`; with who and when.
    resolution     text CHECK (resolution IN ('retried', 'skipped')),
    resolved_by    text,
    resolved_at    timestamptz,
    PRIMARY KEY (projection, position)
);
-- What is held back right now, per aggregate (reads of a held report answer 503).
CREATE INDEX quarantine_held ON quarantine (projection, aggregate_type, aggregate_id, position)
    WHERE resolution IS NULL;

-- Every operator decision about a quarantined event. Never truncated (a rebuild keeps
-- it, and honours `skip` decisions), never updated.
CREATE TABLE quarantine_decisions (
    id             bigserial PRIMARY KEY,
    projection     text NOT NULL,
    position       bigint NOT NULL,
    aggregate_type text,
    aggregate_id   uuid,
    event_type     text NOT NULL,
    decision       text NOT NULL CHECK (decision IN ('retry', 'skip')),
    decided_by     text NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    note           text,
    -- The failure that quarantined the event (copied to the entry a rebuild re-creates).
    error_class    text,
    error          text,
    -- What the decision led to, e.g. `released` or `still held: <position> failed`.
    outcome        text NOT NULL
);
CREATE INDEX quarantine_decisions_skip ON quarantine_decisions (projection, position)
    WHERE decision = 'skip';

-- Bumped whenever what a projection holds back or skips changes, so that its worker
-- (which caches it) re-reads it in the batch transaction that locks this row.
ALTER TABLE checkpoints ADD COLUMN quarantine_version bigint NOT NULL DEFAULT 0;
