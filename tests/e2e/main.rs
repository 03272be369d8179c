//! End-to-end tests: one binary, real NATS JetStream and PostgreSQL.

mod access;
mod chaos;
mod command_rate;
mod commands;
mod contention;
mod control;
mod docs;
mod eventlog;
mod hostile;
mod idempotency;
mod input_bounds;
mod live;
mod overload;
mod own_writes;
mod poison;
mod privacy;
mod projections;
mod queries;
mod reporter_view;
mod routing;
mod snapshots;
mod stations;
mod store;
mod throttle;
mod transport;
mod users;
