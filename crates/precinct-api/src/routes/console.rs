//! `GET /console`: the dispatcher and officer console (ADR 0029), three files embedded
//! in the binary (`crates/precinct-api/console/`): it works offline and from a fresh
//! clone, and loads nothing from any other host (its CSP,
//! [`crate::middleware::CONSOLE_CSP`], allows only this origin). It is a client of
//! the API like any other: it signs in with `POST /session` and calls the documented
//! endpoints with the session cookie. Not part of the OpenAPI document.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
