//! Open311 GeoReport v2 at `/open311/v2/` (ADR 0031): the standard's paths, parameter
//! names, `.json`/`.xml` formats and error arrays, over Precinct's own parts. Services
//! are the active crime types of the catalogue (ADR 0026); `POST requests` is the same
//! submission as `POST /crimes` (its command, anonymous throttle and tracking token);
//! `GET requests` shows what the public `GET /crimes` list shows (coarse location, no
//! personal field, withdrawn reports left out). Outside the OpenAPI document: its bodies
//! are form-encoded and its errors are not problem+json.
//!
//! Layout: the document model [`Doc`] and its two renderings; errors ([`Failure`]);
//! the catalogue as services; the handlers.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use precinct_app::commands::report::submit as submission;
use precinct_domain::report::{Report, ReportLocation, Reporter};
use precinct_domain::values::ReportStatus;
use precinct_eventlog::Actor;
use precinct_readmodel::queries::{self, CrimeTypeRow, PageRequest, PublicReport, ReportFilter};
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{token_hash, Caller};
use crate::extract::{ClientAddr, CmdCtx, Validator};
use crate::ports::Facts;
use crate::problem::ApiError;
use crate::routes::crimes::{reporter, throttle_anonymous};
use crate::views::coarse;
use crate::AppState;

/// The specification the discovery document names.
const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";
/// When this endpoint's behaviour last changed (discovery `changeset`).
const CHANGESET: &str = "2026-11-29T00:00:00Z";
/// Requests one `GET requests` answers at most (the standard allows up to 1,000).
pub const MAX_REQUESTS: u32 = 200;
/// The longest `start_date`..`end_date` span, and the default window (the standard's).
const WINDOW_DAYS: i64 = 90;
/// `service_request_id` values one `GET requests` may name.
const MAX_IDS: usize = 100;
/// Crime types read for the service list (pages of 100).
const MAX_TYPES: usize = 1_000;
/// The `description` of a request submitted without one.
const NO_DESCRIPTION: &str = "(submitted through Open311 without a description)";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open311/v2/{file}", get(top).post(submit))
        .route("/open311/v2/services/{file}", get(service_definition))
        .route("/open311/v2/requests/{file}", get(one_request))
        .route("/open311/v2/tokens/{file}", get(token))
}

// ---------------------------------------------------------------------------------------
// Documents and formats

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Json,
    Xml,
}

/// An answer, in a shape both formats render: JSON as usual; XML with each object a
/// parent element and each list an element holding one `item` element per entry.
#[derive(Debug, Clone)]
enum Doc {
    Str(String),
    Num(f64),
    Int(i64),
    Bool(bool),
    Null,
    Obj(Vec<(&'static str, Doc)>),
    List { item: &'static str, items: Vec<Doc> },
}

fn text(s: impl Into<String>) -> Doc {
    Doc::Str(s.into())
}

fn opt(s: Option<impl Into<String>>) -> Doc {
    s.map(text).unwrap_or(Doc::Null)
}

fn time(t: DateTime<Utc>) -> Doc {
    text(t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

impl Doc {
    fn json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Doc::Str(s) => Value::String(s.clone()),
            Doc::Num(n) => serde_json::Number::from_f64(*n)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Doc::Int(n) => Value::from(*n),
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Null => Value::Null,
            Doc::Obj(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.json()))
                    .collect(),
            ),
            Doc::List { items, .. } => Value::Array(items.iter().map(Doc::json).collect()),
        }
    }

    fn xml<W: std::io::Write>(
        &self,
        name: &str,
        w: &mut quick_xml::Writer<W>,
    ) -> std::io::Result<()> {
        let el = w.create_element(name);
        match self {
            Doc::Str(s) => el.write_text_content(BytesText::new(s)).map(drop),
            Doc::Num(n) => el
                .write_text_content(BytesText::new(&n.to_string()))
                .map(drop),
            Doc::Int(n) => el
                .write_text_content(BytesText::new(&n.to_string()))
                .map(drop),
            Doc::Bool(b) => el
                .write_text_content(BytesText::new(if *b { "true" } else { "false" }))
                .map(drop),
            Doc::Null => el.write_empty().map(drop),
            Doc::Obj(fields) if fields.is_empty() => el.write_empty().map(drop),
            Doc::Obj(fields) => el
                .write_inner_content(|w| fields.iter().try_for_each(|(k, v)| v.xml(k, w)))
                .map(drop),
            Doc::List { items, .. } if items.is_empty() => el.write_empty().map(drop),
            Doc::List { item, items } => el
                .write_inner_content(|w| items.iter().try_for_each(|v| v.xml(item, w)))
                .map(drop),
        }
    }

    /// The response: `root` names the XML document element.
    fn render(&self, root: &str, fmt: Fmt, status: StatusCode) -> Response {
        let (body, content_type) = match fmt {
            Fmt::Json => (
                serde_json::to_vec(&self.json()).unwrap_or_default(),
                "application/json; charset=utf-8",
            ),
            Fmt::Xml => {
                let mut w = quick_xml::Writer::new(Vec::new());
                let written = w
                    .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
                    .and_then(|()| self.xml(root, &mut w));
                match written {
                    Ok(()) => (w.into_inner(), "text/xml; charset=utf-8"),
                    // Writing into a Vec cannot fail; answer a 500 rather than half a document.
                    Err(e) => {
                        return Failure::Api(ApiError::Internal(format!("xml: {e}")))
                            .render_sync(fmt)
                    }
                }
            }
        };
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        res
    }
}

/// `name.json` / `name.xml` → (`name`, format). The last dot splits: a token holds one
/// dot itself.
fn split_format(file: &str) -> Result<(&str, Fmt), Failure> {
    match file.rsplit_once('.') {
        Some((name, "json")) if !name.is_empty() => Ok((name, Fmt::Json)),
        Some((name, "xml")) if !name.is_empty() => Ok((name, Fmt::Xml)),
        _ => Err(Failure::bad(
            "the format extension must be .json or .xml (e.g. services.json)",
        )),
    }
}

/// The last segment of the path (`{file}` of the route).
fn file(uri: &Uri) -> &str {
    uri.path().rsplit('/').next().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Errors

/// What went wrong, answered as the standard's error array
/// (`[{"code": 400, "description": "..."}]`, `<errors><error>…`).
#[derive(Debug)]
enum Failure {
    Status(StatusCode, String),
    /// Precinct's own error: its status (422 → the standard's 400) and problem `detail`.
    Api(ApiError),
}

impl Failure {
    fn bad(description: impl Into<String>) -> Self {
        Failure::Status(StatusCode::BAD_REQUEST, description.into())
    }

    fn not_found(description: impl Into<String>) -> Self {
        Failure::Status(StatusCode::NOT_FOUND, description.into())
    }

    fn errors(status: StatusCode, description: String) -> Doc {
        Doc::List {
            item: "error",
            items: vec![Doc::Obj(vec![
                ("code", Doc::Int(i64::from(status.as_u16()))),
                ("description", Doc::Str(description)),
            ])],
        }
    }

    /// A [`Failure::Status`] at once; an [`ApiError`] without its problem body's detail.
    fn render_sync(self, fmt: Fmt) -> Response {
        match self {
            Failure::Status(status, d) => Self::errors(status, d).render("errors", fmt, status),
            Failure::Api(e) => {
                let res = e.into_response();
                let status = open311_status(res.status());
                Self::errors(status, "the request failed".into()).render("errors", fmt, status)
            }
        }
    }

    async fn render(self, fmt: Fmt) -> Response {
        let Failure::Api(e) = self else {
            return self.render_sync(fmt);
        };
        // Precinct's error response (which logs a 5xx cause under an error id), re-shaped.
        let res = e.into_response();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let mut description = problem["detail"]
            .as_str()
            .unwrap_or("the request failed")
            .to_string();
        if let Some(id) = problem["error_id"].as_str() {
            description = format!("{description} (error id {id})");
        }
        let status = open311_status(parts.status);
        let mut out = Self::errors(status, description).render("errors", fmt, status);
        for h in [header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
            if let Some(v) = parts.headers.get(&h) {
                out.headers_mut().insert(h, v.clone());
            }
        }
        out
    }
}

/// The standard answers invalid input with 400; Precinct's 422 becomes that.
fn open311_status(s: StatusCode) -> StatusCode {
    if s == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        s
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<precinct_readmodel::QueryError> for Failure {
    fn from(e: precinct_readmodel::QueryError) -> Self {
        Failure::Api(e.into())
    }
}

async fn answer(out: Result<(Doc, &'static str, StatusCode), Failure>, fmt: Fmt) -> Response {
    match out {
        Ok((doc, root, status)) => doc.render(root, fmt, status),
        Err(f) => f.render(fmt).await,
    }
}

/// Parses a query string the standard's way (unknown parameters refused, 400).
fn params<T: serde::de::DeserializeOwned + Default>(q: &Option<String>) -> Result<T, Failure> {
    match q.as_deref() {
        None | Some("") => Ok(T::default()),
        Some(q) => serde_urlencoded::from_str(q).map_err(|e| Failure::bad(format!("query: {e}"))),
    }
}

// ---------------------------------------------------------------------------------------
// The catalogue as services

/// A crime type as an Open311 service: its `service_code` is the type's own Open311
/// service code, or else its catalogue code.
fn service_code(t: &CrimeTypeRow) -> &str {
    t.service_code.as_deref().unwrap_or(&t.code)
}

fn service_name(t: &CrimeTypeRow) -> String {
    t.names
        .0
        .get("en")
        .and_then(|v| v.as_str())
        .unwrap_or(&t.code)
        .to_string()
}

/// Every crime type (retired ones too: old reports name them), by code; bounded.
async fn catalogue(state: &AppState) -> Result<Vec<CrimeTypeRow>, Failure> {
    let mut out = Vec::new();
    let mut cursor = None;
    while out.len() < MAX_TYPES {
        let page = queries::list_crime_types(
            &state.pool,
            true,
            &PageRequest::after(queries::MAX_LIMIT, cursor),
        )
        .await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// The active types answering to Open311 `code`.
fn types_of<'a>(catalogue: &'a [CrimeTypeRow], code: &str) -> Vec<&'a CrimeTypeRow> {
    catalogue
        .iter()
        .filter(|t| t.active && service_code(t) == code)
        .collect()
}

fn service(t: &CrimeTypeRow) -> Doc {
    let name = service_name(t);
    Doc::Obj(vec![
        ("service_code", text(service_code(t))),
        ("service_name", text(name.clone())),
        ("description", text(name)),
        ("metadata", Doc::Bool(false)),
        ("type", text("realtime")),
        ("keywords", text(t.keywords.join(","))),
        ("group", opt(t.group.clone())),
    ])
}

// ---------------------------------------------------------------------------------------
// GET discovery / services / requests

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceParams {
    #[serde(default, rename = "jurisdiction_id")]
    _jurisdiction_id: Option<String>,
    #[serde(default, rename = "api_key")]
    _api_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default, rename = "jurisdiction_id")]
    _jurisdiction_id: Option<String>,
    #[serde(default, rename = "api_key")]
    _api_key: Option<String>,
    #[serde(default)]
    service_request_id: Option<String>,
    #[serde(default)]
    service_code: Option<String>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// `GET /open311/v2/{discovery,services,requests}.{json,xml}`.
async fn top(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let (name, fmt) = match split_format(file(&uri)) {
        Ok(x) => x,
        Err(f) => return f.render(Fmt::Json).await,
    };
    let out = match name {
        "discovery" => discovery(&state, &headers, &q),
        "services" => services(&state, &q).await,
        "requests" => list_requests(&state, &q).await,
        _ => Err(Failure::not_found(
            "no such resource: discovery, services or requests",
        )),
    };
    answer(out, fmt).await
}

type Answer = Result<(Doc, &'static str, StatusCode), Failure>;

fn discovery(state: &AppState, headers: &HeaderMap, q: &Option<String>) -> Answer {
    let _: ServiceParams = params(q)?;
    let scheme = if state.config.hsts { "https" } else { "http" };
    let url = match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("{scheme}://{host}/open311/v2/"),
        None => "/open311/v2/".to_string(),
    };
    let doc = Doc::Obj(vec![
        ("changeset", text(CHANGESET)),
        (
            "contact",
            text("See the operator of this Precinct deployment"),
        ),
        (
            "key_service",
            text(
                "No api_key is needed: submissions are anonymous (or use a Precinct bearer token)",
            ),
        ),
        (
            "endpoints",
            Doc::List {
                item: "endpoint",
                items: vec![Doc::Obj(vec![
                    ("specification", text(SPECIFICATION)),
                    ("url", text(url)),
                    ("changeset", text(CHANGESET)),
                    ("type", text("production")),
                    (
                        "formats",
                        Doc::List {
                            item: "format",
                            items: vec![text("application/json"), text("text/xml")],
                        },
                    ),
                ])],
            },
        ),
    ]);
    Ok((doc, "discovery", StatusCode::OK))
}

async fn services(state: &AppState, q: &Option<String>) -> Answer {
    let _: ServiceParams = params(q)?;
    let catalogue = catalogue(state).await?;
    let items = catalogue.iter().filter(|t| t.active).map(service).collect();
    Ok((
        Doc::List {
            item: "service",
            items,
        },
        "services",
        StatusCode::OK,
    ))
}

/// `GET /open311/v2/services/{service_code}.{json,xml}`: the service definition. The
/// catalogue defines no extra attributes (every service has `metadata=false`), so the
/// list of attributes is empty.
async fn service_definition(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Response {
    let (code, fmt) = match split_format(file(&uri)) {
        Ok(x) => x,
        Err(f) => return f.render(Fmt::Json).await,
    };
    let out = async {
        let _: ServiceParams = params(&q)?;
        let catalogue = catalogue(&state).await?;
        if types_of(&catalogue, code).is_empty() {
            return Err(Failure::not_found(format!("no service with code {code}")));
        }
        let doc = Doc::Obj(vec![
            ("service_code", text(code)),
            (
                "attributes",
                Doc::List {
                    item: "attribute",
                    items: vec![],
                },
            ),
        ]);
        Ok((doc, "service_definition", StatusCode::OK))
    }
    .await;
    answer(out, fmt).await
}

/// The public statuses of Open311 `open` (being worked on) and `closed` (done with);
/// `WITHDRAWN` is neither: the public never sees it.
fn statuses(status: &str) -> Option<Vec<String>> {
    let of = |open: bool| {
        ReportStatus::ALL
            .iter()
            .filter(move |s| **s != ReportStatus::Withdrawn && s.is_open() == open)
            .map(|s| s.as_str().to_string())
    };
    match status {
        "open" => Some(of(true).collect()),
        "closed" => Some(of(false).collect()),
        _ => None,
    }
}

/// Open311's status and `status_notes` for a Precinct status (ADR 0031).
fn status_of(status: &str) -> (&'static str, &'static str) {
    match status {
        "NEW" => ("open", "Received; not yet assigned"),
        "ASSIGNED" => ("open", "Assigned to a patrol"),
        "ACCEPTED" => ("open", "Accepted by a patrol"),
        "RESPONDING" => ("open", "A patrol is responding"),
        "RESOLVED" => ("open", "Resolved; awaiting review before closing"),
        "CLOSED" => ("closed", "Closed"),
        "REJECTED" => ("closed", "Not pursued"),
        _ => ("closed", "Closed"),
    }
}

fn parse_date(field: &str, s: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Failure::bad(format!(
                "{field} must be a W3C date-time, e.g. 2026-11-01T00:00:00Z"
            ))
        })
}

/// The window of `start_date`..`end_date`: at most 90 days; one bound alone reaches 90
/// days from it; none: the last 90 days.
fn window(
    start: Option<&str>,
    end: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Failure> {
    let span = Duration::days(WINDOW_DAYS);
    let start = start.map(|s| parse_date("start_date", s)).transpose()?;
    let end = end.map(|s| parse_date("end_date", s)).transpose()?;
    let (from, to) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s + span),
        (None, Some(e)) => (e - span, e),
        (None, None) => (now - span, now),
    };
    if from > to {
        return Err(Failure::bad("start_date must not be after end_date"));
    }
    if to - from > span {
        return Err(Failure::bad(format!(
            "start_date and end_date may not span more than {WINDOW_DAYS} days"
        )));
    }
    Ok((from, to))
}

/// `GET requests`: the public list. With `service_request_id` the other filters are
/// ignored (as the standard says).
async fn list_requests(state: &AppState, q: &Option<String>) -> Answer {
    let p: ListParams = params(q)?;
    let catalogue = catalogue(state).await?;
    let public = Some(
        ReportStatus::ALL
            .iter()
            .filter(|s| **s != ReportStatus::Withdrawn)
            .map(|s| s.as_str().to_string())
            .collect::<Vec<_>>(),
    );
    let filter = if let Some(ids) = p.service_request_id.as_deref() {
        let ids = ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Uuid::parse_str(s).map_err(|_| {
                    Failure::bad(format!("service_request_id: {s:?} is not a request id"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(Failure::bad(format!(
                "service_request_id: 1 to {MAX_IDS} comma-separated ids"
            )));
        }
        ReportFilter {
            ids: Some(ids),
            status: public,
            ..ReportFilter::default()
        }
    } else {
        let status = match p.status.as_deref() {
            None => public,
            Some(s) => {
                let mut out = Vec::new();
                for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    out.extend(statuses(part).ok_or_else(|| {
                        Failure::bad(format!("status: {part:?} is not open or closed"))
                    })?);
                }
                Some(out)
            }
        };
        let codes = match p.service_code.as_deref() {
            None => None,
            Some(code) => {
                let types = types_of(&catalogue, code.trim());
                if types.is_empty() {
                    return Err(Failure::bad(format!("no service with code {code}")));
                }
                Some(types.iter().map(|t| t.code.clone()).collect())
            }
        };
        let (from, to) = window(p.start_date.as_deref(), p.end_date.as_deref(), Utc::now())?;
        ReportFilter {
            status,
            crime_type_codes: codes,
            submitted_from: Some(from),
            submitted_to: Some(to),
            ..ReportFilter::default()
        }
    };
    let rows = queries::list_public_reports(
        &state.pool,
        &filter,
        &PageRequest::export_chunk(MAX_REQUESTS, None),
    )
    .await?;
    let by_code: BTreeMap<&str, &CrimeTypeRow> =
        catalogue.iter().map(|t| (t.code.as_str(), t)).collect();
    let items = rows
        .items
        .iter()
        .map(|r| public_request(r, &by_code))
        .collect();
    Ok((
        Doc::List {
            item: "request",
            items,
        },
        "service_requests",
        StatusCode::OK,
    ))
}

/// A report as the public sees it (what `PublicReportView` shows): coarse location, no
/// title, description, address, contact or media.
fn public_request(r: &PublicReport, by_code: &BTreeMap<&str, &CrimeTypeRow>) -> Doc {
    let (status, notes) = status_of(&r.status);
    let ty = r
        .crime_type_codes
        .first()
        .and_then(|c| by_code.get(c.as_str()));
    Doc::Obj(vec![
        ("service_request_id", text(r.id.to_string())),
        ("status", text(status)),
        ("status_notes", text(notes)),
        ("service_name", opt(ty.map(|t| service_name(t)))),
        ("service_code", opt(ty.map(|t| service_code(t).to_string()))),
        ("description", Doc::Null),
        ("agency_responsible", Doc::Null),
        ("service_notice", Doc::Null),
        ("requested_datetime", time(r.submitted_at)),
        ("updated_datetime", time(r.updated_at)),
        ("expected_datetime", Doc::Null),
        ("address", Doc::Null),
        ("address_id", Doc::Null),
        ("zipcode", Doc::Null),
        ("lat", Doc::Num(coarse(r.latitude))),
        ("long", Doc::Num(coarse(r.longitude))),
        ("media_url", Doc::Null),
    ])
}

/// `GET /open311/v2/requests/{id}.{json,xml}`: one request of the public list (a list
/// of one, as the standard has it).
async fn one_request(State(state): State<AppState>, uri: Uri, RawQuery(q): RawQuery) -> Response {
    let (id, fmt) = match split_format(file(&uri)) {
        Ok(x) => x,
        Err(f) => return f.render(Fmt::Json).await,
    };
    let out = async {
        let _: ServiceParams = params(&q)?;
        let missing = || Failure::not_found(format!("no request with id {id}"));
        let id = Uuid::parse_str(id).map_err(|_| missing())?;
        let row = queries::get_public_report(&state.pool, id)
            .await?
            .filter(|r| r.status != ReportStatus::Withdrawn.as_str())
            .ok_or_else(missing)?;
        let catalogue = catalogue(&state).await?;
        let by_code = catalogue.iter().map(|t| (t.code.as_str(), t)).collect();
        let doc = Doc::List {
            item: "request",
            items: vec![public_request(&row, &by_code)],
        };
        Ok((doc, "service_requests", StatusCode::OK))
    }
    .await;
    answer(out, fmt).await
}

/// `GET /open311/v2/tokens/{token}.{json,xml}`: the request a submission's token stands
/// for. The token is `<service_request_id>.<tracking token>`; the tracking token must be
/// the one issued (compared by hash), so a guessed id finds nothing. Answered at once
/// after the submission: a report not yet in the read model is read from the log.
async fn token(State(state): State<AppState>, uri: Uri, RawQuery(q): RawQuery) -> Response {
    let (tok, fmt) = match split_format(file(&uri)) {
        Ok(x) => x,
        Err(f) => return f.render(Fmt::Json).await,
    };
    let out = async {
        let _: ServiceParams = params(&q)?;
        let missing = || Failure::not_found("no request for this token");
        let (id, tracking) = tok.split_once('.').ok_or_else(missing)?;
        let id = Uuid::parse_str(id).map_err(|_| missing())?;
        let hash = token_hash(tracking).ok_or_else(missing)?;
        // The read model, or (just after the submission, before it caught up) the log.
        let found = match queries::tracking_token_hash_of(&state.pool, id).await? {
            Some(stored) => stored.as_deref() == Some(hash.as_str()),
            None => {
                let (report, _) = state.app.load::<Report>(id).await.map_err(ApiError::from)?;
                matches!(
                    &report.reporter,
                    Some(Reporter::Anonymous { tracking_token_hash }) if *tracking_token_hash == hash
                )
            }
        };
        if !found {
            return Err(missing());
        }
        let doc = Doc::List {
            item: "request",
            items: vec![Doc::Obj(vec![
                ("service_request_id", text(id.to_string())),
                ("token", text(tok)),
            ])],
        };
        Ok((doc, "service_requests", StatusCode::OK))
    }
    .await;
    answer(out, fmt).await
}

// ---------------------------------------------------------------------------------------
// POST requests

/// The standard's fields of `POST requests` (form-encoded). `attribute[...]` fields are
/// refused: no service defines attributes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostForm {
    #[serde(default, rename = "jurisdiction_id")]
    _jurisdiction_id: Option<String>,
    /// Accepted and ignored: it identifies nobody (ADR 0031).
    #[serde(default, rename = "api_key")]
    _api_key: Option<String>,
    #[serde(default)]
    service_code: Option<String>,
    #[serde(default)]
    lat: Option<String>,
    #[serde(default)]
    long: Option<String>,
    #[serde(default)]
    address_string: Option<String>,
    #[serde(default)]
    address_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, rename = "device_id")]
    _device_id: Option<String>,
    #[serde(default, rename = "account_id")]
    _account_id: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    media_url: Option<String>,
}

fn given(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The personal fields, as one contact text (sealed with the report's personal details,
/// ADR 0007): `First Last <email> phone`.
fn contact(f: &PostForm) -> Option<String> {
    let name = [given(&f.first_name), given(&f.last_name)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let parts: Vec<String> = [
        Some(name).filter(|n| !n.is_empty()),
        given(&f.email).map(|e| format!("<{e}>")),
        given(&f.phone),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `POST /open311/v2/requests.{json,xml}`.
async fn submit(
    State(state): State<AppState>,
    caller: Result<Option<Caller>, ApiError>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Response {
    let (name, fmt) = match split_format(file(req.uri())) {
        Ok(x) => x,
        Err(f) => return f.render(Fmt::Json).await,
    };
    if name != "requests" {
        return Failure::Status(
            StatusCode::METHOD_NOT_ALLOWED,
            "only requests accepts POST".into(),
        )
        .render(fmt)
        .await;
    }
    let out = submit_request(&state, caller, addr, req).await;
    answer(out, fmt).await
}

async fn submit_request(
    state: &AppState,
    caller: Result<Option<Caller>, ApiError>,
    addr: Option<std::net::IpAddr>,
    req: Request,
) -> Answer {
    let caller = caller?;
    let (parts, body) = req.into_parts();
    match &caller {
        Some(c) => state.commands.take(c)?,
        None => throttle_anonymous(state, None, addr)?,
    }
    let bytes: Bytes = axum::body::to_bytes(body, state.config.body_limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let form_encoded = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_encoded {
        return Err(Failure::bad(
            "the body must be form-encoded (Content-Type: application/x-www-form-urlencoded)",
        ));
    }
    let ctx = CmdCtx::from_parts(&parts, &bytes, addr)?;
    let f: PostForm =
        serde_urlencoded::from_bytes(&bytes).map_err(|e| Failure::bad(format!("body: {e}")))?;
    let code = given(&f.service_code).ok_or_else(|| Failure::bad("service_code is required"))?;
    let catalogue = catalogue(state).await?;
    let ty = *types_of(&catalogue, &code)
        .first()
        .ok_or_else(|| Failure::bad(format!("no service with code {code}")))?;
    let number = |field: &str, s: &Option<String>| -> Result<Option<f64>, Failure> {
        given(s)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| Failure::bad(format!("{field} must be a number")))
            })
            .transpose()
    };
    let (lat, long) = (number("lat", &f.lat)?, number("long", &f.long)?);
    let (lat, long) = match (lat, long) {
        (Some(la), Some(lo)) => (la, lo),
        _ if given(&f.address_string).is_some() || given(&f.address_id).is_some() => {
            return Err(Failure::bad(
                "lat and long are required: this server does not geocode address_string or address_id",
            ))
        }
        _ => return Err(Failure::bad("lat and long (or address_string) are required")),
    };
    let mut v = Validator::new();
    let la = v.check("lat", precinct_domain::values::Latitude::parse(lat));
    let lo = v.check("long", precinct_domain::values::Longitude::parse(long));
    v.finish()?;
    let (Some(la), Some(lo)) = (la, lo) else {
        return Err(Failure::bad("lat and long are invalid"));
    };
    let point = precinct_domain::values::GeoPoint::new(la, lo);
    let meta = ctx.meta(
        caller
            .as_ref()
            .map(|c| c.actor())
            .unwrap_or(Actor::Anonymous),
    );
    let (reporter, tracking) = reporter(state, caller.as_ref(), &meta)?;
    let name = service_name(ty);
    let new = submission::NewReport {
        title: name,
        description: given(&f.description).unwrap_or_else(|| NO_DESCRIPTION.to_string()),
        crime_types: vec![ty.code.clone()],
        location: ReportLocation::new(point, None, None),
        street: given(&f.address_string),
        occurred_at: None,
        media_urls: given(&f.media_url).into_iter().collect(),
        contact: contact(&f),
        // Open311 has no field for it: e-mail updates are asked for on `POST /crimes`.
        notify_email: None,
    };
    let out = submission::submit(&state.app, &meta, reporter, new, &Facts(state))
        .await
        .map_err(ApiError::from)?;
    let id = out.report.id.as_uuid();
    let token = tracking.map(|t| format!("{id}.{t}"));
    let doc = Doc::List {
        item: "request",
        items: vec![Doc::Obj(vec![
            ("service_request_id", text(id.to_string())),
            ("token", opt(token)),
            (
                "service_notice",
                text("Received. In an emergency, call the emergency number instead."),
            ),
            ("account_id", Doc::Null),
        ])],
    };
    Ok((doc, "service_requests", StatusCode::CREATED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_the_last_extension() {
        assert_eq!(
            split_format("services.json").expect("test value"),
            ("services", Fmt::Json)
        );
        assert_eq!(
            split_format("abc.def.xml").expect("test value"),
            ("abc.def", Fmt::Xml)
        );
        assert!(split_format("services").is_err());
        assert!(split_format("services.csv").is_err());
        assert!(split_format(".json").is_err());
    }

    #[test]
    fn windows_are_at_most_ninety_days() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T00:00:00Z")
            .expect("test value")
            .with_timezone(&Utc);
        let (from, to) = window(None, None, now).expect("test value");
        assert_eq!((to - from).num_days(), 90);
        assert_eq!(to, now);
        assert!(window(
            Some("2026-01-01T00:00:00Z"),
            Some("2026-06-01T00:00:00Z"),
            now
        )
        .is_err());
        assert!(window(
            Some("2026-06-01T00:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
            now
        )
        .is_err());
        assert!(window(Some("yesterday"), None, now).is_err());
        let (from, to) = window(Some("2026-01-01T00:00:00+02:00"), None, now).expect("test value");
        assert_eq!(from.to_rfc3339(), "2025-12-31T22:00:00+00:00");
        assert_eq!((to - from).num_days(), 90);
    }

    #[test]
    fn open_and_closed_cover_every_public_status() {
        let open = statuses("open").expect("test value");
        let closed = statuses("closed").expect("test value");
        assert_eq!(
            open,
            ["NEW", "ASSIGNED", "ACCEPTED", "RESPONDING", "RESOLVED"]
        );
        assert_eq!(closed, ["CLOSED", "REJECTED"]);
        for s in open.iter().chain(&closed) {
            let expected = if open.contains(s) { "open" } else { "closed" };
            assert_eq!(status_of(s).0, expected, "{s}");
        }
        assert!(statuses("OPEN").is_none());
    }

    #[test]
    fn xml_renders_lists_as_repeated_elements() {
        let doc = Failure::errors(StatusCode::BAD_REQUEST, "a < b & c".into());
        let res = doc.render("errors", Fmt::Xml, StatusCode::BAD_REQUEST);
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let mut w = quick_xml::Writer::new(Vec::new());
        doc.xml("errors", &mut w).expect("test value");
        assert_eq!(
            String::from_utf8(w.into_inner()).expect("test value"),
            "<errors><error><code>400</code><description>a &lt; b &amp; c</description></error></errors>"
        );
        assert_eq!(
            doc.json(),
            serde_json::json!([{"code": 400, "description": "a < b & c"}])
        );
    }

    #[test]
    fn contact_joins_the_personal_fields() {
        let f = PostForm {
            first_name: Some("Ana".into()),
            last_name: Some(" Cruz ".into()),
            email: Some("ana@example.org".into()),
            phone: Some("+63 912 345 6789".into()),
            ..PostForm::default()
        };
        assert_eq!(
            contact(&f).as_deref(),
            Some("Ana Cruz <ana@example.org> +63 912 345 6789")
        );
        assert_eq!(contact(&PostForm::default()), None);
    }
}
