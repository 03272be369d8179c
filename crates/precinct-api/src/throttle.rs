//! Login throttling and per-address rate limits, shared by every API replica through
//! PostgreSQL (ADR 0010); command budgets per account, per process ([`CommandLimits`],
//! ADR 0012).
//!
//! Login attempts are throttled three ways:
//! - per **(account, client address)**: 5 consecutive failures lock that pair for 15
//!   minutes (how Precinct meets CJIS "lock after ≥ 5 consecutive failures": the
//!   account is locked *from that address*, so nobody elsewhere can lock it out);
//! - per **account**, for attempts from addresses the account has never logged in from:
//!   after 10 such failures each further attempt must wait a delay that doubles from 1 s
//!   up to 5 minutes — many addresses together get about 288 guesses a day at one account,
//!   while its owner, at an address they logged in from before, is not slowed at all;
//! - per **client address**, for attempts at accounts it never logged in to: 100
//!   failures an hour (password spraying from one address), high enough that a shared
//!   address's users are not refused in normal use, and never applied to an account
//!   that has logged in from there before.
//!
//! Every attempt, whatever its outcome, also counts in two fixed windows, so that a
//! flood of *correct* logins is refused before it costs argon2id work:
//! - per **client address**: 600 attempts per 10 minutes (room for a shared address's
//!   many users);
//! - per **account**: 20 logins per 10 minutes from every address together (a person
//!   logs in a few times an hour). A failure gives its charge back here — failures are
//!   bounded by the rules above, and counting them would let anyone, anywhere, use up
//!   the owner's logins.
//!
//! An attempt is *charged* when it is admitted (before the password is checked), so
//! concurrent attempts — on one replica or many — cannot all slip under a limit; a
//! success (or an attempt that never got to the check) gives the failure charges back,
//! an attempt that never got to the check the window charges too.
//!
//! [`LoginPolicy`] holds the pure rules (unit-tested below); [`LoginThrottle`] keeps
//! their state in `login_pairs` and `login_accounts`, and [`RateLimiter`] the fixed
//! windows of `rate_windows`, both through [`precinct_readmodel::throttle`] (the tables
//! and their SQL). [`RateLimit`] is the older in-process window of anonymous reports.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use precinct_readmodel::throttle::{StoreError, ThrottleStore, ThrottleTx};
use precinct_readmodel::PgPool;

pub use precinct_readmodel::throttle::{AccountState, PairState};

use crate::auth::Secret;
use crate::problem::ApiError;

/// The rules of login throttling. Defaults are the documented ones (ADR 0010).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Consecutive failures of one (account, address) pair that lock it (CJIS: ≤ 5).
    pub pair_max_failures: u32,
    /// How long a locked pair stays locked; consecutive failures older than this are
    /// forgotten.
    pub pair_lockout: Duration,
    /// Failures at an account, from addresses it never logged in from, before its
    /// back-off starts.
    pub account_free_failures: u32,
    /// The first back-off delay; it doubles with each further failure…
    pub account_base_delay: Duration,
    /// …up to this.
    pub account_max_delay: Duration,
    /// An account's failure count is forgotten after this long without an attempt.
    pub account_memory: Duration,
    /// Failures from one address, at accounts it never logged in to, per window.
    pub address_max_failures: u32,
    pub address_window: Duration,
    /// How long a successful login makes its address known for that account.
    pub known_address_ttl: Duration,
    /// Logins one account may make per window (successes: a failure gives its charge
    /// back, the rules above bound failures), from every address together.
    pub account_max_logins: u32,
    pub account_logins_window: Duration,
    /// Login attempts from one client address per window, whatever their outcome.
    pub address_max_logins: u32,
    pub address_logins_window: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            pair_max_failures: 5,
            pair_lockout: Duration::from_secs(15 * 60),
            account_free_failures: 10,
            account_base_delay: Duration::from_secs(1),
            account_max_delay: Duration::from_secs(5 * 60),
            account_memory: Duration::from_secs(24 * 3600),
            address_max_failures: 100,
            address_window: Duration::from_secs(3600),
            known_address_ttl: Duration::from_secs(90 * 24 * 3600),
            account_max_logins: 20,
            account_logins_window: Duration::from_secs(10 * 60),
            address_max_logins: 600,
            address_logins_window: Duration::from_secs(10 * 60),
        }
    }
}

/// Why an attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The (account, address) pair is locked.
    Pair,
    /// The account's back-off has not passed.
    Account,
    /// The address is over its failures for the window.
    Address,
    /// The account is over its logins for the window.
    AccountLogins,
    /// The address is over its login attempts for the window.
    AddressLogins,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::Pair => "pair",
            Refusal::Account => "account",
            Refusal::Address => "address",
            Refusal::AccountLogins => "account_logins",
            Refusal::AddressLogins => "address_logins",
        }
    }
}

/// An admitted attempt: the charged states to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub pair: PairState,
    /// `None`: the address is known for the account; the account and the address are not
    /// charged.
    pub account: Option<AccountState>,
}

fn dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Whole seconds from `now` to `until`, at least 1 (for `Retry-After`).
fn secs_until(now: DateTime<Utc>, until: DateTime<Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(0) as u64;
    ms.div_ceil(1000).max(1)
}

impl LoginPolicy {
    /// The back-off after `failures` charged failures at an account.
    pub fn account_delay(&self, failures: u32) -> Duration {
        if failures < self.account_free_failures {
            return Duration::ZERO;
        }
        let doublings = (failures - self.account_free_failures).min(30);
        self.account_base_delay
            .saturating_mul(1 << doublings)
            .min(self.account_max_delay)
    }

    /// May one more attempt be checked now? If so, the states with it charged.
    pub fn admit(
        &self,
        pair: PairState,
        account: AccountState,
        now: DateTime<Utc>,
    ) -> Result<Admitted, (Refusal, u64)> {
        let lockout = dur(self.pair_lockout);
        let pair_recent = pair.last_at.is_some_and(|t| now < t + lockout);
        if pair_recent && pair.failures >= self.pair_max_failures {
            let until = pair.last_at.unwrap_or(now) + lockout;
            return Err((Refusal::Pair, secs_until(now, until)));
        }
        let pair = PairState {
            failures: if pair_recent { pair.failures + 1 } else { 1 },
            last_at: Some(now),
            known_until: pair.known_until,
        };
        if pair.known_until.is_some_and(|k| now < k) {
            return Ok(Admitted {
                pair,
                account: None,
            });
        }
        let account_recent = account
            .last_at
            .is_some_and(|t| now < t + dur(self.account_memory));
        let failures = if account_recent { account.failures } else { 0 };
        if failures >= self.account_free_failures {
            if let Some(next) = account.next_at.filter(|n| now < *n) {
                return Err((Refusal::Account, secs_until(now, next)));
            }
        }
        let failures = failures + 1;
        Ok(Admitted {
            pair,
            account: Some(AccountState {
                failures,
                last_at: Some(now),
                next_at: Some(now + dur(self.account_delay(failures))),
            }),
        })
    }

    /// The states after a charged attempt turned out right (`success`) or was never
    /// checked: the charge is given back; a success also resets the pair's consecutive
    /// failures and makes the address known for the account.
    pub fn settle(
        &self,
        pair: PairState,
        account: AccountState,
        charged_account: bool,
        success: bool,
        now: DateTime<Utc>,
    ) -> (PairState, AccountState) {
        let pair = if success {
            PairState {
                failures: 0,
                last_at: pair.last_at,
                known_until: Some(now + dur(self.known_address_ttl)),
            }
        } else {
            PairState {
                failures: pair.failures.saturating_sub(1),
                ..pair
            }
        };
        let account = if charged_account {
            AccountState {
                failures: account.failures.saturating_sub(1),
                ..account
            }
        } else {
            account
        };
        (pair, account)
    }

    fn pair_expires(&self, pair: &PairState, now: DateTime<Utc>) -> DateTime<Utc> {
        let failures_end = pair.last_at.unwrap_or(now) + dur(self.pair_lockout);
        pair.known_until
            .map_or(failures_end, |k| k.max(failures_end))
    }

    fn account_expires(&self, account: &AccountState, now: DateTime<Utc>) -> DateTime<Utc> {
        let memory_end = account.last_at.unwrap_or(now) + dur(self.account_memory);
        account.next_at.map_or(memory_end, |n| n.max(memory_end))
    }
}

/// The throttle's key of an account: a keyed hash of the e-mail address as typed
/// (normalised when it parses), so the table holds no address in clear and unknown
/// addresses are throttled exactly like known ones (nothing tells them apart).
pub fn account_key(secret: &Secret, email: &str) -> String {
    use hmac::{Hmac, Mac};
    let normalised = precinct_domain::values::Email::parse_existing(email)
        .map(|e| e.as_str().to_string())
        .unwrap_or_else(|_| email.trim().to_lowercase());
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.expose()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(b"login-throttle|");
    mac.update(normalised.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The key of a client address in every per-address limit and scope (login pairs and
/// address windows, registrations, anonymous reports, anonymous idempotency keys): an
/// IPv4 address as itself (also written IPv6-mapped); an IPv6 address by its /64. One
/// IPv6 subscriber gets at least a /64 (RFC 6177) and picks any address in it at will —
/// privacy extensions even rotate it — so counting single IPv6 addresses would give
/// anyone an unlimited supply of fresh budgets. `unknown` without an address.
pub fn addr_key(addr: Option<IpAddr>) -> String {
    match addr.map(|a| a.to_canonical()) {
        None => "unknown".into(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::outage("login is unavailable right now; retry later", e)
}

fn refused(refusal: Refusal, retry_after_secs: u64) -> ApiError {
    ::metrics::counter!("precinct_login_throttled_total", "reason" => refusal.label()).increment(1);
    ApiError::TooManyRequests { retry_after_secs }
}

/// An admitted login attempt; settle it with [`LoginThrottle::succeeded`],
/// [`LoginThrottle::failed`] or [`LoginThrottle::not_checked`].
#[derive(Debug, Clone)]
pub struct Attempt {
    account: String,
    addr: String,
    charged_account: bool,
}

/// Login throttling over PostgreSQL.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    store: ThrottleStore,
    policy: LoginPolicy,
    windows: RateLimiter,
}

impl LoginThrottle {
    pub fn new(pool: PgPool, policy: LoginPolicy) -> Self {
        Self {
            windows: RateLimiter::new(pool.clone()),
            store: ThrottleStore::new(pool),
            policy,
        }
    }

    pub fn policy(&self) -> &LoginPolicy {
        &self.policy
    }

    fn address_window_key(addr: &str) -> String {
        format!("login-failures|{addr}")
    }

    fn address_logins_key(addr: &str) -> String {
        format!("login-attempts|{addr}")
    }

    fn account_logins_key(account: &str) -> String {
        format!("logins|{account}")
    }

    /// Admits (and charges) one attempt at `account` from `addr`, or refuses it (429).
    pub async fn admit(&self, account: String, addr: String) -> Result<Attempt, ApiError> {
        let now = Utc::now();
        let mut tx = self.store.begin().await.map_err(store_error)?;
        // One decision at a time per account, across every replica.
        tx.lock_account(&account).await.map_err(store_error)?;
        let (pair, acct) = tx.load(&account, &addr).await.map_err(store_error)?;
        let admitted = match self.policy.admit(pair, acct, now) {
            Ok(a) => a,
            Err((refusal, secs)) => return Err(refused(refusal, secs)),
        };
        if admitted.account.is_some() {
            let key = Self::address_window_key(&addr);
            let hit = self
                .windows
                .hit_in(
                    &mut tx,
                    &key,
                    self.policy.address_max_failures,
                    self.policy.address_window,
                    now,
                )
                .await
                .map_err(store_error)?;
            if let Err(secs) = hit {
                // Nothing of this attempt is kept: the transaction rolls back.
                return Err(refused(Refusal::Address, secs));
            }
        }
        // Every attempt, whatever its outcome, counts in the address's and the
        // account's login windows: a flood of correct logins is refused here, before it
        // costs any password work.
        let windows = [
            (
                Self::address_logins_key(&addr),
                self.policy.address_max_logins,
                self.policy.address_logins_window,
                Refusal::AddressLogins,
            ),
            (
                Self::account_logins_key(&account),
                self.policy.account_max_logins,
                self.policy.account_logins_window,
                Refusal::AccountLogins,
            ),
        ];
        for (key, max, window, refusal) in windows {
            let hit = self
                .windows
                .hit_in(&mut tx, &key, max, window, now)
                .await
                .map_err(store_error)?;
            if let Err(secs) = hit {
                return Err(refused(refusal, secs));
            }
        }
        let pair_expires = self.policy.pair_expires(&admitted.pair, now);
        tx.store_pair(&account, &addr, &admitted.pair, pair_expires)
            .await
            .map_err(store_error)?;
        if let Some(a) = &admitted.account {
            tx.store_account(&account, a, self.policy.account_expires(a, now))
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok(Attempt {
            account,
            addr,
            charged_account: admitted.account.is_some(),
        })
    }

    /// The password was right: the pair's failures are reset, the address becomes known
    /// for the account, the charges are given back. Best effort: the person typed the
    /// right password and gets in even if this write fails (the attempt then stays
    /// counted as one failure).
    pub async fn succeeded(&self, attempt: &Attempt) {
        if let Err(e) = self.settle(attempt, true).await {
            tracing::warn!(error = %e, "could not record a successful login's throttle state");
        }
    }

    /// The password was wrong: the attempt stays a failure, but gives back its charge of
    /// the account's logins (what got in is counted there; failures are bounded by the
    /// failure rules, from wherever they come). Best effort.
    pub async fn failed(&self, attempt: &Attempt) {
        if let Err(e) = self.give_back_account_logins(attempt).await {
            tracing::warn!(error = %e, "could not give back a failed login's charge");
        }
    }

    /// The password was never checked (e.g. 503): give the charges back. Best effort.
    pub async fn not_checked(&self, attempt: &Attempt) {
        if let Err(e) = self.settle(attempt, false).await {
            tracing::warn!(error = %e, "could not give back a login attempt's charge");
        }
    }

    async fn give_back_account_logins(&self, attempt: &Attempt) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        tx.give_back_window(&Self::account_logins_key(&attempt.account), Utc::now())
            .await?;
        tx.commit().await
    }

    async fn settle(&self, attempt: &Attempt, success: bool) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.store.begin().await?;
        tx.lock_account(&attempt.account).await?;
        let (pair, acct) = tx.load(&attempt.account, &attempt.addr).await?;
        let (pair, acct) = self
            .policy
            .settle(pair, acct, attempt.charged_account, success, now);
        let pair_expires = self.policy.pair_expires(&pair, now);
        tx.store_pair(&attempt.account, &attempt.addr, &pair, pair_expires)
            .await?;
        if attempt.charged_account {
            tx.store_account(
                &attempt.account,
                &acct,
                self.policy.account_expires(&acct, now),
            )
            .await?;
            tx.give_back_window(&Self::address_window_key(&attempt.addr), now)
                .await?;
        }
        if !success {
            // Never checked: it used no login either.
            tx.give_back_window(&Self::account_logins_key(&attempt.account), now)
                .await?;
            tx.give_back_window(&Self::address_logins_key(&attempt.addr), now)
                .await?;
        }
        tx.commit().await
    }
}

/// Fixed-window counters in `rate_windows`, shared by every replica: one atomic
/// statement counts a hit unless the window is full.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    store: ThrottleStore,
}

impl RateLimiter {
    pub fn new(pool: PgPool) -> Self {
        Self {
            store: ThrottleStore::new(pool),
        }
    }

    /// Counts one hit for `key`: `Ok(Err(seconds))` when the window already holds `max`.
    pub async fn hit(
        &self,
        key: &str,
        max: u32,
        window: Duration,
    ) -> Result<Result<(), u64>, ApiError> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let hit = self
            .hit_in(&mut tx, key, max, window, Utc::now())
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(hit)
    }

    async fn hit_in(
        &self,
        tx: &mut ThrottleTx,
        key: &str,
        max: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<Result<(), u64>, StoreError> {
        Ok(tx
            .hit_window(key, max, now, now + dur(window))
            .await?
            .map_err(|until| secs_until(now, until)))
    }
}

/// A fixed-window rate limit per key, in this process only (anonymous reports per
/// client address).
#[derive(Debug)]
pub struct RateLimit {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

impl RateLimit {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key`: `Err(seconds)` to wait when over the limit.
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(());
        };
        if entries.len() > 100_000 {
            entries.retain(|_, (_, start)| now.duration_since(*start) < self.window);
        }
        let e = entries.entry(key.to_string()).or_insert((0, now));
        if now.duration_since(e.1) >= self.window {
            *e = (0, now);
        }
        if e.0 >= self.max {
            return Err((self.window - now.duration_since(e.1)).as_secs().max(1));
        }
        e.0 += 1;
        Ok(())
    }
}

/// A command budget: up to `burst` commands at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRate {
    pub burst: u32,
    pub per_minute: u32,
}

/// The command budget of each account, by role (ADR 0012). A person reporting crimes
/// sends a report and perhaps a few corrections; a dispatcher triaging a busy queue
/// sends a command every few seconds, in bursts. A script sends dozens a second: the
/// citizen budget refuses it after `burst`, the staff budget leaves room for any human
/// pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRates {
    pub citizen: CommandRate,
    /// PATROL, DISPATCHER, SUPERVISOR, ADMIN.
    pub staff: CommandRate,
}

impl Default for CommandRates {
    fn default() -> Self {
        Self {
            citizen: CommandRate {
                burst: 10,
                per_minute: 6,
            },
            staff: CommandRate {
                burst: 60,
                per_minute: 120,
            },
        }
    }
}

/// A token bucket per account: each command takes a token; tokens come back steadily at
/// `per_minute`, up to `burst`.
#[derive(Debug)]
pub struct TokenBuckets {
    rate: CommandRate,
    buckets: Mutex<HashMap<uuid::Uuid, (f64, Instant)>>,
}

impl TokenBuckets {
    pub fn new(rate: CommandRate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`: `Err(seconds)` until the next one when there is none.
    pub fn take(&self, key: uuid::Uuid) -> Result<(), u64> {
        let now = Instant::now();
        let burst = f64::from(self.rate.burst.max(1));
        let per_sec = f64::from(self.rate.per_minute) / 60.0;
        let refilled = |tokens: f64, at: Instant| {
            (tokens + now.duration_since(at).as_secs_f64() * per_sec).min(burst)
        };
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            // Bound memory: a full bucket is the same as none.
            buckets.retain(|_, (tokens, at)| refilled(*tokens, *at) < burst);
        }
        let (tokens, at) = buckets.entry(key).or_insert((burst, now));
        let available = refilled(*tokens, *at);
        *at = now;
        if available >= 1.0 {
            *tokens = available - 1.0;
            return Ok(());
        }
        *tokens = available;
        let wait = if per_sec > 0.0 {
            ((1.0 - available) / per_sec).ceil()
        } else {
            60.0
        };
        // `wait` is a small positive number of seconds (at most a minute per token).
        Err((wait as u64).max(1))
    }
}

/// Budgets of the reads that fold or page one report from the log (`GET
/// /crimes/{id}?as_of=…`, `GET /crimes/{id}/history`), per caller and per process: each
/// reads up to a whole report's stream (1,000 events of up to ~13 KB), far more than a
/// read-model query, so one caller looping on them must not take the process's log
/// reads from everyone else (review of issue 13, N2; ADR 0010). Signed-in callers are
/// counted by account (staff at the staff rate); anonymous ones (tracking-token holders)
/// by client address ([`addr_key`]).
#[derive(Debug)]
pub struct LogReadLimits {
    citizen: TokenBuckets,
    staff: TokenBuckets,
}

/// Namespace of the bucket keys of anonymous callers (one per client address key).
const ANONYMOUS_READER_NS: uuid::Uuid =
    uuid::Uuid::from_u128(0x3f0b_7c1e_2a94_4d6b_8e55_c0d1_9a7e_b214);

impl LogReadLimits {
    pub fn new(rates: CommandRates) -> Self {
        Self {
            citizen: TokenBuckets::new(rates.citizen),
            staff: TokenBuckets::new(rates.staff),
        }
    }

    /// Counts one log read of `caller` (or of the anonymous client at `addr`): 429 with
    /// the seconds to wait when over budget.
    pub fn take(
        &self,
        caller: Option<&crate::auth::Caller>,
        addr: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let taken = match caller {
            Some(c) if c.role.is_staff() => self.staff.take(c.id.as_uuid()),
            Some(c) => self.citizen.take(c.id.as_uuid()),
            None => self.citizen.take(uuid::Uuid::new_v5(
                &ANONYMOUS_READER_NS,
                addr_key(addr).as_bytes(),
            )),
        };
        taken.map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })
    }
}

impl CommandRates {
    /// The default budgets of log reads (`as_of`, history) per caller: a person looks
    /// at an old version of a report now and then, a dispatcher pages through a long
    /// history; a script looping on them is refused after the burst.
    pub fn log_reads() -> Self {
        Self {
            citizen: CommandRate {
                burst: 10,
                per_minute: 20,
            },
            staff: CommandRate {
                burst: 30,
                per_minute: 120,
            },
        }
    }
}

impl CommandRates {
    /// The default budgets of CSV exports per caller (ADR 0030): an export reads a whole
    /// list, up to every report; a person exports now and then, a script looping on
    /// exports is refused after the burst.
    pub fn exports() -> Self {
        Self {
            citizen: CommandRate {
                burst: 5,
                per_minute: 10,
            },
            staff: CommandRate {
                burst: 10,
                per_minute: 30,
            },
        }
    }
}

/// The command budgets of every account in this process (ADR 0012).
#[derive(Debug)]
pub struct CommandLimits {
    citizen: TokenBuckets,
    staff: TokenBuckets,
}

impl CommandLimits {
    pub fn new(rates: CommandRates) -> Self {
        Self {
            citizen: TokenBuckets::new(rates.citizen),
            staff: TokenBuckets::new(rates.staff),
        }
    }

    /// Counts one command of `caller`: 429 with the seconds to wait when over budget.
    pub fn take(&self, caller: &crate::auth::Caller) -> Result<(), crate::problem::ApiError> {
        let buckets = if caller.role.is_staff() {
            &self.staff
        } else {
            &self.citizen
        };
        buckets
            .take(caller.id.as_uuid())
            .map_err(
                |retry_after_secs| crate::problem::ApiError::TooManyRequests { retry_after_secs },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_the_wait_for_the_next_token() {
        let b = TokenBuckets::new(CommandRate {
            burst: 3,
            per_minute: 6,
        });
        let me = uuid::Uuid::from_u128(1);
        for _ in 0..3 {
            assert_eq!(b.take(me), Ok(()));
        }
        assert_eq!(b.take(me), Err(10), "one token every 10 s");
        assert_eq!(
            b.take(uuid::Uuid::from_u128(2)),
            Ok(()),
            "buckets are per key"
        );
    }

    #[test]
    fn a_bucket_without_refill_asks_for_a_minute() {
        let b = TokenBuckets::new(CommandRate {
            burst: 1,
            per_minute: 0,
        });
        let me = uuid::Uuid::from_u128(1);
        assert_eq!(b.take(me), Ok(()));
        assert_eq!(b.take(me), Err(60));
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    /// Runs `n` failed attempts at `now`, one second apart; returns the states.
    fn fail_n(
        p: &LoginPolicy,
        mut pair: PairState,
        mut acct: AccountState,
        n: u32,
        now: DateTime<Utc>,
    ) -> (PairState, AccountState) {
        for i in 0..n {
            let a = p
                .admit(pair, acct, now + secs(i as i64))
                .unwrap_or_else(|e| panic!("attempt {i} refused: {e:?}"));
            pair = a.pair;
            acct = a.account.unwrap_or(acct);
        }
        (pair, acct)
    }

    #[test]
    fn five_consecutive_failures_lock_the_pair_for_the_lockout() {
        let p = LoginPolicy::default();
        let (pair, acct) = fail_n(&p, PairState::default(), AccountState::default(), 5, t0());
        let at = t0() + secs(10);
        assert_eq!(
            p.admit(pair, acct, at).map(|_| ()),
            Err((Refusal::Pair, 15 * 60 - 6))
        );
        // After the lock-out, the pair may try again (its failures are forgotten).
        let later = t0() + secs(4) + secs(15 * 60);
        let a = p.admit(pair, acct, later).expect("unlocked");
        assert_eq!(a.pair.failures, 1);
    }

    #[test]
    fn a_success_resets_the_pair_and_makes_the_address_known() {
        let p = LoginPolicy::default();
        let (pair, acct) = fail_n(&p, PairState::default(), AccountState::default(), 4, t0());
        let a = p.admit(pair, acct, t0() + secs(5)).expect("fifth");
        let (pair, acct) = p.settle(a.pair, a.account.unwrap_or(acct), true, true, t0());
        assert_eq!(pair.failures, 0);
        assert_eq!(acct.failures, 4, "the right attempt's charge is given back");
        assert!(pair
            .known_until
            .is_some_and(|k| k > t0() + secs(80 * 86400)));
        // Known: the account's back-off does not apply to this address.
        let busy = AccountState {
            failures: 50,
            last_at: Some(t0()),
            next_at: Some(t0() + secs(300)),
        };
        let a = p.admit(pair, busy, t0() + secs(6)).expect("known address");
        assert_eq!(
            a.account, None,
            "known addresses charge nothing to the account"
        );
    }

    #[test]
    fn the_account_backs_off_doubling_up_to_the_cap() {
        let p = LoginPolicy::default();
        assert_eq!(p.account_delay(9), Duration::ZERO);
        assert_eq!(p.account_delay(10), Duration::from_secs(1));
        assert_eq!(p.account_delay(11), Duration::from_secs(2));
        assert_eq!(p.account_delay(18), Duration::from_secs(256));
        assert_eq!(p.account_delay(19), Duration::from_secs(300));
        assert_eq!(p.account_delay(u32::MAX), Duration::from_secs(300));
        // Ten failures from ten addresses: the eleventh address waits one second.
        let mut acct = AccountState::default();
        for i in 0..10 {
            let a = p
                .admit(PairState::default(), acct, t0())
                .unwrap_or_else(|e| panic!("attempt {i}: {e:?}"));
            acct = a.account.expect("charged");
        }
        assert_eq!(
            p.admit(PairState::default(), acct, t0()).map(|_| ()),
            Err((Refusal::Account, 1))
        );
        let a = p
            .admit(PairState::default(), acct, t0() + secs(1))
            .expect("after the delay");
        assert_eq!(a.account.and_then(|a| a.next_at), Some(t0() + secs(3)));
    }

    #[test]
    fn an_account_forgets_failures_after_its_memory() {
        let p = LoginPolicy::default();
        let acct = AccountState {
            failures: 40,
            last_at: Some(t0()),
            next_at: Some(t0() + secs(300)),
        };
        let a = p
            .admit(PairState::default(), acct, t0() + secs(24 * 3600))
            .expect("forgotten");
        assert_eq!(a.account.map(|a| a.failures), Some(1));
    }

    #[test]
    fn a_locked_pair_is_refused_even_at_a_known_address() {
        let p = LoginPolicy::default();
        let pair = PairState {
            failures: 5,
            last_at: Some(t0()),
            known_until: Some(t0() + secs(86400)),
        };
        assert!(matches!(
            p.admit(pair, AccountState::default(), t0() + secs(1)),
            Err((Refusal::Pair, _))
        ));
    }

    #[test]
    fn an_unchecked_attempt_gives_its_charges_back() {
        let p = LoginPolicy::default();
        let a = p
            .admit(PairState::default(), AccountState::default(), t0())
            .expect("admitted");
        let acct = a.account.expect("charged");
        let (pair, acct) = p.settle(a.pair, acct, true, false, t0());
        assert_eq!((pair.failures, acct.failures), (0, 0));
        assert_eq!(pair.known_until, None);
    }

    /// Review of issue 13, N6: one IPv6 subscriber holds a whole /64 (and picks any
    /// address in it): per-address limits count the /64.
    #[test]
    fn address_keys_are_v4_addresses_and_v6_slash_64s() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert_eq!(addr_key(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(addr_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(addr_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(
            addr_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            addr_key(ip("2001:db8:1:2::1")),
        );
        assert_ne!(
            addr_key(ip("2001:db8:1:3::1")),
            addr_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(addr_key(None), "unknown");
    }

    #[test]
    fn anonymous_log_reads_are_budgeted_per_address_and_v6_slash_64() {
        let limits = LogReadLimits::new(CommandRates {
            citizen: CommandRate {
                burst: 2,
                per_minute: 0,
            },
            staff: CommandRate {
                burst: 100,
                per_minute: 0,
            },
        });
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        for _ in 0..2 {
            assert!(limits.take(None, ip("2001:db8:1:2::1")).is_ok());
        }
        assert!(matches!(
            limits.take(None, ip("2001:db8:1:2::ffff")),
            Err(ApiError::TooManyRequests {
                retry_after_secs: 60
            })
        ));
        assert!(limits.take(None, ip("2001:db8:1:3::1")).is_ok());
        assert!(limits.take(None, ip("198.51.100.7")).is_ok());
    }

    #[test]
    fn account_keys_are_keyed_hashes_of_the_normalised_address() {
        let s = Secret::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let k = account_key(&s, " Ana@Example.com ");
        assert_eq!(k, account_key(&s, "ana@example.com"));
        assert!(!k.contains("ana"));
        assert_ne!(
            k,
            account_key(&Secret::new(b"other".to_vec()), "ana@example.com")
        );
    }
}
