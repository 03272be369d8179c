//! One module per read model fed by the event log; each has a single responsibility
//! and owns its tables.
//!
//! - [`reports`]: the full state of every report (`reports`).
//! - [`patrols`]: the patrol roster and workloads (`patrols`).
//! - [`stations`]: precincts and divisions (`stations`).
//! - [`crime_types`]: the crime-type catalogue (`crime_types`).
//! - [`accounts`]: accounts without credentials (`accounts`).
//! - [`audit`]: one row per event of every type (`audit`).
//! - [`analytics`]: report milestones and assignments for the analytics endpoints
//!   (`analytics_reports`, `analytics_assignments`; `analytics_hourly` by triggers).
//! - [`webhooks`]: webhook subscriptions, without their secrets (`webhooks`).

pub mod accounts;
pub mod analytics;
pub mod audit;
pub mod crime_types;
pub mod patrols;
pub mod reports;
pub mod stations;
pub mod webhooks;
