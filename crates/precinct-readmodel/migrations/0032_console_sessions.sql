-- Browser sessions of the console (ADR 0029): operational state shared by every API
-- replica. Not a read model: not derived from the log, left alone by `precinct rebuild`.
-- A session's cookie carries a short-lived token naming the session (`sid`); a request
-- authenticated by such a token is refused unless its row is here, not revoked and not
-- past `expires_at` (the session's absolute end). Logout sets `revoked_at`, which every
-- replica sees at the next request. API processes delete rows past `expires_at`.
CREATE TABLE console_sessions (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
CREATE INDEX console_sessions_account ON console_sessions (account_id);
