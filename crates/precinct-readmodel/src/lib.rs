//! Precinct's read models in PostgreSQL, as their readers see them: the schema (the
//! migrations in `migrations/`), the row types and typed, keyset-paginated queries, the
//! checkpoint and quarantine reads, waiting until the read models include a log
//! position (`X-Min-Position`, routing), and — in a module of its own, as it is not a
//! read model — the login throttle's tables.
//!
//! What this crate deliberately is not: it knows nothing of NATS or HTTP (it depends on
//! sqlx and the pure domain only), authorises nobody (queries take the scoping filters
//! the API chose) and writes no read-model row: the projectors of
//! `precinct-projections` do, and depend on this crate for the schema and the
//! checkpoint table. (It does write tables that are not read models: the throttle's
//! windows, the console's sessions, the snapshots `as_of` starts from, the webhook
//! delivery ledger, the push outbox, and the record of the indexes a rebuild deferred.)
//!
//! Main items: [`migrate`], [`PgPool`], [`queries`] with [`queries::Page`] and
//! [`queries::PageRequest`], [`wait_for_position`], [`wait_for_projection`],
//! [`PositionWatcher`], [`status()`] with [`ProjectionStatus`], [`QueryError`].
//!
//! # Layout
//! - [`queries`]: the read API: reports, queue, inbox, patrols, workloads, SLA,
//!   stations, crime types, accounts, audit, request log.
//! - [`status`](mod@status): lag and quarantine per projection; waiting for a position.
//! - [`checkpoint`]: reading the `checkpoints` table.
//! - [`deferred_indexes`]: the secondary indexes a rebuild drops and builds again after
//!   the replay, recorded so that a rebuild that dies leaves none missing (ADR 0041).
//! - [`quarantine`]: reading the `quarantine` table (poison events, ADR 0009).
//! - [`snapshots`]: sealed snapshots of reports for `as_of` (ADR 0022): a cache of the
//!   log the API writes, not a projection.
//! - [`throttle`]: login throttling's counters and rate windows (ADR 0010): state of
//!   the API shared by its replicas, not a projection.
//! - [`sessions`]: the console's browser sessions (ADR 0029): state of the API shared
//!   by its replicas (logout holds on every one), not a projection.
//! - [`webhook_ledger`]: the webhook delivery ledger (ADR 0028): cursors and delivery
//!   rows the active deliverer writes, not a projection.
//! - [`mail_ledger`]: the reporter mail ledger (ADR 0033): the mailer's cursor and one
//!   row per mail, written by the active mailer, not a projection.
//! - [`push_outbox`]: the push deliverer's cursor and outbox (ADR 0032): what to send to
//!   which device and how it went, written by the active push deliverer, not a
//!   projection.
//! - [`error`]: [`QueryError`], why a read could not answer.

pub mod checkpoint;
pub mod deferred_indexes;
pub mod error;
pub mod mail_ledger;
pub mod push_outbox;
pub mod quarantine;
pub mod queries;
pub mod sessions;
pub mod snapshots;
pub mod status;
pub mod throttle;
pub mod webhook_ledger;

pub use error::QueryError;
pub use sqlx::PgPool;
pub use status::{
    status, status_of, wait_for_position, wait_for_projection, PositionWatcher, ProjectionStatus,
};

/// The read models fed by the event log, by the name of their checkpoint row (stable
/// forever; each projector of `precinct-projections` is named so).
pub mod names {
    pub const REPORTS: &str = "reports";
    pub const PATROLS: &str = "patrols";
    pub const STATIONS: &str = "stations";
    /// The crime-type catalogue (ADR 0026).
    pub const CRIME_TYPES: &str = "crime_types";
    /// Webhook subscriptions (ADR 0028).
    pub const WEBHOOKS: &str = "webhooks";
    pub const ACCOUNTS: &str = "accounts";
    pub const AUDIT: &str = "audit";
    /// Milestones of reports and assignments for the analytics endpoints (ADR 0027).
    pub const ANALYTICS: &str = "analytics";
    /// The request log, fed by its own stream.
    pub const REQUEST_LOG: &str = "request_log";
    /// Patrol locations and tracks, fed by the positions stream.
    pub const PATROL_POSITIONS: &str = "patrol_positions";
}

/// The names of every projection fed by the event log, i.e. whose checkpoints
/// [`wait_for_position`] waits on.
pub const EVENT_PROJECTIONS: &[&str] = &[
    names::REPORTS,
    names::PATROLS,
    names::STATIONS,
    names::CRIME_TYPES,
    names::WEBHOOKS,
    names::ACCOUNTS,
    names::AUDIT,
    names::ANALYTICS,
];

/// Builds any secondary index a rebuild that died left dropped
/// ([`deferred_indexes`]), then applies the migrations in `migrations/` (idempotent;
/// safe to run from several processes at once: sqlx takes an advisory lock). The
/// indexes come first so the migrations see the schema they were written against.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    if deferred_indexes::table_exists(pool).await? {
        deferred_indexes::restore(pool).await?;
    }
    let mut migrator = sqlx::migrate!("./migrations");
    // Tolerate migrations this binary does not know (a newer binary ran first).
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}

/// One round trip to PostgreSQL (readiness).
pub async fn ping(pool: &PgPool) -> Result<(), QueryError> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await?;
    Ok(())
}
