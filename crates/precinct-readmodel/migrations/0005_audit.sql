-- One row per event in the log: who did what to which target, when.
CREATE TABLE audit (
    position       bigint PRIMARY KEY,
    at             timestamptz NOT NULL,
    actor_kind     text NOT NULL,
    actor_id       uuid,
    actor_role     text,
    action         text NOT NULL,
    target_type    text NOT NULL,
    target_id      uuid NOT NULL,
    correlation_id uuid NOT NULL,
    command_id     uuid NOT NULL
);

CREATE INDEX audit_actor ON audit (actor_id, position) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_target ON audit (target_id, position);
CREATE INDEX audit_at ON audit (at);
