//! The commands, one file per command or small family. Each takes the
//! [`Principal`](crate::policy::Principal) it runs for (as the account is now) and already-parsed input, and holds who may run
//! it given the current state, what it does to each aggregate it touches, and the ids
//! it derives; facts from outside the log come through [`ports`](crate::ports).
//!
//! - [`report`]: submission and every change to a report (one file per family).
//! - [`dispatch`]: assignment of a report to a patrol, chosen or automatic.
//! - [`patrol`]: patrol registration, crew and call sign, availability.
//! - [`account`]: registration, the ADMIN bootstrap, role changes.
//! - [`invite`]: invites and their acceptance.
//! - [`station`]: creating stations.
//! - [`station_edit`]: editing, deactivating and reactivating a station.
//! - [`crime_type`]: creating a crime type of the catalogue.
//! - [`crime_type_edit`]: editing and retiring a crime type.
//! - [`subject`]: erasure of a data subject.
//! - [`station_sla`]: a station's SLA policy.
//! - [`sla`]: SLA warnings, breaches and escalations (the SLA worker).
//! - [`user`]: user management (who sees an account, name, role, standing, password).
//! - [`webhook`]: webhook subscriptions (create, edit, rotate, replay, delete, disable).
//! - [`device`]: the devices an account is notified on (register, list, remove, expire).
//! - [`bulk_dispatch`]: automatic assignment of a station's queue, report by report.

pub mod account;
pub mod bulk_dispatch;
pub mod crime_type;
pub mod crime_type_edit;
pub mod device;
pub mod dispatch;
pub mod invite;
pub mod patrol;
pub mod report;
pub mod sla;
pub mod station;
pub mod station_edit;
pub mod station_sla;
pub mod subject;
pub mod user;
pub mod webhook;
