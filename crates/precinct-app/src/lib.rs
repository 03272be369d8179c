//! Precinct's application layer: the commands, between the pure domain and the event
//! log.
//!
//! A command ([`commands`], one file per command or small family) takes the
//! [`Principal`] it runs for — the account as it is now — and already-parsed input. It
//! decides who may run it on the state as it is now ([`policy`]), what it does to each
//! aggregate it touches (a dispatch opens the patrol's assignment, a decline closes it,
//! a role change takes the officer out of crews), and which ids it derives from the
//! command id ([`ids`]); facts from read models and caches come through [`ports`].
//! Refusals are typed ([`AppError`]: the domain's own error, [`AppError::NotFound`],
//! [`Denied`], [`Refusal`], [`Unavailable`]).
//!
//! A command runs in a [`UnitOfWork`]: it loads the aggregates it needs from the log
//! (each load remembers the stream's version), asks the domain's `handle` for events,
//! and [`App::run`] appends everything the command emitted, to every stream it touched,
//! as one atomic batch with one expected version per stream. A stale version reruns the
//! decision on fresh state (with jittered back-off, until a deadline), so a command that
//! is still valid succeeds and one that is not gets the domain's own refusal (e.g. the
//! second of two dispatches).
//! A command id already in the primary stream answers the original outcome instead of
//! running again (idempotent retries); a refusal is answered only after looking for the
//! command id once more, since an earlier attempt of the same command may have landed
//! while this one was deciding. The log is any [`EventStore`](precinct_eventlog::EventStore):
//! JetStream's `EventLog` in the server, a `MemoryLog` in the tests of `tests/`.
//!
//! It is not: HTTP (status codes, bodies, tokens, idempotency keys), the read side, or
//! the log. It holds no state between commands beyond the position of each account's
//! last one ([`writes`]).
//!
//! # Layout
//! - [`commands`]: the commands.
//! - [`as_of`]: a report as it stood at a time, from a sealed snapshot and the events
//!   after it (ADR 0022).
//! - [`policy`]: [`Principal`], the role sets, who may see a report or a patrol.
//! - [`ports`]: the facts commands need from outside the log, as traits.
//! - [`ids`]: ids derived from command ids.
//! - [`uow`]: [`App`] and [`App::run`] (the attempts at one command), [`UnitOfWork`],
//!   [`Outcome`].
//! - [`error`]: [`AppError`] and the typed refusals.
//! - `turns`: commands about one aggregate take turns within a process (an optimisation
//!   under contention; expected versions stay the guarantee).
//! - [`email`]: the stream ids of an e-mail reservation (keyed) and claiming one.
//! - [`writes`]: each account's last acknowledged command position in this process
//!   (read-your-own-writes, ADR 0014).

pub mod as_of;
pub mod commands;
pub mod email;
pub mod error;
pub mod ids;
pub mod policy;
pub mod ports;
mod turns;
pub mod uow;
pub mod writes;

pub use error::{AppError, Denied, Refusal, Unavailable};
pub use policy::Principal;
pub use uow::{App, Outcome, UnitOfWork};
