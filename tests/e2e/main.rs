//! End-to-end tests: one binary, real NATS JetStream and PostgreSQL.

mod chaos;
mod commands;
mod docs;
mod eventlog;
mod hostile;
mod input_bounds;
mod live;
mod poison;
mod privacy;
mod projections;
mod queries;
