//! Precinct's application layer: the glue between the pure domain and the event log.
//!
//! A command runs in a [`UnitOfWork`]: it loads the aggregates it needs from the log
//! (each load remembers the stream's version), asks the domain's `handle` for events,
//! and [`App::run`] appends everything the command emitted, to every stream it touched,
//! as one atomic batch with one expected version per stream. A stale version reruns the
//! command on fresh state (with jittered back-off, until a deadline), so a command that
//! is still valid succeeds and one that is not gets the domain's own refusal (e.g. the
//! second of two dispatches).
//! A command id already in the primary stream answers the original outcome instead of
//! running again (idempotent retries); a refusal is answered only after looking for the
//! command id once more, since an earlier attempt of the same command may have landed
//! while this one was deciding.
//!
//! It is not: HTTP, authorization of callers (the API decides who may send what), or the
//! read side. It holds no state between commands.
//!
//! # Layout
//! - [`uow`]: [`App`] and [`App::run`] (the attempts at one command), [`UnitOfWork`],
//!   [`Outcome`].
//! - [`error`]: [`AppError`], one error type for the layer.
//! - `turns`: commands about one aggregate take turns within a process (an optimisation
//!   under contention; expected versions stay the guarantee).
//! - [`email`]: the stream ids of an e-mail reservation (keyed) and claiming one.

pub mod commands;
pub mod email;
pub mod error;
pub mod ids;
pub mod policy;
pub mod ports;
mod turns;
pub mod uow;

pub use error::{AppError, Denied, Refusal, Unavailable};
pub use policy::Principal;
pub use uow::{App, Outcome, UnitOfWork};
