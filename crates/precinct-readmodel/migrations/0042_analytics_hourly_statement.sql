-- New reports add their hourly shares once per statement, not once per row (issue 15:
-- catch-up and rebuild insert reports a batch at a time, and the row trigger of
-- `0036_analytics_hourly.sql` ran one PL/pgSQL upsert per report). The statement
-- trigger groups the inserted rows (its transition table) by the roll-up's key and
-- upserts each group once, so `analytics_hourly` stays exactly the aggregate of
-- `analytics_reports`. Deletes and updates keep their row triggers: an update's
-- `WHEN` clause skips the ones that move no share, which a statement trigger cannot.
DROP TRIGGER analytics_hourly_insert_delete ON analytics_reports;

CREATE TRIGGER analytics_hourly_delete
    AFTER DELETE ON analytics_reports
    FOR EACH ROW EXECUTE FUNCTION analytics_hourly_trigger();

CREATE FUNCTION analytics_hourly_insert_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_hourly AS t (station_id, hour, priority, status, crime_type_codes,
        submitted, assigned, accepted, responding, resolved, closed, declined, declines,
        rejected, withdrawn, duplicates)
    SELECT station_id, date_trunc('hour', submitted_at, 'UTC'), priority, status,
        crime_type_codes, count(*), count(first_assigned_at), count(first_accepted_at),
        count(first_responding_at), count(first_resolved_at), count(first_closed_at),
        count(*) FILTER (WHERE declines > 0), COALESCE(sum(declines), 0),
        count(first_rejected_at), count(first_withdrawn_at), count(first_duplicate_at)
      FROM new_rows
     GROUP BY 1, 2, 3, 4, 5
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
    RETURN NULL;
END
$$;

CREATE TRIGGER analytics_hourly_insert
    AFTER INSERT ON analytics_reports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_hourly_insert_rows();
