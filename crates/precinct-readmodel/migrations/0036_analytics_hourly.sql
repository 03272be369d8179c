-- The hourly roll-up of `analytics_reports` (issue 17 item 5, ADR 0027 "Roll-up"): for
-- each group of reports submitted in one UTC hour with the same station, priority,
-- status and type codes (all as they are now), how many there are and how many reached
-- each milestone of the funnel. `GET /analytics/volume` and `GET /analytics/funnel`
-- read whole hours here and only the partial hours at the ends of a range from
-- `analytics_reports`, so a 30-day range reads about 720 groups, not every report.
--
-- Kept by triggers on `analytics_reports`, in the projection's own transaction: every
-- insert, delete and update of a grouping or funnel column takes the old row's share
-- out and puts the new row's in. A group whose count falls to zero is deleted, so the
-- table is exactly the aggregate of `analytics_reports` (a rebuild gives the same rows;
-- the projection's TRUNCATE names this table too, since TRUNCATE fires no row trigger).
CREATE TABLE analytics_hourly (
    station_id         uuid NOT NULL,
    -- date_trunc('hour', submitted_at, 'UTC')
    hour               timestamptz NOT NULL,
    priority           text NOT NULL,
    status             text NOT NULL,
    crime_type_codes   text[] NOT NULL,
    submitted          bigint NOT NULL,
    assigned           bigint NOT NULL,
    accepted           bigint NOT NULL,
    responding         bigint NOT NULL,
    resolved           bigint NOT NULL,
    closed             bigint NOT NULL,
    -- Reports declined at least once, and declines in all.
    declined           bigint NOT NULL,
    declines           bigint NOT NULL,
    rejected           bigint NOT NULL,
    withdrawn          bigint NOT NULL,
    duplicates         bigint NOT NULL,
    PRIMARY KEY (station_id, hour, priority, status, crime_type_codes)
);
CREATE INDEX analytics_hourly_hour ON analytics_hourly (hour);

-- Adds one report's share (sign 1) or takes it out (sign -1).
CREATE FUNCTION analytics_hourly_add(r analytics_reports, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h timestamptz := date_trunc('hour', r.submitted_at, 'UTC');
BEGIN
    INSERT INTO analytics_hourly AS t (station_id, hour, priority, status, crime_type_codes,
        submitted, assigned, accepted, responding, resolved, closed, declined, declines,
        rejected, withdrawn, duplicates)
    VALUES (r.station_id, h, r.priority, r.status, r.crime_type_codes,
        sign,
        sign * (r.first_assigned_at IS NOT NULL)::integer,
        sign * (r.first_accepted_at IS NOT NULL)::integer,
        sign * (r.first_responding_at IS NOT NULL)::integer,
        sign * (r.first_resolved_at IS NOT NULL)::integer,
        sign * (r.first_closed_at IS NOT NULL)::integer,
        sign * (r.declines > 0)::integer,
        sign * r.declines,
        sign * (r.first_rejected_at IS NOT NULL)::integer,
        sign * (r.first_withdrawn_at IS NOT NULL)::integer,
        sign * (r.first_duplicate_at IS NOT NULL)::integer)
    ON CONFLICT (station_id, hour, priority, status, crime_type_codes) DO UPDATE SET
        submitted = t.submitted + EXCLUDED.submitted,
        assigned = t.assigned + EXCLUDED.assigned,
        accepted = t.accepted + EXCLUDED.accepted,
        responding = t.responding + EXCLUDED.responding,
        resolved = t.resolved + EXCLUDED.resolved,
        closed = t.closed + EXCLUDED.closed,
        declined = t.declined + EXCLUDED.declined,
        declines = t.declines + EXCLUDED.declines,
        rejected = t.rejected + EXCLUDED.rejected,
        withdrawn = t.withdrawn + EXCLUDED.withdrawn,
        duplicates = t.duplicates + EXCLUDED.duplicates;
    IF sign < 0 THEN
        DELETE FROM analytics_hourly
         WHERE station_id = r.station_id AND hour = h AND priority = r.priority
           AND status = r.status AND crime_type_codes = r.crime_type_codes
           AND submitted = 0;
    END IF;
END
$$;

CREATE FUNCTION analytics_hourly_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
        PERFORM analytics_hourly_add(OLD, -1);
    END IF;
    IF TG_OP = 'UPDATE' OR TG_OP = 'INSERT' THEN
        PERFORM analytics_hourly_add(NEW, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER analytics_hourly_insert_delete
    AFTER INSERT OR DELETE ON analytics_reports
    FOR EACH ROW EXECUTE FUNCTION analytics_hourly_trigger();

-- Only updates that move a report's share: not `last_position`, `current_seq` or the
-- SLA and assignment counters, which the roll-up does not hold.
CREATE TRIGGER analytics_hourly_update
    AFTER UPDATE ON analytics_reports
    FOR EACH ROW
    WHEN ((OLD.station_id, OLD.submitted_at, OLD.priority, OLD.status, OLD.crime_type_codes,
           OLD.first_assigned_at IS NULL, OLD.first_accepted_at IS NULL,
           OLD.first_responding_at IS NULL, OLD.first_resolved_at IS NULL,
           OLD.first_closed_at IS NULL, OLD.declines, OLD.first_rejected_at IS NULL,
           OLD.first_withdrawn_at IS NULL, OLD.first_duplicate_at IS NULL)
          IS DISTINCT FROM
          (NEW.station_id, NEW.submitted_at, NEW.priority, NEW.status, NEW.crime_type_codes,
           NEW.first_assigned_at IS NULL, NEW.first_accepted_at IS NULL,
           NEW.first_responding_at IS NULL, NEW.first_resolved_at IS NULL,
           NEW.first_closed_at IS NULL, NEW.declines, NEW.first_rejected_at IS NULL,
           NEW.first_withdrawn_at IS NULL, NEW.first_duplicate_at IS NULL))
    EXECUTE FUNCTION analytics_hourly_trigger();

-- The SLA endpoint reads its cohort from this index alone (an index-only scan): the
-- filters and the report-side milestones it measures.
-- It replaces the plain (station_id, submitted_at) index.
CREATE INDEX analytics_reports_sla ON analytics_reports (station_id, submitted_at)
    INCLUDE (report_id, priority, crime_type_codes, first_assigned_at, first_resolved_at,
             first_closed_at);
DROP INDEX analytics_reports_station_submitted;

-- Existing rows (a database migrated with reports already projected).
INSERT INTO analytics_hourly
SELECT station_id, date_trunc('hour', submitted_at, 'UTC'), priority, status, crime_type_codes,
    count(*), count(first_assigned_at), count(first_accepted_at), count(first_responding_at),
    count(first_resolved_at), count(first_closed_at), count(*) FILTER (WHERE declines > 0),
    COALESCE(sum(declines), 0), count(first_rejected_at), count(first_withdrawn_at),
    count(first_duplicate_at)
  FROM analytics_reports
 GROUP BY 1, 2, 3, 4, 5;
