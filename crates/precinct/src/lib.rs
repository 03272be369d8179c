//! The `precinct` process: configuration, start-up and shutdown of its roles (HTTP API,
//! projectors, SLA worker), and the operator commands (migrate, admin, rebuild, replay).
//!
//! It wires the other crates together and owns the only clock-driven loop (the SLA
//! worker); it holds no business rules of its own.
//!
//! # Layout
//! - [`config`]: [`Config`] from the environment and flags.
//! - [`server`]: [`server::start`], the one start-up and shutdown path.
//! - [`ops`]: the operations listener (`/metrics` and probes, ADR 0025).
//! - [`sla`]: the worker that records SLA breaches as events.
//! - [`admin`]: the `ADMIN` bootstrap.
//! - [`tls`]: HTTPS served directly (rustls).
//! - [`webhooks`]: the webhook deliverer (role `webhooks`, ADR 0028).
//! - [`mailer`]: the reporter mailer (SMTP; in the role `webhooks`, ADR 0033).
//! - [`push`]: the push deliverer of officer notifications (Web Push; role `webhooks`,
//!   ADR 0032).

pub mod admin;
pub mod config;
pub mod mailer;
pub mod ops;
mod outbound;
pub mod push;
pub mod server;
pub mod sla;
pub mod tls;
pub mod webhooks;

pub use config::{Config, OpsAddr, Roles, TlsFiles};
