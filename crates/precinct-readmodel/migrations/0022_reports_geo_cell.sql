-- The spatial index of `near=` (ADR "near: a grid-cell index"): each report's cell on a
-- grid of 0.0025° × 0.0025° (about 280 m × 280 m at the equator), computed from its
-- exact location, and one btree per cell in list order (newest first). A `near` query
-- walks, for each cell its circle touches, that cell's newest reports, testing the
-- distance on the index entry (the coordinates and status are carried in it), and
-- merges the cells' first pages. Plain PostgreSQL: no extension needed.
--
-- cell = floor(latitude × 400) × 144001 + floor(longitude × 400); the longitude index
-- lies in [-72000, 72000] (144,001 values), so every cell has its own number.
-- `crate::queries::reports::geo_cell` computes the same number (same floating-point
-- operations) and must change with it.
ALTER TABLE reports ADD COLUMN geo_cell bigint GENERATED ALWAYS AS (
    floor(latitude * 400)::bigint * 144001 + floor(longitude * 400)::bigint
) STORED;

CREATE INDEX reports_geo_cell ON reports (geo_cell, submitted_at DESC, id DESC)
    INCLUDE (latitude, longitude, public_latitude, public_longitude, status);
