-- A rebuild drops the secondary indexes of the tables it refills and builds them again
-- once the log is replayed (one sort per index instead of an insertion per row and per
-- update). Each dropped index's definition is recorded here in the transaction that
-- drops it, and deleted in the transaction that recreates it, so a rebuild that dies
-- half-way leaves its indexes here; `precinct_readmodel::migrate` recreates them at the
-- next start of any process (ADR 0041).
CREATE TABLE deferred_indexes (
    name        text PRIMARY KEY,
    table_name  text NOT NULL,
    definition  text NOT NULL,
    deferred_at timestamptz NOT NULL DEFAULT now()
);
