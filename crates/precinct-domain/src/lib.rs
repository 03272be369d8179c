//! Precinct's domain: the rules of crime reporting and police dispatch, as pure
//! functions over plain values. Each aggregate (report, patrol, account, station,
//! invite, e-mail reservation) decides in `handle(&state, command)` which events a
//! command produces, or refuses it with a typed error; `apply` folds an event into the
//! state; [`fold`] rebuilds a state from its history. Two policies sit beside them:
//! [`routing::route`] picks the station for a new report and
//! [`dispatch::choose_patrol`] picks the patrol for automatic assignment.
//!
//! What this crate deliberately is not: it does no I/O (no NATS, no PostgreSQL, no
//! HTTP), reads no clock and draws no random numbers — times, ids and outside facts
//! (routing inputs, workloads, SLA lengths, password hashes, token digests) arrive
//! inside commands. It does not authorise callers either: the application layer
//! (`precinct-app`) decides *who* may send a command; the domain decides whether the
//! *state* allows it. Nor does it keep two aggregates in step (a report's assignment and
//! the patrol's workload, an account and its e-mail reservation): the application
//! layer's command appends both sides in one batch.
//!
//! Main types: [`Aggregate`] and [`DomainEvent`]; [`report::Report`] with
//! [`report::ReportCommand`], [`report::ReportEvent`], [`report::ReportError`];
//! likewise [`patrol::Patrol`], [`account::Account`], [`station::Station`],
//! [`invite::Invite`] and [`email::EmailReservation`]; value types such as
//! [`values::GeoPoint`], [`values::Email`] and [`values::Priority`]; ids such as
//! [`ids::ReportId`]. Every event payload has a JSON Schema in `schemas/events/`.
//!
//! # Layout
//! - [`aggregate`]: the [`Aggregate`], [`DomainEvent`] and [`DomainError`] traits,
//!   [`ErrorKind`], [`fold`].
//! - [`ids`]: typed UUID identifiers.
//! - [`values`]: enums, bounded text, e-mail, URLs, digests, points and polygons.
//! - [`report`]: the report lifecycle.
//! - [`patrol`]: patrol units, their status and workload.
//! - [`account`]: accounts, roles and stations.
//! - [`admin_guard`]: the one stream every removal of an active ADMIN writes, so that
//!   two removals cannot both leave the system without one.
//! - [`email`]: e-mail reservations (uniqueness of addresses).
//! - [`station`]: precincts and divisions.
//! - [`invite`]: staff invitations.
//! - [`routing`]: which station receives a report.
//! - [`sla`]: a station's SLA policy (deadlines per priority, warning, escalation).
//! - [`crime_type`]: the crime-type catalogue and how free text resolves to its codes.
//! - [`subject`]: data subjects, erasure, which event fields are personal.
//! - [`dispatch`]: which patrol a report is automatically assigned to.
//! - [`area_preview`]: which reports a proposed precinct area would route elsewhere.
//! - [`webhook`]: outbound webhook subscriptions, their filter and what a delivery carries.
//! - [`reporter_contact`]: the e-mail address a reporter gave for news of their report.
//! - [`device`]: the devices (Web Push subscriptions) an account is notified on.

pub mod aggregate;
pub mod ids;
pub mod values;

pub mod account;
pub mod admin_guard;
pub mod area_preview;
pub mod crime_type;
pub mod device;
pub mod dispatch;
pub mod email;
pub mod invite;
pub mod patrol;
pub mod report;
pub mod reporter_contact;
pub mod routing;
pub mod sla;
pub mod station;
pub mod subject;
pub mod webhook;

use std::sync::LazyLock;

pub use aggregate::{fold, Aggregate, DomainError, DomainEvent, ErrorKind};

/// Every event type name this crate can produce, grouped by aggregate. Each has a
/// schema `schemas/events/<name>.v1.json`.
pub fn all_event_types() -> &'static [&'static str] {
    static ALL: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        [
            report::ReportEvent::TYPES,
            patrol::PatrolEvent::TYPES,
            account::AccountEvent::TYPES,
            email::EmailEvent::TYPES,
            station::StationEvent::TYPES,
            invite::InviteEvent::TYPES,
            subject::SubjectEvent::TYPES,
            crime_type::CrimeTypeEvent::TYPES,
            webhook::WebhookEvent::TYPES,
            reporter_contact::ReporterContactEvent::TYPES,
            device::DeviceEvent::TYPES,
            admin_guard::AdminGuardEvent::TYPES,
        ]
        .concat()
    });
    &ALL
}
