//! Precinct's read side: projector workers that fold the event log into PostgreSQL
//! read models, and the typed, keyset-paginated queries the HTTP layer asks of them.
//!
//! Each projection is its own task with its own ordered log subscription and its own
//! checkpoint row. A batch of events and the checkpoint that covers it are written in
//! one transaction, so a crash replays exactly what was not committed: no lost and no
//! doubled effect. While catching up a batch takes everything already delivered (up to
//! a cap); when live it takes what is there and does not wait for more. An event that
//! cannot be decoded or applied (a *poison* event) is quarantined with its aggregate's
//! later events in that projection, loudly, and the projection goes on with everything
//! else ([`quarantine`], ADR 0009); an operator retries or skips it.
//!
//! What this crate deliberately is not: it serves no HTTP, authorises nobody (queries
//! take the scoping filters the API layer chose) and never appends to the log. Read
//! models are disposable: [`rebuild`] replays the log into them and gives the same rows.
//!
//! Main types: [`Projection`] (one per read model, in [`projections`]), [`run`] (or
//! [`run_with`] and [`RunOptions`]), [`rebuild`], [`status()`] with [`ProjectionStatus`],
//! [`PositionWatcher`] and [`wait_for_position`] (for `X-Min-Position`),
//! [`quarantine::retry`] and [`quarantine::skip`],
//! [`RequestLogSource`], and in [`queries`] the row types with
//! [`queries::Page`] and [`queries::PageRequest`].
//!
//! # Layout
//! - [`projection`]: the [`Projection`] trait and the list of event projections.
//! - [`projections`]: one module per read model: `reports`, `patrols`, `stations`,
//!   `accounts`, `audit`.
//! - [`request_log`]: the request-log projection, fed by its own JetStream stream.
//! - [`roster`]: patrol locations and the down-sampled track, fed by the positions
//!   stream and written at a lower rate than it is (coalesced per patrol).
//! - [`worker`]: the batch loop every projector runs (checkpoint, poison, retry).
//! - [`quarantine`]: poison events, the aggregates held back, `retry` and `skip`.
//! - [`checkpoint`]: the `checkpoints` table.
//! - [`runner`]: [`migrate`], [`run`], [`rebuild`].
//! - [`status`]: lag and quarantine per projection; waiting for a position.
//! - [`queries`]: the read API: reports, queue, inbox, patrols, workloads, SLA,
//!   stations, accounts, audit, request log.
//! - [`error`]: [`ProjectionError`], [`QueryError`].

pub mod checkpoint;
pub mod error;
pub mod projection;
pub mod projections;
pub mod quarantine;
pub mod queries;
pub mod request_log;
pub mod roster;
pub mod runner;
pub mod status;
pub mod worker;

pub use error::{ProjectionError, QueryError};
pub use precinct_eventlog::RequestRecord;
pub use projection::{Projection, EVENT_PROJECTIONS};
pub use request_log::{run_request_log, RequestLogSource};
pub use roster::{run_roster, RosterOptions};
pub use runner::{
    migrate, rebuild, rebuild_with, run, run_all, run_with, RebuildSummary, RunOptions,
};
pub use status::{
    request_log_status, status, wait_for_position, wait_for_projection, PositionWatcher,
    ProjectionStatus,
};
pub use worker::Outcome;
