//! One module per resource; each has a `router()`.

pub mod accounts;
pub mod analytics;
pub mod console;
pub mod control;
pub mod crime_types;
pub mod crimes;
pub mod devices;
pub mod dispatch;
pub mod health;
pub mod links;
pub mod live;
pub mod open311;
pub mod patrols;
pub mod queries;
pub mod session;
pub mod sla_policy;
pub mod stations;
pub mod subjects;
pub mod users;
pub mod webhooks;

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(accounts::router())
        .merge(session::router())
        .merge(console::router())
        .merge(stations::router())
        .merge(crime_types::router())
        .merge(crimes::router())
        .merge(dispatch::router())
        .merge(patrols::router())
        .merge(queries::router())
        .merge(live::router())
        .merge(subjects::router())
        .merge(users::router())
        .merge(control::router())
        .merge(links::router())
        .merge(analytics::router())
        .merge(webhooks::router())
        .merge(devices::router())
        .merge(sla_policy::router())
        .merge(open311::router())
}
