//! [`AccountDirectory`]: every account's current role, station and standing (active,
//! erased, which tokens are revoked), in this process's memory, fed from the log — so
//! that each request is authorized by the account as it is now, not as its token
//! remembers it, without a database or log round trip per request (ADR 0011).
//!
//! - **Fed from the log.** One filtered ordered consumer of the `account` and `subject`
//!   streams from the start of the log (the initial load), then live. Personal fields are
//!   never opened here ([`precinct_vault::Redacted`]): access needs none of them.
//! - **Known fresh, or not used.** A probe asks the log's leader, every
//!   [`AccessConfig::probe_interval`], for the position of the last account or subject
//!   event, and marks the view fresh as of the probe's start once it has applied that
//!   position. A request trusts the view only if it was fresh within
//!   [`AccessConfig::max_staleness`]; otherwise (at start, or while the consumer lags or
//!   NATS is unreachable) it reads the account's streams from the log instead. So a
//!   change acknowledged by the log takes effect in every process within
//!   `max_staleness` (default 800 ms), whatever the state of its consumer.
//! - **Never older than the token.** A token carries the account stream's version at
//!   issue (`ver`); a view that has not seen that version (a login on another process
//!   right after a change) reads the account from the log for that request.
//! - **Streams.** [`AccountDirectory::changed`] resolves when an account's standing
//!   differs from what a long-lived connection was opened with: SSE streams end on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use precinct_app::uow::decode;
use precinct_app::AppError;
use precinct_domain::account::{Account, AccountEvent};
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::subject::{DataSubject, SubjectEvent};
use precinct_domain::values::Role;
use precinct_domain::Aggregate;
use precinct_eventlog::{EventLog, ReadError, RecordedEvent, StreamId};
use precinct_retry::Backoff;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The aggregate types the view follows.
const FOLLOWED: &[&str] = &[Account::TYPE, DataSubject::TYPE];

/// Most changes to accounts not held yet whose floors are kept
/// ([`AccountDirectory::changed_here`]).
const EARLY_FLOORS_MAX: usize = 100_000;

/// How fresh the view must be to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessConfig {
    /// A request trusts the view only if it was known to be current this recently;
    /// otherwise it reads the account from the log. The bound on how long a change to
    /// an account takes to reach every process. Default 800 ms.
    pub max_staleness: Duration,
    /// How often the view checks that it is current. Default 200 ms.
    pub probe_interval: Duration,
    /// How often an open stream re-checks its account even without a change notice
    /// (it then reads the log if the view is not fresh). Default 1 s.
    pub stream_recheck: Duration,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            max_staleness: Duration::from_millis(800),
            probe_interval: Duration::from_millis(200),
            stream_recheck: Duration::from_secs(1),
        }
    }
}

/// What authorization needs to know about an account, as of `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub role: Role,
    pub station_id: Option<StationId>,
    pub active: bool,
    /// The account's data subject was erased: it can no longer sign in or act.
    pub erased: bool,
    /// The account stream's version (log position of its last event) this is as of.
    pub version: u64,
    /// Tokens issued at an account version below this are refused: the position of the
    /// last deactivation or password change (a later reactivation does not revive them).
    pub tokens_from: u64,
}

/// Why a token is no longer honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Revoked {
    #[error("the account does not exist")]
    Unknown,
    #[error("the account was erased")]
    Erased,
    #[error("the account is deactivated")]
    Inactive,
    #[error("the token was issued before the account was deactivated or its password changed")]
    Superseded,
}

impl Access {
    fn registered(role: Role, station_id: Option<StationId>, position: u64) -> Self {
        Self {
            role,
            station_id,
            active: true,
            erased: false,
            version: position,
            tokens_from: 0,
        }
    }

    /// Folds one account event recorded at `position` (events already reflected are
    /// skipped: a direct read may have installed a newer state than the consumer's).
    fn apply(&mut self, event: &AccountEvent, position: u64) {
        if position <= self.version {
            return;
        }
        self.version = position;
        match event {
            AccountEvent::AccountRegistered(e) => {
                *self = Access {
                    erased: self.erased,
                    ..Access::registered(e.role, e.station_id, position)
                };
            }
            AccountEvent::AccountRoleChanged(e) => {
                self.role = e.role;
                self.station_id = e.station_id;
            }
            AccountEvent::AccountDeactivated(_) => {
                self.active = false;
                self.tokens_from = position;
            }
            AccountEvent::AccountReactivated(_) => self.active = true,
            // A new password revokes every token issued before it, as a deactivation does.
            AccountEvent::AccountPasswordChanged(_) => self.tokens_from = position,
            AccountEvent::AccountRenamed(_) => {}
        }
    }

    /// Whether a token issued at account version `token_version` may act, and if not,
    /// why.
    pub fn check(&self, token_version: u64) -> Result<(), Revoked> {
        if self.erased {
            Err(Revoked::Erased)
        } else if !self.active {
            Err(Revoked::Inactive)
        } else if token_version < self.tokens_from {
            Err(Revoked::Superseded)
        } else {
            Ok(())
        }
    }

    /// Whether what a connection may do is unchanged (role, station, standing).
    pub fn same_standing(&self, other: &Access) -> bool {
        (
            self.role,
            self.station_id,
            self.active,
            self.erased,
            self.tokens_from,
        ) == (
            other.role,
            other.station_id,
            other.active,
            other.erased,
            other.tokens_from,
        )
    }
}

struct Entry {
    access: Access,
    /// When a direct read of the log confirmed this entry (it is current as of then,
    /// whatever the consumer's state).
    confirmed_at: Option<Instant>,
    /// The position of the last event of the account's or its data subject's stream
    /// this entry reflects.
    seen: u64,
    /// The position of the last change this process made to the account (or its
    /// subject): the entry answers nothing until it has seen it.
    floor: u64,
}

impl Entry {
    fn new(access: Access, seen: u64) -> Self {
        Entry {
            access,
            confirmed_at: None,
            seen,
            floor: 0,
        }
    }
}

/// Whether an entry may answer a request: the view (or a direct read of this entry) is
/// recent enough, it reflects every change this process made to the account, and it is
/// at least as new as the token.
fn usable(
    entry: &Entry,
    view_fresh: bool,
    token_version: u64,
    now: Instant,
    max_staleness: Duration,
) -> bool {
    let confirmed = entry
        .confirmed_at
        .is_some_and(|t| now.saturating_duration_since(t) <= max_staleness);
    (view_fresh || confirmed) && entry.seen >= entry.floor && entry.access.version >= token_version
}

struct Inner {
    /// The log with personal fields redacted (never opened here).
    log: EventLog,
    config: AccessConfig,
    entries: RwLock<HashMap<Uuid, Entry>>,
    /// Last log position the consumer applied.
    applied: watch::Sender<u64>,
    /// The view had applied every followed event the log held at this instant.
    fresh_at: Mutex<Option<Instant>>,
    /// Floors of changes this process made to accounts the view held no entry for yet
    /// ([`AccountDirectory::changed_here`]); the entry takes its floor when it is made.
    /// Locked after `entries`, never before.
    early_floors: Mutex<HashMap<Uuid, u64>>,
}

/// Accounts as they are now. Cheap to clone.
#[derive(Clone)]
pub struct AccountDirectory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AccountDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountDirectory")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl AccountDirectory {
    /// A directory over `log`; until [`AccountDirectory::start`] runs its consumer, every
    /// lookup reads the log.
    pub fn new(log: &EventLog, config: AccessConfig) -> Self {
        let (applied, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                log: log.clone().with_opener(Arc::new(precinct_vault::Redacted)),
                config,
                entries: RwLock::new(HashMap::new()),
                applied,
                fresh_at: Mutex::new(None),
                early_floors: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &AccessConfig {
        &self.inner.config
    }

    /// Starts the consumer and the freshness probe; both stop on `shutdown`.
    pub fn start(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let follow = tokio::spawn(self.clone().follow(shutdown.clone()));
        let probe = tokio::spawn(self.clone().probe(shutdown));
        tokio::spawn(async move {
            let _ = follow.await;
            let _ = probe.await;
        })
    }

    /// Whether the view was known current within the staleness bound.
    pub fn is_fresh(&self) -> bool {
        self.fresh_at().is_some_and(|t| {
            Instant::now().saturating_duration_since(t) <= self.inner.config.max_staleness
        })
    }

    fn fresh_at(&self) -> Option<Instant> {
        self.inner.fresh_at.lock().ok().and_then(|f| *f)
    }

    /// The account as it is now, at least as new as `token_version`: from memory when
    /// the view is fresh, else from the log. `None`: no such account.
    pub async fn current(
        &self,
        id: AccountId,
        token_version: u64,
    ) -> Result<Option<Access>, AppError> {
        let now = Instant::now();
        let view_fresh = self.is_fresh();
        if let Ok(entries) = self.inner.entries.read() {
            if let Some(entry) = entries.get(&id.as_uuid()) {
                if usable(
                    entry,
                    view_fresh,
                    token_version,
                    now,
                    self.inner.config.max_staleness,
                ) {
                    return Ok(Some(entry.access));
                }
            }
        }
        crate::metrics::account_view_log_read();
        self.read_from_log(id, now).await
    }

    /// This process changed account (or data subject) `id`: the change's last event on
    /// its stream is at `position` (acknowledged by the log). Until the view has seen
    /// it, requests of that account read the log, so the change takes effect at once
    /// here (other processes: within [`AccessConfig::max_staleness`]). For an account
    /// the view does not hold yet, the floor waits for its entry.
    pub fn changed_here(&self, id: Uuid, position: u64) {
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get_mut(&id) {
            Some(entry) => entry.floor = entry.floor.max(position),
            // A read of the log may be under way and install the account as it was
            // before this change: the entry it makes starts at this floor.
            None => {
                let mut early = self
                    .inner
                    .early_floors
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Bounded: the consumer makes entries as it goes, taking these; past
                // the bound (a consumer stopped for long) the staleness bound applies.
                if early.len() < EARLY_FLOORS_MAX || early.contains_key(&id) {
                    let floor = early.entry(id).or_insert(position);
                    *floor = (*floor).max(position);
                }
            }
        }
    }

    /// A new entry for account `id`, with the floor of any change this process made to
    /// it before the view held it (called with `entries` locked).
    fn new_entry(&self, id: Uuid, access: Access, seen: u64) -> Entry {
        let floor = self
            .inner
            .early_floors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id)
            .unwrap_or(0);
        Entry {
            floor,
            ..Entry::new(access, seen)
        }
    }

    /// What the view holds for the account now, with no freshness guarantee and no log
    /// read: for fan-out filters that must not wait (a request authorizes with
    /// [`AccountDirectory::current`]).
    pub fn peek(&self, id: AccountId) -> Option<Access> {
        let entries = self.inner.entries.read().ok()?;
        entries.get(&id.as_uuid()).map(|e| e.access)
    }

    /// Reads the account (and whether its subject was erased) from the log, and keeps
    /// the result unless the view already holds something newer.
    async fn read_from_log(
        &self,
        id: AccountId,
        started: Instant,
    ) -> Result<Option<Access>, AppError> {
        let log = &self.inner.log;
        let account = log
            .read(&StreamId::new(Account::TYPE, id.as_uuid()))
            .await?;
        let subject = log
            .read(&StreamId::new(DataSubject::TYPE, id.as_uuid()))
            .await?;
        let mut access: Option<Access> = None;
        for (event, recorded) in decode::<Account>(&account)?.iter().zip(&account) {
            fold(&mut access, event, recorded.position());
        }
        let Some(mut access) = access else {
            return Ok(None);
        };
        access.erased = !decode::<DataSubject>(&subject)?.is_empty();
        let seen = account
            .iter()
            .chain(&subject)
            .map(RecordedEvent::position)
            .max()
            .unwrap_or(0);
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = entries
            .entry(id.as_uuid())
            .or_insert_with(|| self.new_entry(id.as_uuid(), access, seen));
        // Erasure is for good, whichever read saw it first (the view may hold a newer
        // account version without having applied the subject's erasure yet).
        access.erased |= entry.access.erased;
        entry.access.erased |= access.erased;
        // Both streams as they stood when this read began (a change acknowledged before
        // it is in what it read).
        entry.seen = entry.seen.max(seen);
        if access.version >= entry.access.version {
            entry.access = access;
            entry.confirmed_at = Some(started);
        }
        Ok(Some(entry.access))
    }

    /// Resolves once the account's standing differs from `seen` (or the account is
    /// gone): role, station, active, erased or revoked tokens. Wakes on every change
    /// the view applies and re-checks every [`AccessConfig::stream_recheck`] (reading
    /// the log when the view is not fresh), so it ends within the staleness bound
    /// plus that interval even when the view lags.
    pub fn changed(
        &self,
        id: AccountId,
        seen: Access,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let dir = self.clone();
        async move {
            let mut applied = dir.inner.applied.subscribe();
            let mut recheck = tokio::time::interval(dir.inner.config.stream_recheck);
            recheck.tick().await;
            loop {
                // `dir` keeps the sender alive: `changed` fails only if it were dropped.
                tokio::select! {
                    _ = applied.changed() => {}
                    _ = recheck.tick() => {}
                }
                match dir.current(id, seen.version).await {
                    Ok(Some(now)) if now.same_standing(&seen) => {}
                    Ok(_) => return,
                    // Cannot tell now (the log is unreachable): ask again later.
                    Err(e) => tracing::debug!(error = %e, "account re-check failed"),
                }
            }
        }
    }

    fn apply(&self, event: &RecordedEvent) -> Result<(), AppError> {
        let id = event.envelope.aggregate_id;
        let position = event.position();
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event.envelope.aggregate_type.as_str() {
            t if t == Account::TYPE => {
                let decoded = decode::<Account>(std::slice::from_ref(event))?;
                for e in &decoded {
                    let mut access = entries.get(&id).map(|entry| entry.access);
                    fold(&mut access, e, position);
                    if let Some(access) = access {
                        entries
                            .entry(id)
                            .and_modify(|entry| {
                                entry.access = access;
                                entry.seen = entry.seen.max(position);
                            })
                            .or_insert_with(|| self.new_entry(id, access, position));
                    }
                }
            }
            t if t == DataSubject::TYPE => {
                for e in decode::<DataSubject>(std::slice::from_ref(event))? {
                    let SubjectEvent::DataSubjectErased(erased) = e;
                    // A subject that is not an account (an anonymous report) has no
                    // entry: nothing to do.
                    if let Some(entry) = entries.get_mut(&erased.subject_id) {
                        entry.access.erased = true;
                        entry.seen = entry.seen.max(position);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The consumer: every account and subject event from the start of the log, then
    /// live; resubscribes after the last applied position on failure.
    async fn follow(self, shutdown: CancellationToken) {
        let mut backoff =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).until(&shutdown);
        loop {
            let from = *self.inner.applied.borrow() + 1;
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = self.inner.log.subscribe_to(from, FOLLOWED) => s,
            };
            match stream {
                Ok(mut events) => loop {
                    let item = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        item = events.next() => item,
                    };
                    match item {
                        Some(Ok(event)) => {
                            if let Err(e) = self.apply(&event) {
                                // A poison account event: it changes no access here, and
                                // direct reads (which decode the same way) answer 503
                                // for that account until it is repaired.
                                tracing::error!(position = event.position(), error = %e, "account view: undecodable event skipped");
                            }
                            self.inner.applied.send_replace(event.position());
                            backoff.reset();
                        }
                        Some(Err(ReadError::Corrupt { position, reason })) => {
                            tracing::error!(position, %reason, "account view: unreadable event skipped");
                            self.inner.applied.send_replace(position);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "account view: log read failed; resubscribing");
                            break;
                        }
                        None => break,
                    }
                },
                Err(e) => tracing::warn!(error = %e, "account view: cannot subscribe; retrying"),
            }
            if !backoff.pause().await {
                return;
            }
        }
    }

    /// Marks the view fresh as of each probe's start once it has applied every followed
    /// event the log's leader reported at that moment.
    async fn probe(self, shutdown: CancellationToken) {
        let config = self.inner.config;
        let mut tick = tokio::time::interval(config.probe_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let started = Instant::now();
            let last = match self.inner.log.last_position_of(FOLLOWED).await {
                Ok(last) => last,
                Err(e) => {
                    tracing::debug!(error = %e, "account view: probe failed");
                    continue;
                }
            };
            // Events appended after the probe started may keep arriving; what counts is
            // that everything before it has been applied.
            let mut applied = self.inner.applied.subscribe();
            let caught_up =
                tokio::time::timeout(config.max_staleness, applied.wait_for(|p| *p >= last))
                    .await
                    .is_ok_and(|r| r.is_ok());
            if caught_up {
                if let Ok(mut fresh) = self.inner.fresh_at.lock() {
                    if fresh.is_none_or(|f| f < started) {
                        *fresh = Some(started);
                    }
                }
            }
            crate::metrics::account_view_fresh(self.is_fresh());
            if caught_up {
                continue;
            }
            if self.fresh_at().is_some() {
                tracing::warn!(
                    last,
                    applied = *self.inner.applied.borrow(),
                    "account view behind the log; authorizing from the log"
                );
            } else {
                tracing::debug!(last, "account view still loading; authorizing from the log");
            }
        }
    }
}

/// Folds one account event into an optional access (`None` before registration).
fn fold(access: &mut Option<Access>, event: &AccountEvent, position: u64) {
    match (access.as_mut(), event) {
        (Some(a), e) => a.apply(e, position),
        (None, AccountEvent::AccountRegistered(e)) => {
            *access = Some(Access::registered(e.role, e.station_id, position));
        }
        // An account event before its registration: apply never refuses, but there is
        // no account to change.
        (None, _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use precinct_domain::account::{
        AccountDeactivated, AccountReactivated, AccountRegistered, AccountRoleChanged,
    };
    use precinct_domain::values::PasswordHash;

    fn registered(role: Role) -> AccountEvent {
        AccountRegistered {
            account_id: AccountId::new(Uuid::nil()),
            email: None,
            name: None,
            role,
            station_id: None,
            password_hash: PasswordHash::parse("$argon2id$x").expect("hash"),
            at: Utc::now(),
            invite_id: None,
        }
        .into()
    }

    fn folded(events: &[(AccountEvent, u64)]) -> Option<Access> {
        let mut access = None;
        for (e, p) in events {
            fold(&mut access, e, *p);
        }
        access
    }

    #[test]
    fn a_new_password_revokes_older_tokens_and_a_rename_changes_nothing() {
        use precinct_domain::account::{AccountPasswordChanged, AccountRenamed};
        let a = folded(&[
            (registered(Role::Citizen), 3),
            (
                AccountRenamed {
                    name: None,
                    at: Utc::now(),
                }
                .into(),
                5,
            ),
        ])
        .expect("registered");
        assert_eq!(a.check(3), Ok(()), "a rename revokes nothing");
        let changed = folded(&[
            (registered(Role::Citizen), 3),
            (
                AccountPasswordChanged {
                    password_hash: PasswordHash::parse("$argon2id$y").expect("hash"),
                    changed_by: AccountId::new(Uuid::nil()),
                    at: Utc::now(),
                }
                .into(),
                8,
            ),
        ])
        .expect("registered");
        assert_eq!(changed.check(5), Err(Revoked::Superseded));
        assert_eq!(changed.check(8), Ok(()), "the token issued with the change");
        assert!(!changed.same_standing(&a), "open streams end");
    }

    #[test]
    fn access_follows_role_changes_and_deactivation_revokes_older_tokens() {
        let station = Some(StationId::new(Uuid::from_u128(7)));
        let a = folded(&[
            (registered(Role::Citizen), 3),
            (
                AccountRoleChanged {
                    role: Role::Patrol,
                    station_id: station,
                    at: Utc::now(),
                }
                .into(),
                9,
            ),
        ])
        .expect("registered");
        assert_eq!(
            (a.role, a.station_id, a.version),
            (Role::Patrol, station, 9)
        );
        assert_eq!(a.check(3), Ok(()), "a token from before a role change acts");
        let off = folded(&[
            (registered(Role::Citizen), 3),
            (AccountDeactivated { at: Utc::now() }.into(), 12),
        ])
        .expect("registered");
        assert_eq!(off.check(3), Err(Revoked::Inactive));
        let back = folded(&[
            (registered(Role::Citizen), 3),
            (AccountDeactivated { at: Utc::now() }.into(), 12),
            (AccountReactivated { at: Utc::now() }.into(), 15),
        ])
        .expect("registered");
        assert_eq!(back.check(3), Err(Revoked::Superseded));
        assert_eq!(back.check(15), Ok(()));
        let mut erased = back;
        erased.erased = true;
        assert_eq!(erased.check(15), Err(Revoked::Erased));
        assert!(!erased.same_standing(&back));
    }

    #[test]
    fn an_older_event_never_undoes_a_newer_state() {
        let mut a = Access::registered(Role::Dispatcher, None, 20);
        a.apply(&AccountDeactivated { at: Utc::now() }.into(), 10);
        assert!(a.active, "already reflected in version 20");
        assert_eq!(
            folded(&[(AccountDeactivated { at: Utc::now() }.into(), 5)]),
            None
        );
    }

    #[test]
    fn a_stale_view_or_a_token_newer_than_the_entry_sends_the_request_to_the_log() {
        let now = Instant::now();
        let bound = Duration::from_millis(800);
        let entry = |confirmed_at| Entry {
            confirmed_at,
            ..Entry::new(Access::registered(Role::Patrol, None, 10), 10)
        };
        // Fresh view, entry at least as new as the token: memory answers.
        assert!(usable(&entry(None), true, 10, now, bound));
        assert!(usable(&entry(None), true, 0, now, bound));
        // The token was issued after a change the view has not seen.
        assert!(!usable(&entry(None), true, 11, now, bound));
        // A stale view: only an entry confirmed by a recent direct read answers.
        assert!(!usable(&entry(None), false, 10, now, bound));
        let later = now + Duration::from_millis(500);
        assert!(usable(&entry(Some(now)), false, 10, later, bound));
        let too_late = now + Duration::from_millis(900);
        assert!(!usable(&entry(Some(now)), false, 10, too_late, bound));
    }

    #[test]
    fn a_change_made_here_is_answered_from_memory_only_once_the_entry_has_seen_it() {
        let now = Instant::now();
        let bound = Duration::from_millis(800);
        let mut entry = Entry::new(Access::registered(Role::Patrol, None, 10), 10);
        // Given this process erased the account at position 14 (its subject's stream),
        entry.floor = 14;
        // a fresh view that has not applied it yet does not answer, even confirmed,
        assert!(!usable(&entry, true, 0, now, bound));
        entry.confirmed_at = Some(now);
        assert!(!usable(&entry, true, 0, now, bound));
        // and answers once the entry reflects it.
        entry.seen = 14;
        assert!(usable(&entry, true, 0, now, bound));
    }
}
