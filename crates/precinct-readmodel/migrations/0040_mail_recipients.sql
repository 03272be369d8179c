-- The supervisors' SLA alert mails (ADR 0035, e-mail to supervisors): one row per
-- (event, supervisor account), so one refused or unusable address fails only its own
-- mail and a restart resends only what was not done. A table of its own, next to the
-- reporter mails of `mail_deliveries` (whose key a mailer of the previous release still
-- writes under during a rolling upgrade). The recipient is an account id, never an
-- address.
CREATE TABLE mail_alert_deliveries (
    report_id        uuid NOT NULL,
    position         bigint NOT NULL,
    recipient        uuid NOT NULL,
    -- SLA_BREACH or SLA_ESCALATION.
    kind             text NOT NULL,
    -- SENT, RETRYING or FAILED.
    status           text NOT NULL,
    attempts         integer NOT NULL,
    last_error       text,
    first_attempt_at timestamptz NOT NULL,
    last_attempt_at  timestamptz NOT NULL,
    sent_at          timestamptz,
    PRIMARY KEY (report_id, position, recipient)
);
