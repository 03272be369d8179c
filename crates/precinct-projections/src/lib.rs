//! Precinct's projectors: the workers that fold the event log into PostgreSQL read
//! models. The schema they write and everything that reads it (migrations, row types,
//! queries, checkpoint and quarantine reads, position waits) is `precinct-readmodel`'s.
//!
//! Each projection is its own task with its own checkpoint row, fed by one shared
//! [`reader`] per process (one log subscription, each event decoded and opened once;
//! a projection that falls behind catches up alone, ADR 0019). A batch of events and the checkpoint that covers it are written in
//! one transaction, so a crash replays exactly what was not committed: no lost and no
//! doubled effect. While catching up a batch takes everything already delivered (up to
//! a cap); when live it takes what is there and does not wait for more. An event that
//! cannot be decoded or applied (a *poison* event) is quarantined with its aggregate's
//! later events in that projection, loudly, and the projection goes on with everything
//! else ([`quarantine`], ADR 0009); an operator retries or skips it.
//!
//! What this crate deliberately is not: it serves no HTTP, answers no query, knows no
//! JetStream (it reads through `precinct-eventlog`) and never appends to the log; the
//! API does not depend on it. Read models are disposable: [`rebuild`] replays the log
//! into them and gives the same rows.
//!
//! Main types: [`Projection`] (one per read model, in [`projections`]), [`run_all`] (or
//! [`run_with`] and [`RunOptions`]), [`rebuild`], [`status()`],
//! [`quarantine::retry`] and [`quarantine::skip`].
//!
//! # Layout
//! - [`projection`]: the [`Projection`] trait and the list of event projections.
//! - [`projections`]: one module per read model: `reports`, `patrols`, `stations`,
//!   `accounts`, `audit`.
//! - [`request_log`]: the request-log projection, fed by its own stream.
//! - [`roster`]: patrol locations and the down-sampled track, fed by the positions
//!   stream and written at a lower rate than it is (coalesced per patrol).
//! - [`reader`]: the shared reader of the log, its queues, catch-up and lockstep.
//! - [`worker`]: the batch loop every projector runs (checkpoint, poison, retry).
//! - [`quarantine`]: poison events, the aggregates held back, `retry` and `skip`.
//! - [`checkpoint`]: writing the `checkpoints` table.
//! - [`runner`]: [`run_all`], [`rebuild`].
//! - [`lag`]: lag and quarantine per projection, against the log ([`status()`]).
//! - [`error`]: [`ProjectionError`], why a projector could not apply an event.

pub mod checkpoint;
pub mod error;
pub mod lag;
pub mod leadership;
pub mod projection;
pub mod projections;
pub mod quarantine;
pub mod reader;
pub mod request_log;
pub mod roster;
pub mod runner;
pub mod worker;

pub use error::ProjectionError;
pub use lag::{request_log_status, status};
pub use leadership::{lead, while_leading, Leadership};
pub use projection::Projection;
pub use request_log::run_request_log;
pub use roster::{run_roster, RosterOptions};
pub use runner::{rebuild, rebuild_with, run_all, run_with, RebuildSummary, RunOptions};
pub use worker::Outcome;
