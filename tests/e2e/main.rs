//! End-to-end tests: one binary, real NATS JetStream and PostgreSQL.

mod commands;
mod eventlog;
mod projections;
mod queries;
