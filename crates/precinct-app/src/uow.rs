//! Running one command: load, decide, append atomically, retry on stale state.

use std::any::Any;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use precinct_domain::{Aggregate, DomainEvent};
use precinct_eventlog::{
    find_command_in, AppendError, CommandMeta, EventLog, EventStore, ExpectedVersion, NewEvent,
    RecordedEvent, StreamId, StreamWrite,
};
use uuid::Uuid;

use crate::turns::{Turn, Turns};
use crate::AppError;

/// A command whose state keeps changing under it is decided again on fresh state at
/// least this many times...
const MIN_ATTEMPTS: usize = 8;
/// ...and for at least this long since its first attempt (ADR 0012): commands that
/// commute (notes on one report) all land however many arrive at once, and one that
/// conflicts gets the domain's refusal on the attempt after the winner landed, not a
/// give-up.
const CONTENTION_DEADLINE: Duration = Duration::from_secs(5);
/// The pause before deciding again after a concurrent change: a random time up to a
/// ceiling that doubles with each attempt, from `BACKOFF_FIRST` to `BACKOFF_MAX` (full
/// jitter, so that the writers of one stream spread out instead of colliding again).
const BACKOFF_FIRST: Duration = Duration::from_millis(2);
const BACKOFF_MAX: Duration = Duration::from_millis(50);

/// Runs commands against the log (JetStream's [`EventLog`], or any other
/// [`EventStore`]: tests run on a `MemoryLog`). Cheap to clone (clones share their
/// turns).
#[derive(Clone, Debug)]
pub struct App<S = EventLog> {
    log: S,
    /// Seals personal fields before they enter the log (None: stored as they are).
    vault: Option<precinct_vault::Vault>,
    /// Commands about one aggregate take turns in this process.
    turns: std::sync::Arc<Turns>,
    /// Each account's last acknowledged command position (read-your-own-writes).
    writes: std::sync::Arc<crate::writes::LastWrites>,
    /// Told of each change this process makes to an account or a data subject.
    account_changes: Option<AccountChanges>,
}

/// What [`App::on_account_change`] calls: the account (or data subject) id and the
/// position of the command's last event on its stream.
#[derive(Clone)]
pub struct AccountChanges(std::sync::Arc<dyn Fn(Uuid, u64) + Send + Sync>);

impl std::fmt::Debug for AccountChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountChanges")
    }
}

/// The stream of aggregate `A` with id `id`.
pub fn stream_of<A: Aggregate>(id: Uuid) -> StreamId {
    StreamId::new(A::TYPE, id)
}

/// Decodes recorded events into `A`'s events.
pub fn decode<A: Aggregate>(events: &[RecordedEvent]) -> Result<Vec<A::Event>, AppError> {
    events
        .iter()
        .map(|e| {
            A::Event::from_parts_ref(&e.envelope.event_type, &e.data).map_err(|err| {
                AppError::Corrupt {
                    position: e.position(),
                    reason: err.to_string(),
                }
            })
        })
        .collect()
}

fn fold_recorded<A: Aggregate>(events: &[RecordedEvent]) -> Result<A, AppError> {
    let decoded = decode::<A>(events)?;
    let mut state = A::default();
    for e in &decoded {
        state.apply(e);
    }
    Ok(state)
}

/// What a command did.
pub struct Outcome {
    /// Log position of the last event the command appended (for a command that changed
    /// nothing: the primary stream's version).
    pub position: u64,
    /// The command id had already been applied; nothing new was appended.
    pub duplicate: bool,
    states: HashMap<StreamId, Box<dyn Any + Send + Sync>>,
    /// Each stream this command appended to, with the position of its last event there
    /// (empty for a command that changed nothing; for a duplicate, see [`primary_first`]).
    written: Vec<(StreamId, u64)>,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("position", &self.position)
            .field("duplicate", &self.duplicate)
            .finish()
    }
}

impl Outcome {
    /// The state of aggregate `A` `id` right after the command (for a duplicate: only the
    /// primary stream, as it stood after the original command).
    pub fn state<A: Aggregate + Send + Sync + 'static>(&self, id: Uuid) -> Option<&A> {
        self.states
            .get(&stream_of::<A>(id))
            .and_then(|s| s.downcast_ref::<A>())
    }
}

struct Entry {
    version: u64,
    state: Box<dyn Any + Send + Sync>,
    pending: Vec<NewEvent>,
    /// Whose personal data the pending events carry (the aggregate's data subject).
    subject: Option<Uuid>,
}

/// The aggregates one command has loaded and the events it has emitted so far.
pub struct UnitOfWork<'a, S = EventLog> {
    log: &'a S,
    now: DateTime<Utc>,
    entries: HashMap<StreamId, Entry>,
    order: Vec<StreamId>,
    /// A read of the log failed in this attempt: its refusal may be a transport failure
    /// rather than a decision, and looking for the command again would fail the same way.
    read_failed: bool,
}

impl<S: EventStore> UnitOfWork<'_, S> {
    /// The command's clock reading: every event of the command carries it.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The current state of aggregate `A` `id` (default state if it does not exist),
    /// including what this command has emitted on it so far.
    pub async fn load<A>(&mut self, id: Uuid) -> Result<A, AppError>
    where
        A: Aggregate + Send + Sync + 'static,
    {
        let stream = stream_of::<A>(id);
        if let Some(entry) = self.entries.get(&stream) {
            return entry
                .state
                .downcast_ref::<A>()
                .cloned()
                .ok_or_else(|| AppError::Corrupt {
                    position: entry.version,
                    reason: format!("stream {stream} loaded as two types"),
                });
        }
        let events = match self.log.read(&stream).await {
            Ok(events) => events,
            Err(e) => {
                self.read_failed = true;
                return Err(e.into());
            }
        };
        let version = events.last().map(|e| e.position()).unwrap_or(0);
        let state = fold_recorded::<A>(&events)?;
        self.entries.insert(
            stream,
            Entry {
                version,
                state: Box::new(state.clone()),
                pending: Vec::new(),
                subject: None,
            },
        );
        Ok(state)
    }

    /// Loads `A` `id`, runs `cmd` through its `handle`, and emits the events. Returns
    /// the state after them.
    pub async fn execute<A>(&mut self, id: Uuid, cmd: A::Command) -> Result<A, AppError>
    where
        A: Aggregate + Send + Sync + 'static,
    {
        let state = self.load::<A>(id).await?;
        let events = state.handle(cmd).map_err(AppError::domain)?;
        self.emit::<A>(id, events)
    }

    /// Records events on an already loaded aggregate and folds them into its state.
    pub fn emit<A>(&mut self, id: Uuid, events: Vec<A::Event>) -> Result<A, AppError>
    where
        A: Aggregate + Send + Sync + 'static,
    {
        let stream = stream_of::<A>(id);
        let now = self.now;
        let entry = self
            .entries
            .get_mut(&stream)
            .ok_or_else(|| AppError::Corrupt {
                position: 0,
                reason: format!("emit on {stream} before it was loaded"),
            })?;
        let state = entry
            .state
            .downcast_mut::<A>()
            .ok_or_else(|| AppError::Corrupt {
                position: entry.version,
                reason: format!("stream {stream} loaded as two types"),
            })?;
        for event in &events {
            state.apply(event);
            entry.pending.push(NewEvent {
                event_type: event.event_type().to_string(),
                schema_version: event.schema_version(),
                occurred_at: now,
                data: event.to_data(),
            });
        }
        let after = state.clone();
        entry.subject = after.data_subject();
        if !events.is_empty() && !self.order.contains(&stream) {
            self.order.push(stream);
        }
        Ok(after)
    }
}

impl App {
    /// This app for answering queries from the log (`as_of`): its reads take turns
    /// with other queries, never in front of commands ([`EventLog::for_queries`]).
    pub fn for_queries(&self) -> App {
        App {
            log: self.log.for_queries(),
            ..self.clone()
        }
    }
}

impl<S: EventStore> App<S> {
    pub fn new(log: S) -> Self {
        Self {
            log,
            vault: None,
            turns: Default::default(),
            writes: Default::default(),
            account_changes: None,
        }
    }

    /// An app that seals personal fields with `vault` (the log must open them with the
    /// same vault: `EventLog::with_opener`).
    pub fn with_vault(log: S, vault: precinct_vault::Vault) -> Self {
        Self {
            log,
            vault: Some(vault),
            turns: Default::default(),
            writes: Default::default(),
            account_changes: None,
        }
    }

    /// This app, telling `changed` of every account and data-subject stream a command
    /// of this process appends to, once the log acknowledged it: the API's account view
    /// does not trust its memory of that account until it has seen the change, so a
    /// deactivation, erasure or new password takes effect at once on the process that
    /// made it (ADR 0011).
    pub fn on_account_change(
        mut self,
        changed: impl Fn(Uuid, u64) + Send + Sync + 'static,
    ) -> Self {
        self.account_changes = Some(AccountChanges(std::sync::Arc::new(changed)));
        self
    }

    /// The position of `account`'s last command this process acknowledged (ADR 0014).
    pub fn last_write_of(&self, account: Uuid) -> Option<u64> {
        self.writes.of(account)
    }

    pub fn vault(&self) -> Option<&precinct_vault::Vault> {
        self.vault.as_ref()
    }

    pub fn log(&self) -> &S {
        &self.log
    }

    /// Loads aggregate `A` `id` as it is now, with its version (0: does not exist).
    pub async fn load<A: Aggregate>(&self, id: Uuid) -> Result<(A, u64), AppError> {
        let events = self.log.read(&stream_of::<A>(id)).await?;
        let version = events.last().map(|e| e.position()).unwrap_or(0);
        Ok((fold_recorded::<A>(&events)?, version))
    }

    /// Loads aggregate `A` `id` as it is now and as it stood at `at` (its events that
    /// occurred up to then), each with its version (0: did not exist), from one read of
    /// its stream. A read that fails is an error, never a shorter stream.
    pub async fn load_as_of<A: Aggregate>(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<((A, u64), (A, u64)), AppError> {
        let events = self.log.read(&stream_of::<A>(id)).await?;
        let decoded = decode::<A>(&events)?;
        let upto = events
            .iter()
            .take_while(|e| e.envelope.occurred_at <= at)
            .count();
        let mut state = A::default();
        let mut then = None;
        for (i, e) in decoded.iter().enumerate() {
            if i == upto {
                then = Some(state.clone());
            }
            state.apply(e);
        }
        let then = then.unwrap_or_else(|| state.clone());
        let version_at = |n: usize| n.checked_sub(1).map_or(0, |i| events[i].position());
        Ok(((state, version_at(events.len())), (then, version_at(upto))))
    }

    /// Runs a command about aggregate `A` `primary_id` (its *primary* stream): `decide`
    /// loads what it needs through the [`UnitOfWork`], checks, and emits events; `run`
    /// appends everything it emitted as one atomic batch. See `Attempts` for the
    /// guarantees:
    ///
    /// - the command id already in the primary stream: its original outcome, without
    ///   deciding again (an idempotent retry), or [`AppError::KeyReused`] when it came
    ///   from another request;
    /// - a concurrent change (or an append whose outcome is unknown): `decide` runs
    ///   again on fresh state, after a jittered pause, until the command lands, is
    ///   refused, or has tried for the contention deadline; commands about one
    ///   aggregate take turns within the process;
    /// - a refusal by `decide` is answered only once the command id is still absent
    ///   from the log (an earlier attempt of the same command may have landed while
    ///   this one decided; then the answer is that attempt's outcome).
    ///
    /// The decision is an async closure. Where the command's future must be `Send` (an
    /// HTTP handler), it owns what it captures (`async move` over copies and clones, no
    /// references): the compiler cannot yet prove such a future `Send` through a
    /// reference an async closure captures (rust-lang/rust#110338).
    ///
    /// ```ignore
    /// let out = app
    ///     .run::<Report>(&meta, id, async move |uow| {
    ///         uow.execute::<Report>(id, ReportCommand::Accept { at: uow.now() }).await?;
    ///         Ok(())
    ///     })
    ///     .await?;
    /// ```
    pub async fn run<A>(
        &self,
        meta: &CommandMeta,
        primary_id: Uuid,
        decide: impl AsyncFnMut(&mut UnitOfWork<'_, S>) -> Result<(), AppError>,
    ) -> Result<Outcome, AppError>
    where
        A: Aggregate + Send + Sync + 'static,
    {
        let out = self.attempt::<A>(meta, primary_id, decide).await?;
        if let precinct_eventlog::Actor::User { id, .. } = &meta.actor {
            self.writes.record(*id, out.position);
        }
        if let Some(AccountChanges(changed)) = &self.account_changes {
            for (stream, position) in &out.written {
                if stream.aggregate_type == precinct_domain::account::Account::TYPE
                    || stream.aggregate_type == precinct_domain::subject::DataSubject::TYPE
                {
                    changed(stream.id, *position);
                }
            }
        }
        Ok(out)
    }

    /// [`App::run`] without remembering the account's position.
    async fn attempt<A>(
        &self,
        meta: &CommandMeta,
        primary_id: Uuid,
        mut decide: impl AsyncFnMut(&mut UnitOfWork<'_, S>) -> Result<(), AppError>,
    ) -> Result<Outcome, AppError>
    where
        A: Aggregate + Send + Sync + 'static,
    {
        let mut attempts = self.attempts::<A>(meta, primary_id);
        loop {
            let mut unit = match attempts.next().await? {
                Step::Done(out) => return Ok(out),
                Step::Decide(unit) => unit,
            };
            if let Err(refusal) = decide(&mut unit).await {
                return match attempts.refused(&unit).await {
                    Some(found) => found,
                    None => Err(refusal),
                };
            }
            if let Some(out) = attempts.commit(unit).await? {
                return Ok(out);
            }
        }
    }

    /// The attempts at a command about aggregate `A` `primary_id` (see [`App::run`]).
    fn attempts<'a, A>(&'a self, meta: &'a CommandMeta, primary_id: Uuid) -> Attempts<'a, S>
    where
        A: Aggregate + Send + Sync + 'static,
    {
        Attempts {
            app: self,
            meta,
            primary: stream_of::<A>(primary_id),
            fold_primary: fold_boxed::<A>,
            attempt: 0,
            started: Instant::now(),
            turn: None,
            last_err: None,
            loaded: Vec::new(),
        }
    }
}

type FoldFn = fn(&[RecordedEvent]) -> Result<Box<dyn Any + Send + Sync>, AppError>;

fn fold_boxed<A: Aggregate + Send + Sync + 'static>(
    events: &[RecordedEvent],
) -> Result<Box<dyn Any + Send + Sync>, AppError> {
    Ok(Box::new(fold_recorded::<A>(events)?))
}

/// Seals the personal fields (and secrets) of `event` with `subject`'s key.
async fn seal(
    vault: &precinct_vault::Vault,
    subject: Uuid,
    event: &mut NewEvent,
) -> Result<(), AppError> {
    for field in precinct_domain::subject::sealed_fields(&event.event_type) {
        let Some(value) = event.data.get_mut(*field) else {
            continue;
        };
        if value.is_null() || precinct_vault::Vault::is_sealed(value) {
            continue;
        }
        *value = vault.seal(subject, value).await.map_err(AppError::from)?;
    }
    Ok(())
}

/// What to do next in running a command.
enum Step<'a, S> {
    /// The command id is already in the log: this is its original outcome.
    Done(Outcome),
    /// Decide (load, check, emit) in this unit of work, then [`Attempts::commit`] it.
    Decide(UnitOfWork<'a, S>),
}

/// The attempts at one command: each decides on fresh state and tries to append
/// everything it emitted as one atomic batch, each stream checked against the version it
/// was loaded at. A concurrent change means: pause a jittered moment and decide again,
/// until the command lands, is refused by the fresh state, or has tried for
/// [`CONTENTION_DEADLINE`] (and at least [`MIN_ATTEMPTS`] times). Expected versions stay
/// exact: two commands on one aggregate never both win on a stale state, and commands
/// that commute simply land one after the other. `primary` is the stream the command is
/// about: if it already holds the command id, the original outcome is returned and
/// nothing is decided again (idempotent retries).
///
/// A refusal is not final before the command id has been looked for once more: an
/// earlier attempt of the same command (a client's retry while the first request is
/// still in flight, or an append whose outcome was unknown) may land between this
/// attempt's reads, so that the decision sees the command's own effect on one stream
/// and refuses it (the second dispatch of one report: 409). Every refusal — the
/// decision's error ([`Attempts::refused`], called by [`App::run`]), stale
/// state after the last attempt, a batch the store rejected — therefore reads the
/// primary stream (and the other streams the attempts loaded) again, after the reads
/// the decision made, and answers the original outcome if the command is there.
struct Attempts<'a, S> {
    app: &'a App<S>,
    meta: &'a CommandMeta,
    primary: StreamId,
    fold_primary: FoldFn,
    attempt: usize,
    started: Instant,
    /// This command's turn on the primary stream, held across its attempts.
    turn: Option<Turn>,
    last_err: Option<AppError>,
    /// The streams other than the primary one that the attempts loaded: where the
    /// command's first event is if it did not write the primary stream.
    loaded: Vec<StreamId>,
}

impl<'a, S: EventStore> Attempts<'a, S> {
    /// The next attempt, or the original outcome of an already applied command.
    async fn next(&mut self) -> Result<Step<'a, S>, AppError> {
        if self.attempt > 0 {
            // The last attempt met a concurrent change (or an unknown outcome).
            metrics::counter!("precinct_command_reruns_total").increment(1);
            let elapsed = self.started.elapsed();
            if self.attempt >= MIN_ATTEMPTS && elapsed >= CONTENTION_DEADLINE {
                let refusal = self.last_err.take().unwrap_or(AppError::Contention);
                return match self.applied_meanwhile().await {
                    Some(found) => found.map(Step::Done),
                    None => Err(refusal),
                };
            }
            let pause = backoff(self.attempt).min(CONTENTION_DEADLINE.saturating_sub(elapsed));
            tokio::time::sleep(pause).await;
        } else {
            // Wait for the commands ahead of this one on the same aggregate, so as not to
            // decide on the version they are about to replace.
            self.turn = self
                .app
                .turns
                .take(&self.primary, self.meta.command_id, CONTENTION_DEADLINE)
                .await;
        }
        self.attempt += 1;
        let log = &self.app.log;
        let primary_events = log.read(&self.primary).await?;
        if let Some(done) = find_command_in(&primary_events, self.meta.command_id) {
            return Ok(Step::Done(self.original(primary_events, done)?));
        }
        let version = primary_events.last().map(|e| e.position()).unwrap_or(0);
        let mut uow = UnitOfWork {
            log,
            now: Utc::now(),
            entries: HashMap::new(),
            order: Vec::new(),
            read_failed: false,
        };
        // Seed the primary stream with what was just read (saves a round trip).
        uow.entries.insert(
            self.primary.clone(),
            Entry {
                version,
                state: (self.fold_primary)(&primary_events)?,
                pending: Vec::new(),
                subject: None,
            },
        );
        Ok(Step::Decide(uow))
    }

    /// The original outcome of this command, found at `done` (the primary stream's state
    /// as of the command's last event) — unless the command found is another request's
    /// under the same id (an idempotency key reused with a different body): then
    /// [`AppError::KeyReused`].
    fn original(
        &self,
        primary_events: Vec<RecordedEvent>,
        done: precinct_eventlog::Appended,
    ) -> Result<Outcome, AppError> {
        self.same_request(&done)?;
        metrics::counter!("precinct_idempotent_replays_total").increment(1);
        let upto: Vec<RecordedEvent> = primary_events
            .into_iter()
            .filter(|e| e.position() <= done.position)
            .collect();
        let mut states: HashMap<StreamId, Box<dyn Any + Send + Sync>> = HashMap::new();
        states.insert(self.primary.clone(), (self.fold_primary)(&upto)?);
        Ok(Outcome {
            position: done.position,
            duplicate: true,
            states,
            written: primary_first(&self.primary, &done),
        })
    }

    /// Refuses an append found under this command's id that came from another request.
    /// Events without a digest (older than it, or from commands without a key) are
    /// taken for the same request, as before digests existed.
    fn same_request(&self, found: &precinct_eventlog::Appended) -> Result<(), AppError> {
        match (self.meta.request_hash, found.original_request) {
            (Some(mine), Some(theirs)) if mine != theirs => Err(AppError::KeyReused),
            _ => Ok(()),
        }
    }

    /// Remembers the streams `uow` loaded besides the primary one.
    fn note_loaded(&mut self, uow: &UnitOfWork<'a, S>) {
        for stream in uow.entries.keys() {
            if *stream != self.primary && !self.loaded.contains(stream) {
                self.loaded.push(stream.clone());
            }
        }
    }

    /// The decision in `uow` refused the command: unless the command id has reached the
    /// log in the meantime (see [`Attempts`]), in which case this is its original outcome
    /// (or [`AppError::KeyReused`]) and the refusal must not be answered. Called by
    /// [`App::run`].
    async fn refused(&mut self, uow: &UnitOfWork<'a, S>) -> Option<Result<Outcome, AppError>> {
        self.note_loaded(uow);
        if uow.read_failed {
            // Not a decision: the log could not be read, and would not answer now either.
            return None;
        }
        self.applied_meanwhile().await
    }

    /// Looks for the command id once more, in the primary stream and then in the other
    /// streams the attempts loaded (its first event is on the primary stream whenever the
    /// command wrote to it). A read failure here keeps the refusal: it is still true of
    /// the state the decision saw. Found from another request: [`AppError::KeyReused`].
    async fn applied_meanwhile(&self) -> Option<Result<Outcome, AppError>> {
        let log = &self.app.log;
        let id = self.meta.command_id;
        let lookup = async {
            let primary_events = log.read(&self.primary).await?;
            if let Some(done) = find_command_in(&primary_events, id) {
                return self.original(primary_events, done).map(Some);
            }
            for stream in &self.loaded {
                if let Some(done) = find_command_in(&log.read(stream).await?, id) {
                    return self.original(primary_events, done).map(Some);
                }
            }
            Ok::<_, AppError>(None)
        };
        match lookup.await {
            Ok(Some(out)) => {
                tracing::info!(
                    command_id = %id,
                    position = out.position,
                    "a refused attempt's command was applied by an earlier attempt; answering its outcome"
                );
                Some(Ok(out))
            }
            Ok(None) => None,
            Err(AppError::KeyReused) => Some(Err(AppError::KeyReused)),
            Err(e) => {
                tracing::warn!(command_id = %id, error = %e, "cannot look for the command again after a refusal");
                None
            }
        }
    }

    /// Appends what `uow` emitted. `Ok(None)`: a concurrent change (or an unknown
    /// outcome) — call [`Attempts::next`] and decide again.
    async fn commit(&mut self, mut uow: UnitOfWork<'a, S>) -> Result<Option<Outcome>, AppError> {
        self.note_loaded(&uow);
        // The primary stream goes first: its first event carries the command's size,
        // which is how a retry finds the original outcome.
        let mut order = std::mem::take(&mut uow.order);
        if let Some(i) = order.iter().position(|s| *s == self.primary) {
            let p = order.remove(i);
            order.insert(0, p);
        }
        let primary_version = uow
            .entries
            .get(&self.primary)
            .map(|e| e.version)
            .unwrap_or(0);
        let mut entries = uow.entries;
        if let Some(vault) = &self.app.vault {
            for entry in entries.values_mut() {
                let Some(subject) = entry.subject else {
                    continue;
                };
                for event in &mut entry.pending {
                    seal(vault, subject, event).await?;
                }
            }
        }
        let writes: Vec<StreamWrite> = order
            .iter()
            .filter_map(|stream| {
                entries.get_mut(stream).map(|e| StreamWrite {
                    stream: stream.clone(),
                    expected: ExpectedVersion::from_version(e.version),
                    events: std::mem::take(&mut e.pending),
                })
            })
            .collect();
        let states = entries
            .into_iter()
            .map(|(k, e)| (k, e.state))
            .collect::<HashMap<_, _>>();
        if writes.is_empty() {
            return Ok(Some(Outcome {
                position: primary_version,
                duplicate: false,
                states,
                written: Vec::new(),
            }));
        }
        // Only an app told of account changes needs the per-stream positions: no stream
        // id is copied on the command path otherwise.
        let counts: Vec<(StreamId, u64)> = if self.app.account_changes.is_some() {
            writes
                .iter()
                .map(|w| (w.stream.clone(), w.events.len() as u64))
                .collect()
        } else {
            Vec::new()
        };
        match self.app.log.append_multi(writes, self.meta).await {
            // The command id was in the log already (an earlier attempt landed while this
            // one decided): the same request's retry, or another request reusing its key.
            Ok(appended) if appended.duplicate => {
                self.same_request(&appended)?;
                Ok(Some(Outcome {
                    position: appended.position,
                    duplicate: true,
                    states,
                    written: primary_first(&self.primary, &appended),
                }))
            }
            Ok(appended) => Ok(Some(Outcome {
                position: appended.position,
                duplicate: appended.duplicate,
                states,
                written: if counts.is_empty() {
                    Vec::new()
                } else {
                    last_positions(&counts, &appended)
                },
            })),
            Err(AppendError::WrongExpectedVersion { actual }) => {
                tracing::debug!(
                    attempt = self.attempt,
                    ?actual,
                    "stale state; deciding again"
                );
                self.last_err = Some(AppError::Contention);
                Ok(None)
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(attempt = self.attempt, error = %e, "append outcome unknown; retrying");
                self.last_err = Some(AppError::Append(e));
                Ok(None)
            }
            Err(e) => match self.applied_meanwhile().await {
                // E.g. a duplicate command id whose first event is not where this attempt
                // put it: the command is in the log.
                Some(found) => found.map(Some),
                None => Err(AppError::Append(e)),
            },
        }
    }
}

/// The position of each stream's last event in an appended batch: the batch is one
/// atomic append in stream order, so its positions are consecutive. A batch whose
/// positions are not (no store does that today) names no stream rather than a wrong
/// position.
fn last_positions(
    counts: &[(StreamId, u64)],
    appended: &precinct_eventlog::Appended,
) -> Vec<(StreamId, u64)> {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    if appended.position.checked_sub(appended.first_position) != total.checked_sub(1) {
        return Vec::new();
    }
    let mut last = appended.first_position.saturating_sub(1);
    counts
        .iter()
        .map(|(stream, n)| {
            last += n;
            (stream.clone(), last)
        })
        .collect()
}

/// What a duplicate's original append is known to have written: its first event, on the
/// primary stream (which a batch puts first). The position of the primary's last event
/// there is not known without reading it again; the first one is reached by any reader
/// that has seen the command's start. (An acknowledgement lost on the way and found by a
/// retry is still this process's change.)
fn primary_first(
    primary: &StreamId,
    original: &precinct_eventlog::Appended,
) -> Vec<(StreamId, u64)> {
    vec![(primary.clone(), original.first_position)]
}

/// A random pause before attempt `attempt + 1`: up to `BACKOFF_FIRST * 2^(attempt-1)`,
/// at most `BACKOFF_MAX`.
fn backoff(attempt: usize) -> Duration {
    use rand::Rng;
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(16);
    let ceiling = BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::thread_rng().gen_range(0..=micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appended(first_position: u64, position: u64) -> precinct_eventlog::Appended {
        precinct_eventlog::Appended {
            first_position,
            position,
            duplicate: false,
            original_request: None,
        }
    }

    #[test]
    fn each_written_stream_is_named_with_the_position_of_its_last_event() {
        let account = StreamId::new("account", Uuid::from_u128(1));
        let patrol = StreamId::new("patrol", Uuid::from_u128(2));
        let counts = [(account.clone(), 1), (patrol.clone(), 2)];
        // Given a batch of three events at positions 10, 11, 12 in stream order,
        assert_eq!(
            last_positions(&counts, &appended(10, 12)),
            vec![(account, 10), (patrol, 12)]
        );
        // a batch whose positions are not consecutive names nothing.
        assert!(last_positions(&counts, &appended(10, 13)).is_empty());
        assert!(last_positions(&counts, &appended(10, 11)).is_empty());
    }
}
