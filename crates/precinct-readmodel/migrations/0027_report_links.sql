-- Issue 16 item 4: possible duplicates and linking (ADR 0020). A report closed into
-- another as its duplicate names its primary (`duplicate_of`); a primary lists its
-- duplicates, and every report the reports it is `RELATED` to, in the order they were
-- linked. No event before this migration linked reports, so the defaults are true of
-- every existing row: nothing needs projecting again.
ALTER TABLE reports
    ADD COLUMN duplicate_of uuid,
    ADD COLUMN duplicates   uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN related      uuid[] NOT NULL DEFAULT '{}';
