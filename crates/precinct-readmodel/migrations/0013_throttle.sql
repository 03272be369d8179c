-- Login throttling and per-address rate limits (ADR 0010): operational state shared by
-- every API replica. Not a read model: not derived from the log, left alone by
-- `precinct rebuild`; API processes delete rows whose `expires_at` has passed.

-- One (account, client address) pair: its consecutive failures (the CJIS lock-out) and
-- whether the account has logged in from this address ("known": not slowed by the
-- account's back-off). `account_key` is a keyed hash of the e-mail, never the address.
CREATE TABLE login_pairs (
    account_key text NOT NULL,
    client_addr text NOT NULL,
    failures integer NOT NULL,
    last_at timestamptz,
    known_until timestamptz,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (account_key, client_addr)
);
CREATE INDEX login_pairs_expires ON login_pairs (expires_at);

-- One account, over the addresses it has not logged in from: the progressive back-off.
CREATE TABLE login_accounts (
    account_key text PRIMARY KEY,
    failures integer NOT NULL,
    last_at timestamptz,
    next_at timestamptz,
    expires_at timestamptz NOT NULL
);
CREATE INDEX login_accounts_expires ON login_accounts (expires_at);

-- Fixed windows: login failures per address, registrations per address.
CREATE TABLE rate_windows (
    key text PRIMARY KEY,
    hits integer NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX rate_windows_expires ON rate_windows (expires_at);
