-- Where each projector stands in its source: the last position it applied, written in
-- the same transaction as the read-model change it made. A poison event leaves its
-- position and the error here (failed_position is always position + 1).
CREATE TABLE checkpoints (
    projection      text PRIMARY KEY,
    position        bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    failed_position bigint,
    error           text
);
