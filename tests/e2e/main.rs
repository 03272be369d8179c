//! End-to-end tests: one binary, real NATS JetStream and PostgreSQL.

mod eventlog;
