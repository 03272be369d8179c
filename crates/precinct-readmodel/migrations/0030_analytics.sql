-- Analytics read models (issue 17 item 2, ADR 0027), written by the `analytics`
-- projection from the report events alone (rebuildable to identical rows).

-- One row per report: what it is now (station, priority, status) and when it first
-- reached each milestone of its life. Times are the events' own `at`.
CREATE TABLE analytics_reports (
    report_id            uuid PRIMARY KEY,
    -- Now (a transfer moves the report; triage changes the priority).
    station_id           uuid NOT NULL,
    priority             text NOT NULL,
    status               text NOT NULL,
    -- The catalogue codes resolved at submission (ADR 0026).
    crime_type_codes     text[] NOT NULL,
    latitude             double precision NOT NULL,
    longitude            double precision NOT NULL,
    -- Geohash of the location at precision 8; any coarser cell is a prefix.
    cell                 text NOT NULL,
    submitted_at         timestamptz NOT NULL,
    -- The first time each milestone was reached (a reopening does not reset them).
    first_assigned_at    timestamptz,
    first_accepted_at    timestamptz,
    first_responding_at  timestamptz,
    first_resolved_at    timestamptz,
    -- A supervisor's ClosureApproved (a duplicate's closure is `duplicate_at`).
    first_closed_at      timestamptz,
    first_withdrawn_at   timestamptz,
    first_rejected_at    timestamptz,
    first_duplicate_at   timestamptz,
    -- Counts over the report's whole life.
    assignments          integer NOT NULL DEFAULT 0,
    declines             integer NOT NULL DEFAULT 0,
    closure_rejections   integer NOT NULL DEFAULT 0,
    sla_accept_breaches  integer NOT NULL DEFAULT 0,
    sla_respond_breaches integer NOT NULL DEFAULT 0,
    -- The report's current assignment (`analytics_assignments.seq`), 0 when none.
    current_seq          integer NOT NULL DEFAULT 0,
    last_position        bigint NOT NULL
);
CREATE INDEX analytics_reports_station_submitted ON analytics_reports (station_id, submitted_at);
CREATE INDEX analytics_reports_submitted ON analytics_reports (submitted_at);

-- One row per assignment of a report to a patrol (seq 1, 2, … per report), with who
-- answered it and how it ended. `*_by` is the account that ran the command.
CREATE TABLE analytics_assignments (
    report_id          uuid NOT NULL,
    seq                integer NOT NULL,
    patrol_id          uuid NOT NULL,
    -- The report's station and priority when it was assigned.
    station_id         uuid NOT NULL,
    priority           text NOT NULL,
    assigned_at        timestamptz NOT NULL,
    auto               boolean NOT NULL,
    accepted_at        timestamptz,
    accepted_by        uuid,
    responding_at      timestamptz,
    resolved_at        timestamptz,
    resolved_by        uuid,
    closed_at          timestamptz,
    declined_at        timestamptz,
    declined_by        uuid,
    -- Taken back by the desk (unassign, reassign, transfer, duplicate).
    withdrawn_at       timestamptz,
    closure_rejections integer NOT NULL DEFAULT 0,
    sla_accept_breached  boolean NOT NULL DEFAULT false,
    sla_respond_breached boolean NOT NULL DEFAULT false,
    -- When it stopped being open: declined, withdrawn, closed, or the report rejected
    -- or withdrawn by its reporter. NULL: open.
    ended_at           timestamptz,
    PRIMARY KEY (report_id, seq)
);
CREATE INDEX analytics_assignments_station_assigned ON analytics_assignments (station_id, assigned_at);
CREATE INDEX analytics_assignments_patrol ON analytics_assignments (patrol_id);
