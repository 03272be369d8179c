//! Test harness for Precinct's black-box tests.
//!
//! Everything here talks to real servers on loopback: the shared NATS and PostgreSQL
//! that `make test` starts (`NATS_URL`, `DATABASE_URL`), or private nats-server processes
//! a test starts, kills and restarts itself. Isolation is per test: a fresh stream and
//! subject prefix on NATS, a fresh database on PostgreSQL.
//!
//! It is not a mock of anything.
//!
//! # Layout
//! - [`client`]: the typed HTTP client of the API (`Call` per endpoint, `Client`, `Res`),
//!   shared with the chaos campaign and the bench (`crates/precinct-bench`);
//! - [`world`]: the world builder (precincts, staff, citizens, patrols with officers);
//! - [`sse`], [`prometheus`]: reading event streams and `/metrics`;
//! - [`app`]: `TestApp`, a Precinct process per e2e test, driven through the client;
//! - [`reference`]: the read models a log must make (the domain's fold), compared with
//!   PostgreSQL's, for the model test and the fault campaign;
//! - [`chaos`]: the fault campaign; [`nats`], [`pg`]: servers a test starts itself;
//! - [`python`]: the venv's Python, for the independent implementations tests check with.

pub mod app;
pub mod chaos;
pub mod client;
pub mod nats;
pub mod pg;
pub mod prometheus;
pub mod python;
pub mod reference;
pub mod sse;
pub mod world;

use uuid::Uuid;

/// A prefix unique to one test, for stream names and subjects.
pub fn unique_prefix() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}
