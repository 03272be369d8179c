-- Every HTTP request, for compliance; projected from the request-record stream, whose
-- sequence number is `seq`.
CREATE TABLE request_log (
    seq         bigint PRIMARY KEY,
    at          timestamptz NOT NULL,
    request_id  text NOT NULL,
    actor_id    uuid,
    method      text NOT NULL,
    path        text NOT NULL,
    status      integer NOT NULL,
    latency_ms  double precision NOT NULL,
    client_addr text
);

CREATE INDEX request_log_at ON request_log (at DESC, seq DESC);
CREATE INDEX request_log_actor ON request_log (actor_id, at DESC, seq DESC)
    WHERE actor_id IS NOT NULL;
CREATE INDEX request_log_path ON request_log (path text_pattern_ops);
CREATE INDEX request_log_status ON request_log (status, at DESC, seq DESC);
