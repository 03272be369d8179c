-- Reporter e-mail (issue 18 item 3, ADR 0033).
--
-- The mail ledger: not a read model (never rebuilt from the log, written only by the
-- active mailer). No address is stored here: the mailer reads it from the log, through
-- the vault, at each send (erased: nothing is sent).
--
-- `mail_cursor`: the last log position the mailer has handled (mailed, failed for good,
-- or nothing to mail). One row.
CREATE TABLE mail_cursor (
    name       text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (report, log position) mailed or tried.
CREATE TABLE mail_deliveries (
    report_id        uuid NOT NULL,
    position         bigint NOT NULL,
    -- ASSIGNED, RESOLVED, CLOSED, REJECTED or UPDATE.
    kind             text NOT NULL,
    -- SENT, RETRYING or FAILED.
    status           text NOT NULL,
    attempts         integer NOT NULL,
    -- A class of failure or the SMTP reply code, never the address.
    last_error       text,
    first_attempt_at timestamptz NOT NULL,
    last_attempt_at  timestamptz NOT NULL,
    sent_at          timestamptz,
    PRIMARY KEY (report_id, position)
);
