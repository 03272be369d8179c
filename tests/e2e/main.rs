//! End-to-end tests: one binary, real NATS JetStream and PostgreSQL.

mod access;
mod chaos;
mod commands;
mod docs;
mod eventlog;
mod hostile;
mod live;
mod privacy;
mod projections;
mod queries;
