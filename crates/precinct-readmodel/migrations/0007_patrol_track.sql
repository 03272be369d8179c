-- A down-sampled track of each patrol, projected from the positions stream (whose
-- sequence is `seq`): the first position of a patrol in each bucket of recorded time
-- (`PRECINCT_ROSTER_TRACK_INTERVAL_SECS`, 30 s by default). The bucket key makes a
-- replay insert nothing twice, so this table outlives the stream's retention and a
-- rebuild does not truncate it. The roster's `patrols.latitude/longitude/location_at`
-- are written by the same projection (checkpoint `patrol_positions`).
CREATE TABLE patrol_track (
    patrol_id   uuid NOT NULL,
    bucket      timestamptz NOT NULL,
    seq         bigint NOT NULL,
    station_id  uuid NOT NULL,
    latitude    double precision NOT NULL,
    longitude   double precision NOT NULL,
    heading     double precision,
    speed_mps   double precision,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (patrol_id, bucket)
);

CREATE INDEX patrol_track_station ON patrol_track (station_id, bucket);
