-- Issue 16, items 2 and 5. How a report reached its current station — `ROUTED` (by the
-- routing of its submission) or `TRANSFERRED` (moved there by a person) — so that
-- routing statistics can tell the two apart; how many transfers and reopenings it had.
-- No event before this migration moved or reopened a report, so the defaults are true of
-- every existing row: nothing needs projecting again.
ALTER TABLE reports
    ADD COLUMN arrival        text NOT NULL DEFAULT 'ROUTED'
        CHECK (arrival IN ('ROUTED', 'TRANSFERRED')),
    ADD COLUMN transfers      integer NOT NULL DEFAULT 0,
    ADD COLUMN transferred_at timestamptz,
    ADD COLUMN reopens        integer NOT NULL DEFAULT 0,
    ADD COLUMN reopened_at    timestamptz;
