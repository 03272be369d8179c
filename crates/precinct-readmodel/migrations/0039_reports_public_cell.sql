-- The public list's `near=` index (ADR 0037, issue 15): each report's cell on a grid
-- of 0.005° × 0.005° laid on its PUBLIC coordinates (rounded to 0.001°, so a cell holds
-- exactly 5 × 5 public points), and one btree per cell in list order carrying what the
-- public list filters on. A public `near` query merges the newest rows of the cells its
-- circle reaches (one ordered index walk per cell under one LIMIT: PostgreSQL's Merge
-- Append), reading about one page of index entries instead of a page per cell.
--
-- cell = floor(public_latitude × 200) × 1000000 + floor(public_longitude × 200), computed
-- in numeric from the same rounding as `public_latitude` (exact: no floating point), so
-- the longitude part lies in [-36000, 36000] and every cell has its own number.
-- `crate::queries::reports::public_cell` computes the same number and must change with
-- it. Staff queries (exact coordinates) and duplicates keep `geo_cell` (migration 0022).
ALTER TABLE reports ADD COLUMN public_cell bigint GENERATED ALWAYS AS (
    floor(round(latitude::numeric, 3) * 200)::bigint * 1000000
        + floor(round(longitude::numeric, 3) * 200)::bigint
) STORED;

CREATE INDEX reports_public_cell ON reports (public_cell, submitted_at DESC, id DESC)
    INCLUDE (public_latitude, public_longitude, status);
