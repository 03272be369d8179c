//! The login throttle's state in PostgreSQL (ADR 0010; migration `0013_throttle.sql`):
//! operational state of the API, shared by its replicas — **not a read model**: no
//! projector writes it, nothing in the log derives it, and a rebuild leaves it alone.
//!
//! The rules (when to lock, how long to wait) are the API's
//! (`precinct_api::throttle::LoginPolicy`); this module only loads and stores what they
//! count, in a transaction the caller drives ([`ThrottleTx`]):
//! - `login_pairs`: one (account, client address) pair's consecutive failures;
//! - `login_accounts`: one account's failures from addresses it never logged in from;
//! - `rate_windows`: fixed-window counters per key (failures per address, registrations).

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

/// One (account, address) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairState {
    /// Consecutive charged attempts not yet given back (failures, or still being checked).
    pub failures: u32,
    pub last_at: Option<DateTime<Utc>>,
    /// Until when this address counts as the account's own.
    pub known_until: Option<DateTime<Utc>>,
}

/// One account, over every address it has not logged in from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountState {
    pub failures: u32,
    pub last_at: Option<DateTime<Utc>>,
    /// With `failures` at or over the free allowance: no attempt before this.
    pub next_at: Option<DateTime<Utc>>,
}

/// The throttle store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("login throttle store: {0}")]
pub struct StoreError(#[from] sqlx::Error);

/// Advisory-lock class of login throttling: the two-key form, so it never meets the
/// projectors' one-key locks.
const LOCK_CLASS: i32 = 0x7410;

/// The throttle's tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ThrottleStore {
    pool: PgPool,
}

impl ThrottleStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Starts a transaction; nothing of it is kept unless [`ThrottleTx::commit`]ted.
    pub async fn begin(&self) -> Result<ThrottleTx, StoreError> {
        Ok(ThrottleTx {
            tx: self.pool.begin().await?,
        })
    }
}

/// One decision's reads and writes, committed together.
#[derive(Debug)]
pub struct ThrottleTx {
    tx: Transaction<'static, Postgres>,
}

/// A counter row: (failures, last attempt, and `known_until` or `next_at`).
type CounterRow = (i32, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn stored(n: u32) -> i32 {
    n.min(i32::MAX as u32) as i32
}

impl ThrottleTx {
    /// Takes the account's lock until the end of the transaction: one decision at a time
    /// per account, across every replica.
    pub async fn lock_account(&mut self, account: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(account)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The pair's and the account's counters (defaults when there are none).
    pub async fn load(
        &mut self,
        account: &str,
        addr: &str,
    ) -> Result<(PairState, AccountState), StoreError> {
        let pair: Option<CounterRow> = sqlx::query_as(
            "SELECT failures, last_at, known_until FROM login_pairs \
             WHERE account_key = $1 AND client_addr = $2",
        )
        .bind(account)
        .bind(addr)
        .fetch_optional(&mut *self.tx)
        .await?;
        let acct: Option<CounterRow> = sqlx::query_as(
            "SELECT failures, last_at, next_at FROM login_accounts WHERE account_key = $1",
        )
        .bind(account)
        .fetch_optional(&mut *self.tx)
        .await?;
        let pair = pair
            .map(|(failures, last_at, known_until)| PairState {
                failures: failures.max(0) as u32,
                last_at,
                known_until,
            })
            .unwrap_or_default();
        let acct = acct
            .map(|(failures, last_at, next_at)| AccountState {
                failures: failures.max(0) as u32,
                last_at,
                next_at,
            })
            .unwrap_or_default();
        Ok((pair, acct))
    }

    /// Stores the pair's counters, kept until `expires_at`.
    pub async fn store_pair(
        &mut self,
        account: &str,
        addr: &str,
        pair: &PairState,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_pairs (account_key, client_addr, failures, last_at, known_until, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account_key, client_addr) DO UPDATE SET failures = EXCLUDED.failures, \
             last_at = EXCLUDED.last_at, known_until = EXCLUDED.known_until, \
             expires_at = EXCLUDED.expires_at",
        )
        .bind(account)
        .bind(addr)
        .bind(stored(pair.failures))
        .bind(pair.last_at)
        .bind(pair.known_until)
        .bind(expires_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores the account's counters, kept until `expires_at`.
    pub async fn store_account(
        &mut self,
        account: &str,
        a: &AccountState,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_accounts (account_key, failures, last_at, next_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_key) DO UPDATE SET failures = EXCLUDED.failures, \
             last_at = EXCLUDED.last_at, next_at = EXCLUDED.next_at, \
             expires_at = EXCLUDED.expires_at",
        )
        .bind(account)
        .bind(stored(a.failures))
        .bind(a.last_at)
        .bind(a.next_at)
        .bind(expires_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Counts one hit for `key` in its fixed window (a new window, ending at
    /// `window_end`, when the last one has passed by `now`) unless the window already
    /// holds `max`: then `Ok(Err(end))`, the end of the full window. One atomic
    /// statement, so concurrent hits never both slip under the limit.
    pub async fn hit_window(
        &mut self,
        key: &str,
        max: u32,
        now: DateTime<Utc>,
        window_end: DateTime<Utc>,
    ) -> Result<Result<(), DateTime<Utc>>, StoreError> {
        let counted: Option<i32> = sqlx::query_scalar(
            "INSERT INTO rate_windows AS w (key, hits, expires_at) VALUES ($1, 1, $3) \
             ON CONFLICT (key) DO UPDATE SET \
               hits = CASE WHEN w.expires_at <= $2 THEN 1 ELSE w.hits + 1 END, \
               expires_at = CASE WHEN w.expires_at <= $2 THEN EXCLUDED.expires_at \
                            ELSE w.expires_at END \
             WHERE w.expires_at <= $2 OR w.hits < $4 \
             RETURNING hits",
        )
        .bind(key)
        .bind(now)
        .bind(window_end)
        .bind(stored(max))
        .fetch_optional(&mut *self.tx)
        .await?;
        if max > 0 && counted.is_some() {
            return Ok(Ok(()));
        }
        let until: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT expires_at FROM rate_windows WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(Err(until.unwrap_or(window_end)))
    }

    /// Gives one hit of `key`'s current window back.
    pub async fn give_back_window(
        &mut self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE rate_windows SET hits = greatest(hits - 1, 0) \
             WHERE key = $1 AND expires_at > $2",
        )
        .bind(key)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}

/// Deletes the throttle rows whose every deadline has passed (at most `batch` per table
/// per call); returns how many went.
pub async fn purge_expired(pool: &PgPool, batch: i64) -> Result<u64, StoreError> {
    let mut n = 0;
    for table in ["login_pairs", "login_accounts", "rate_windows"] {
        n += sqlx::query(&format!(
            "DELETE FROM {table} WHERE ctid IN \
             (SELECT ctid FROM {table} WHERE expires_at < now() LIMIT $1)"
        ))
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok(n)
}
