//! The OpenAPI 3.1 description of the API, generated from the code, and the routes that
//! serve it: `GET /openapi.json` and the Swagger UI at `GET /docs` (its assets are
//! compiled into the binary: the page loads nothing from anywhere else).
//!
//! Every handler carries a `#[utoipa::path]` with its roles (in the description), body,
//! its success answer and the problem+json errors of its kind of endpoint — one of the
//! error sets defined here once ([`CommandErrors`], [`CreationErrors`],
//! [`PublicCommandErrors`], [`ListErrors`], [`ReadErrors`]), each answer carrying its own
//! status; each route module lists its handlers in a
//! `#[derive(OpenApi)] struct Api`, and [`spec`] merges them. Types of other crates
//! (domain enums, read-model rows) are described here by schema-only mirrors whose wire
//! shape tests check against the real types.
//!
//! `schemas/openapi.json` is the committed copy of [`spec`]; a test fails when the two
//! differ (`PRECINCT_UPDATE_OPENAPI=1 cargo test -p precinct-api openapi` rewrites it).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};
use uuid::Uuid;

use crate::problem::Problem;
use crate::routes;
use crate::views::ReportView;
use crate::AppState;

/// Name of the bearer-token security scheme (`security(("bearer" = []))`).
pub const BEARER: &str = "bearer";

/// The routes of the docs: `/openapi.json` and the Swagger UI under `/docs`.
pub fn router() -> Router<AppState> {
    let ui = SwaggerUi::new("/docs").config(
        Config::from("/openapi.json")
            // No validator badge: it would send the spec to a third-party service.
            .validator_url("none")
            .try_it_out_enabled(true)
            .persist_authorization(false),
    );
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .merge(ui)
}

/// The API description (this document).
///
/// Roles: anyone.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json",
            body = Object),
    )
)]
async fn openapi_json() -> impl IntoResponse {
    static JSON: LazyLock<String> = LazyLock::new(spec_json);
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str())
}

/// The whole document: every route module's operations, the shared components, the
/// security scheme, and a 500 answer on every operation.
pub fn spec() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for part in [
        routes::health::Api::openapi(),
        routes::accounts::Api::openapi(),
        routes::session::Api::openapi(),
        routes::stations::Api::openapi(),
        routes::crime_types::Api::openapi(),
        routes::webhooks::Api::openapi(),
        routes::devices::Api::openapi(),
        routes::sla_policy::Api::openapi(),
        routes::crimes::Api::openapi(),
        routes::dispatch::Api::openapi(),
        routes::patrols::Api::openapi(),
        routes::queries::Api::openapi(),
        routes::live::Api::openapi(),
        routes::subjects::Api::openapi(),
        routes::users::Api::openapi(),
        routes::control::Api::openapi(),
        routes::links::Api::openapi(),
        routes::analytics::Api::openapi(),
        crate::metrics::Api::openapi(),
        DocsApi::openapi(),
    ] {
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BEARER.into(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from `POST /users/login` (HS256, 15 minutes by default).",
                ))
                .build(),
        )),
    );
    // The public views list every field they may carry: nothing else may appear in them
    // (this also tells them apart from the full view in `ListItem`).
    for name in ["PublicReportView", "PublicLocationView"] {
        if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(name) {
            o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.servers = Some(vec![utoipa::openapi::ServerBuilder::new()
        .url("http://127.0.0.1:8080")
        .description(Some(
            "The server of `make run`; point a client at your deployment's URL instead.",
        ))
        .build()]);
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            // An operation that names no security scheme needs none: say so (`[]`), so
            // that linters and generators do not read it as "unspecified".
            op.security.get_or_insert_with(Vec::new);
            // An optional header is left out, never sent as `null`: its schema is the
            // value's type alone (a nullable header type makes generated clients send
            // `None` or fail on the type).
            for p in op.parameters.iter_mut().flatten() {
                let RefOr::T(p) = p else { continue };
                if p.parameter_in != utoipa::openapi::path::ParameterIn::Header {
                    continue;
                }
                if let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut() {
                    if let utoipa::openapi::schema::SchemaType::Array(types) = &o.schema_type {
                        let kept: Vec<_> = types
                            .iter()
                            .filter(|t| **t != utoipa::openapi::schema::Type::Null)
                            .cloned()
                            .collect();
                        if let [only] = kept.as_slice() {
                            o.schema_type = utoipa::openapi::schema::SchemaType::Type(only.clone());
                        }
                    }
                }
            }
            op.responses
                .responses
                .entry("500".into())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name("InternalError")));
            // Every command (an operation taking `Idempotency-Key`) spends the caller's
            // command budget (ADR 0012).
            let command = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p, RefOr::T(p) if p.name == "Idempotency-Key"));
            if command {
                op.responses
                    .responses
                    .entry("429".into())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("TooManyRequests")));
            }
        }
    }
    add_links(&mut doc);
    crate::openapi_shape::shape(doc)
}

/// OpenAPI links (3.1 §4.8.20): from the answer of an operation that creates something
/// to the operations that take its id — `(creating operation, field of its 201 body,
/// path parameter, operations)`. Generated clients and the stateful phase of the
/// contract fuzzing (`deploy/local/schemathesis.sh`) follow them to create, then use,
/// real ids instead of random ones.
const LINKS: &[(&str, &str, &str, &[&str])] = &[
    (
        "submit_crime",
        "id",
        "id",
        &[
            "get_crime",
            "amend_crime",
            "replace_crime",
            "withdraw_crime",
            "history",
            "add_note",
            "attach_evidence",
            "triage",
            "reject_invalid",
            "possible_duplicates",
            "post_public_update",
            "transfer",
        ],
    ),
    (
        "register_patrol",
        "id",
        "id",
        &[
            "get_patrol",
            "update_patrol",
            "replace_patrol",
            "set_patrol_status",
            "put_patrol_location",
            "post_patrol_locations",
            "get_patrol_location",
            "track",
        ],
    ),
    (
        "create_station",
        "id",
        "id",
        &[
            "get_station",
            "edit_station",
            "preview_station_area",
            "get_station_sla_policy",
            "set_station_sla_policy",
        ],
    ),
    (
        "create_crime_type",
        "code",
        "code",
        &["get_crime_type", "edit_crime_type", "retire_crime_type"],
    ),
    (
        "create_webhook",
        "id",
        "id",
        &[
            "get_webhook",
            "edit_webhook",
            "list_webhook_deliveries",
            "replay_webhook",
            "rotate_webhook_secret",
            "delete_webhook",
        ],
    ),
    (
        "register_account",
        "id",
        "id",
        &[
            "get_user",
            "update_user",
            "change_role",
            "deactivate",
            "reactivate",
            "reset_password",
        ],
    ),
    (
        "accept_invite",
        "id",
        "id",
        &["get_user", "update_user", "change_role", "deactivate"],
    ),
    ("register_my_device", "id", "id", &["remove_my_device"]),
];

/// Adds [`LINKS`] to the 201 answers of the creating operations.
fn add_links(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    for (from, field, parameter, targets) in LINKS {
        let created = doc
            .paths
            .paths
            .values_mut()
            .flat_map(operations_mut)
            .find(|op| op.operation_id.as_deref() == Some(from))
            .and_then(|op| op.responses.responses.get_mut("201"));
        let Some(RefOr::T(created)) = created else {
            continue;
        };
        for target in *targets {
            let link = LinkBuilder::new()
                .operation_id(*target)
                .parameter(*parameter, format!("$response.body#/{field}"))
                .build();
            created.links.insert((*target).to_string(), RefOr::T(link));
        }
    }
}

/// [`spec`] as pretty JSON with a final newline: the exact bytes of
/// `schemas/openapi.json` and of `GET /openapi.json`.
pub fn spec_json() -> String {
    let mut json = spec()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

/// The operations of a path item, in a fixed order.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

#[derive(OpenApi)]
#[openapi(paths(openapi_json))]
struct DocsApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Precinct API",
        description = "Crime reporting and police dispatch.

**Commands** (`POST`, `PUT`, `PATCH`, `DELETE`) answer the new state and the log `position` \
of their last event; send `Idempotency-Key` to make a retry the same command (a key reused \
with a different body is refused: 422), and \
`X-Correlation-Id` (a UUID) to tie it to other commands. **Queries** read the read models; \
a signed-in caller's queries include that caller's own last command (waiting up to 2 s; \
across replicas through the `precinct_written` cookie a command's answer sets). Send \
`X-Min-Position: <position>` to read someone else's write (503 if the read models do not \
reach it within 5 s, 400 if it is past the head of the log).

**Errors** are RFC 9457 `application/problem+json` (schema `Problem`); a 422 lists every \
invalid field in `errors`, a 500 carries an `error_id` to quote.

**Roles**: each operation's description names the roles that may call it. \
\"Station-scoped\" means staff act on their own station only (ADMIN on every station); a \
resource the caller may not see answers 404, not 403.

Every response carries `X-Request-Id` (the caller's, or a new one)."
    ),
    components(
        schemas(Problem),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            ValidationFailed,
            TooManyRequests,
            Unavailable,
            InternalError
        )
    ),
    tags(
        (name = "accounts", description = "Registration, login, roles, invites"),
        (name = "stations", description = "Precincts and divisions"),
        (name = "crime-types", description = "The crime-type catalogue: codes free text resolves to"),
        (name = "webhooks", description = "Outbound webhooks (Standard Webhooks): subscriptions, deliveries, replay"),
        (name = "devices", description = "The devices a staff account is notified on (Web Push)"),
        (name = "users", description = "User management: accounts, standing, passwords, the caller's own account"),
        (name = "crimes", description = "Crime reports: submission, lifecycle, history"),
        (name = "dispatch", description = "Dispatch desk: assignment, queue, workloads, SLA"),
        (name = "patrols", description = "Patrols and their assignments"),
        (name = "audit", description = "Audit trail and request log"),
        (name = "analytics", description = "Funnel, service levels, workload, volume and heatmaps over the reports (ADR 0027)"),
        (name = "operations", description = "Health, metrics, this document")
    )
)]
struct ApiDoc;

// ---------------------------------------------------------------------------------------
// Error answers: reusable responses, all `application/problem+json` with `Problem`.

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// A problem+json answer with its status: what the error sets below are made of (a set
/// lists answers, and each answer brings its own status, so that an operation cannot
/// document one under another's code).
pub trait ErrorAnswer: for<'r> utoipa::ToResponse<'r> {
    const STATUS: u16;
}

macro_rules! problem_responses {
    ($($name:ident($status:literal) => $description:literal;)+) => {$(
        #[doc = $description]
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), RefOr::T(problem_response($description)))
            }
        }

        impl ErrorAnswer for $name {
            const STATUS: u16 = $status;
        }
    )+};
}

problem_responses! {
    BadRequest(400) => "Malformed request: JSON that does not parse, a body without `Content-Type: application/json`, or a bad header, query string or cursor.";
    Forbidden(403) => "Authenticated, but the caller's role (or station) may not do this.";
    NotFound(404) => "No such resource, or the caller may not see it.";
    Conflict(409) => "The resource's state does not allow this (illegal transition, duplicate, concurrent change).";
    PayloadTooLarge(413) => "The body is over the size limit (1 MiB by default).";
    ValidationFailed(422) => "Fields that break a rule; `errors` lists each with its reason.";
    InternalError(500) => "A bug: details are only in the server's logs, under the `error_id` the body carries.";
}

/// No valid bearer token; the answer carries the RFC 6750 challenge.
pub struct Unauthorized;

impl<'r> utoipa::ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<Response>) {
        let mut response = problem_response(
            "No valid bearer token: missing where required, malformed, expired, revoked, or not signed by this server (a bad token is refused even where a token is optional).",
        );
        response.headers.insert(
            "WWW-Authenticate".into(),
            RefOr::T(
                utoipa::openapi::HeaderBuilder::new()
                    .schema(Some(String::schema()))
                    .description(Some(
                        "The challenge (RFC 6750): `Bearer realm=\"precinct\"`, with `error=\"invalid_token\"` when a token was sent but is invalid, expired or revoked",
                    ))
                    .build(),
            ),
        );
        ("Unauthorized", RefOr::T(response))
    }
}

impl ErrorAnswer for Unauthorized {
    const STATUS: u16 = 401;
}

/// A dependency is unavailable, or the server is at capacity; retry later.
pub struct Unavailable;

impl<'r> utoipa::ToResponse<'r> for Unavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        let mut response = problem_response(
            "A dependency (event log, database) is unavailable, a write was not confirmed (retry with the same `Idempotency-Key`), the read models have not reached `X-Min-Position`, or the server is at its capacity for commands or for password hashing (then with `Retry-After`: nothing was done, send it again after that many seconds).",
        );
        response.headers.insert(
            "Retry-After".into(),
            RefOr::T(
                utoipa::openapi::HeaderBuilder::new()
                    .schema(Some(u64::schema()))
                    .description(Some("When present: seconds to wait before retrying"))
                    .build(),
            ),
        );
        ("Unavailable", RefOr::T(response))
    }
}

impl ErrorAnswer for Unavailable {
    const STATUS: u16 = 503;
}

/// Too many attempts; retry later.
pub struct TooManyRequests;

impl<'r> utoipa::ToResponse<'r> for TooManyRequests {
    fn response() -> (&'r str, RefOr<Response>) {
        let mut response = problem_response(
            "Too many attempts or commands from this account or client address; retry after `Retry-After` seconds.",
        );
        response.headers.insert(
            "Retry-After".into(),
            RefOr::T(
                utoipa::openapi::HeaderBuilder::new()
                    .schema(Some(u64::schema()))
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            ),
        );
        ("TooManyRequests", RefOr::T(response))
    }
}

impl ErrorAnswer for TooManyRequests {
    const STATUS: u16 = 429;
}

// ---------------------------------------------------------------------------------------
// Error sets: the errors of one kind of endpoint, listed once (`responses(...)` of an
// operation names its success answer and its set; a few operations add an answer of
// their own). Every operation also answers 500, and every command 429 (its caller's
// command budget): `spec` adds both.

/// `(status, $ref)` of one answer of a set.
fn answer<T: ErrorAnswer>() -> (String, RefOr<Response>) {
    (
        T::STATUS.to_string(),
        RefOr::Ref(Ref::from_response_name(T::response().0)),
    )
}

macro_rules! error_sets {
    ($($(#[$doc:meta])* $name:ident = [$($answer:ident),+ $(,)?];)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, RefOr<Response>> {
                [$(answer::<$answer>()),+].into_iter().collect()
            }
        }
    )+};
}

error_sets! {
    /// A signed-in caller's command on a resource that exists (a report, a patrol, an
    /// account, a data subject): it may not see it (404), may not do this (403), or its
    /// state does not allow it (409).
    CommandErrors = [
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
        ValidationFailed, Unavailable,
    ];
    /// A command that creates a resource (an account, a station, a patrol, an invite).
    CreationErrors = [
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, ValidationFailed,
        Unavailable,
    ];
    /// What anyone may send without an account (a report, a login): limited per client
    /// address or account (429).
    PublicCommandErrors = [
        BadRequest, Unauthorized, PayloadTooLarge, ValidationFailed, TooManyRequests,
        Unavailable,
    ];
    /// A list query: its filters and paging (400, 422), and who may list what (403).
    ListErrors = [BadRequest, Unauthorized, Forbidden, ValidationFailed, Unavailable];
    /// A staff query of one resource: one the caller may not see is 404.
    ReadErrors = [BadRequest, Unauthorized, Forbidden, NotFound, Unavailable];
}

// ---------------------------------------------------------------------------------------
// Request headers shared by many operations.

/// Headers of every command.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CommandHeaders {
    /// 1 to 255 visible ASCII characters, unguessable (a random UUID): the same key from
    /// the same caller (account; anonymous: client address) on the same method and path
    /// makes a retry the same command, answered with the original outcome; reused with
    /// a different body it is refused (422, `errors[0].field` `Idempotency-Key`).
    #[param(
        rename = "Idempotency-Key",
        pattern = "^[!-~]{1,255}$",
        min_length = 1,
        max_length = 255
    )]
    pub idempotency_key: Option<String>,
    /// Ties this command's events to others (default: the request id, when it is a UUID).
    #[param(rename = "X-Correlation-Id")]
    pub correlation_id: Option<Uuid>,
}

/// Headers of every read-model query.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct QueryHeaders {
    /// Answer only once the read models include this log position (a command's
    /// `position`); 503 after 5 s; 400 if it is past the head of the log.
    #[param(rename = "X-Min-Position")]
    pub min_position: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Mirrors of the domain's closed vocabularies (`precinct_domain::values`); a test checks
// that each lists exactly the domain's wire names.

macro_rules! mirror_enums {
    ($($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? })+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, ToSchema)]
        #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }
    )+};
}

mirror_enums! {
    /// What an account may do.
    Role { Citizen, Patrol, Dispatcher, Supervisor, Admin }
    /// How urgent a report is (`LOW` < `MEDIUM` < `HIGH` < `CRITICAL`).
    Priority { Low, Medium, High, Critical }
    /// Where a report stands in its lifecycle.
    ReportStatus { New, Assigned, Accepted, Responding, Resolved, Closed, Rejected, Withdrawn }
    /// A patrol's availability.
    PatrolStatus { Available, Busy, OffDuty }
    /// A precinct covers an area; a division receives reports by crime type.
    StationKind { Precinct, Division }
    /// What kind of file a piece of evidence is.
    MediaType { Photo, Video, Audio, Document }
}

// ---------------------------------------------------------------------------------------
// Mirrors of types of other crates that responses carry as they are.

/// The automatic-assignment decision (`precinct_domain::dispatch::AssignmentDecision`).
#[derive(Debug, ToSchema)]
pub struct AssignmentDecision {
    pub patrol_id: Uuid,
    /// Eligible patrols, best first.
    pub candidates: Vec<RankedCandidate>,
    /// Ineligible patrols, and why.
    pub excluded: Vec<ExcludedCandidate>,
}

/// One eligible patrol in rank order (1 = chosen).
#[derive(Debug, ToSchema)]
pub struct RankedCandidate {
    pub patrol_id: Uuid,
    pub rank: u32,
    pub open_assignments: u32,
    pub declines: u32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub distance_m: Option<f64>,
    /// Which criterion separated this candidate from the next one.
    pub reason: String,
}

/// A patrol that was not eligible, and why.
#[derive(Debug, ToSchema)]
pub struct ExcludedCandidate {
    pub patrol_id: Uuid,
    pub reason: String,
}

/// One patrol with its workload (read model).
#[derive(Debug, ToSchema)]
pub struct PatrolRow {
    pub id: Uuid,
    pub call_sign: String,
    pub station_id: Uuid,
    pub officer_ids: Vec<Uuid>,
    pub status: PatrolStatus,
    /// Last known position, if any.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub location_at: Option<DateTime<Utc>>,
    pub open_assignments: i32,
    pub declines: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Position of the last event applied to this patrol.
    pub last_position: i64,
}

/// A patrol's workload.
#[derive(Debug, ToSchema)]
pub struct Workload {
    pub patrol_id: Uuid,
    pub call_sign: String,
    pub status: PatrolStatus,
    pub open_assignments: i32,
    pub declines: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
}

/// A report past its SLA deadline.
#[derive(Debug, ToSchema)]
pub struct OverdueReport {
    pub id: Uuid,
    pub status: ReportStatus,
    pub station_id: Uuid,
    pub patrol_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// The deadline that applies, in seconds: the station's SLA policy for the report's
    /// priority, else the server's default (ADR 0035).
    pub deadline_secs: i64,
    /// Seconds past the deadline now.
    pub overdue_by_secs: i64,
}

/// Who did what to which target, when: one event.
#[derive(Debug, ToSchema)]
pub struct AuditRow {
    pub position: i64,
    pub at: DateTime<Utc>,
    /// `USER`, `ANONYMOUS` or `SYSTEM`.
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    /// The event type, e.g. `ReportAssigned`.
    pub action: String,
    /// The aggregate type, e.g. `report`.
    pub target_type: String,
    pub target_id: Uuid,
    pub correlation_id: Uuid,
    pub command_id: Uuid,
    /// The station the target belonged to when the event happened (null: a target
    /// without a station, such as a citizen's account). A SUPERVISOR gets only rows of
    /// their own station.
    pub station_id: Option<Uuid>,
}

/// One HTTP request of the request log.
#[derive(Debug, ToSchema)]
pub struct RequestRow {
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub actor_id: Option<Uuid>,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub latency_ms: f64,
    pub client_addr: Option<String>,
}

/// A precinct or division.
#[derive(Debug, ToSchema)]
pub struct StationRow {
    pub id: Uuid,
    pub name: String,
    pub kind: StationKind,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// GeoJSON `Polygon` geometry.
    #[schema(value_type = Option<Object>)]
    pub area: Option<serde_json::Value>,
    /// A division's routing keywords.
    pub crime_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The station's public contact number.
    pub contact_phone: Option<String>,
    /// Takes new reports (routing skips an inactive station).
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

/// A command's answer about a report: the report as the write side knows it, in the
/// caller's view (staff of its station: `ReportView`; its reporter: `ReporterReportView`),
/// and the log position of the command's last event (send it as `X-Min-Position` to read
/// your write).
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenReport {
    #[serde(flatten)]
    pub report: crate::views::ReportAnswer,
    pub position: u64,
}

/// A command's answer about a patrol: the patrol as the write side knows it, and the
/// log position of the command's last event.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenPatrol {
    #[serde(flatten)]
    pub patrol: crate::views::PatrolView,
    pub position: u64,
}

/// The live hub's numbers (`crate::live::LiveStats`).
#[derive(Debug, ToSchema)]
pub struct LiveStats {
    /// Open SSE connections (including ones still catching up).
    pub connections: u64,
    /// Registered subscribers receiving live frames.
    pub subscribers: u64,
    /// Clients dropped because their buffer was full, since start.
    pub dropped_slow_clients: u64,
    /// Last positions sequence the hub has fanned out.
    pub positions_head: u64,
    /// Last log position the hub has fanned out.
    pub events_head: u64,
    /// Patrols with a last known position.
    pub patrols_tracked: u64,
}

macro_rules! pages {
    ($($name:ident => $item:ty;)+) => {$(
        /// One page of a list; pass `next_cursor` as `cursor` for the next page (null: last
        /// page).
        #[derive(Debug, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            pub next_cursor: Option<String>,
        }
    )+};
}

pages! {
    CrimeListPage => routes::queries::ListItem;
    ReportPage => ReportView;
    ReporterReportPage => crate::views::ReporterReportView;
    HistoryPage => routes::queries::HistoryItem;
    PatrolPage => PatrolRow;
    WorkloadPage => Workload;
    OverdueReportPage => OverdueReport;
    AuditPage => AuditRow;
    RequestPage => RequestRow;
    StationPage => StationRow;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use serde_json::Value;

    use super::*;

    fn manifest_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn committed_path() -> PathBuf {
        manifest_dir().join("../../schemas/openapi.json")
    }

    /// `schemas/openapi.json` is what the code generates.
    #[test]
    fn openapi_committed_spec_is_current() {
        let generated = spec_json();
        let path = committed_path();
        if std::env::var("PRECINCT_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &generated).expect("write schemas/openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != generated {
            let first = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .map(|i| i + 1)
                .unwrap_or(committed.lines().count().min(generated.lines().count()) + 1);
            panic!(
                "schemas/openapi.json is not what the code generates (first difference at line \
                 {first}).\nIf the API change is intended, refresh it with:\n\n    \
                 PRECINCT_UPDATE_OPENAPI=1 cargo test -p precinct-api openapi\n\nand commit \
                 the file."
            );
        }
    }

    fn enum_values(schema: RefOr<Schema>) -> Vec<String> {
        let v = serde_json::to_value(schema).expect("schema JSON");
        v["enum"]
            .as_array()
            .expect("an enum schema")
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn names<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Vec<String> {
        all.iter().map(|v| f(*v).to_string()).collect()
    }

    /// The mirrored vocabularies list exactly the domain's wire names.
    #[test]
    fn openapi_enums_match_the_domain() {
        use precinct_domain::values as d;
        assert_eq!(
            enum_values(Role::schema()),
            names(d::Role::ALL, d::Role::as_str)
        );
        assert_eq!(
            enum_values(Priority::schema()),
            names(d::Priority::ALL, d::Priority::as_str)
        );
        assert_eq!(
            enum_values(ReportStatus::schema()),
            names(d::ReportStatus::ALL, d::ReportStatus::as_str)
        );
        assert_eq!(
            enum_values(PatrolStatus::schema()),
            names(d::PatrolStatus::ALL, d::PatrolStatus::as_str)
        );
        assert_eq!(
            enum_values(StationKind::schema()),
            names(d::StationKind::ALL, d::StationKind::as_str)
        );
        assert_eq!(
            enum_values(MediaType::schema()),
            names(d::MediaType::ALL, d::MediaType::as_str)
        );
    }

    /// The mirrors of other crates' types serialise with the same field names as the
    /// real types (values are checked end to end in `tests/e2e/docs.rs`).
    #[test]
    fn openapi_mirrors_have_the_real_fields() {
        use precinct_readmodel::queries as q;
        fn fields<T: Serialize>(v: &T) -> BTreeSet<String> {
            match serde_json::to_value(v).expect("JSON") {
                Value::Object(m) => m.keys().cloned().collect(),
                other => panic!("not an object: {other}"),
            }
        }
        fn schema_fields<T: ToSchema>() -> BTreeSet<String> {
            let v = serde_json::to_value(T::schema()).expect("schema JSON");
            v["properties"]
                .as_object()
                .expect("an object schema")
                .keys()
                .cloned()
                .collect()
        }
        let now = Utc::now();
        let id = Uuid::nil();
        let patrol = q::PatrolRow {
            id,
            call_sign: String::new(),
            station_id: id,
            officer_ids: vec![],
            status: String::new(),
            latitude: None,
            longitude: None,
            location_at: None,
            open_assignments: 0,
            declines: 0,
            last_assigned_at: None,
            registered_at: now,
            updated_at: now,
            last_position: 0,
        };
        assert_eq!(fields(&patrol), schema_fields::<PatrolRow>());
        let workload = q::Workload {
            patrol_id: id,
            call_sign: String::new(),
            status: String::new(),
            open_assignments: 0,
            declines: 0,
            last_assigned_at: None,
        };
        assert_eq!(fields(&workload), schema_fields::<Workload>());
        let overdue = q::OverdueReport {
            id,
            status: String::new(),
            station_id: id,
            patrol_id: None,
            assigned_at: None,
            accepted_at: None,
            deadline_secs: 0,
            overdue_by_secs: 0,
            since: now,
        };
        assert_eq!(fields(&overdue), schema_fields::<OverdueReport>());
        let audit = q::AuditRow {
            position: 0,
            at: now,
            actor_kind: String::new(),
            actor_id: None,
            actor_role: None,
            action: String::new(),
            target_type: String::new(),
            target_id: id,
            correlation_id: id,
            command_id: id,
            station_id: None,
        };
        assert_eq!(fields(&audit), schema_fields::<AuditRow>());
        let request = q::RequestRow {
            seq: 0,
            at: now,
            request_id: String::new(),
            actor_id: None,
            method: String::new(),
            path: String::new(),
            status: 0,
            latency_ms: 0.0,
            client_addr: None,
        };
        assert_eq!(fields(&request), schema_fields::<RequestRow>());
        let station = q::StationRow {
            id,
            name: String::new(),
            kind: String::new(),
            latitude: None,
            longitude: None,
            area: None,
            crime_types: vec![],
            created_at: now,
            contact_phone: None,
            active: true,
            updated_at: now,
        };
        assert_eq!(fields(&station), schema_fields::<StationRow>());
        let page = q::Page::<()> {
            items: vec![],
            next_cursor: None,
        };
        assert_eq!(fields(&page), schema_fields::<ReportPage>());
        let pid = precinct_domain::ids::PatrolId::new(id);
        let decision = precinct_domain::dispatch::AssignmentDecision {
            patrol_id: pid,
            candidates: vec![precinct_domain::dispatch::RankedCandidate {
                patrol_id: pid,
                rank: 1,
                open_assignments: 0,
                declines: 0,
                last_assigned_at: None,
                distance_m: None,
                reason: String::new(),
            }],
            excluded: vec![precinct_domain::dispatch::ExcludedCandidate {
                patrol_id: pid,
                reason: String::new(),
            }],
        };
        assert_eq!(fields(&decision), schema_fields::<AssignmentDecision>());
        assert_eq!(
            fields(&decision.candidates[0]),
            schema_fields::<RankedCandidate>()
        );
        assert_eq!(
            fields(&decision.excluded[0]),
            schema_fields::<ExcludedCandidate>()
        );
        let live = crate::live::LiveStats {
            connections: 0,
            subscribers: 0,
            dropped_slow_clients: 0,
            positions_head: 0,
            events_head: 0,
            patrols_tracked: 0,
        };
        assert_eq!(fields(&live), schema_fields::<LiveStats>());
        assert_eq!(
            serde_json::to_value(&decision).expect("JSON")["patrol_id"],
            Value::String(id.to_string())
        );
    }

    const METHODS: &[&str] = &[
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    /// (METHOD, path) of every documented operation.
    fn documented() -> BTreeSet<(String, String)> {
        let v = serde_json::to_value(spec()).expect("JSON");
        let mut out = BTreeSet::new();
        for (path, item) in v["paths"].as_object().expect("paths") {
            for m in METHODS {
                if item.get(*m).is_some() {
                    out.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    /// (METHOD, path) of every route the crate's source registers (`Router::route` calls).
    fn registered() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut files = vec![];
        collect_rs(&manifest_dir().join("src"), &mut files);
        // The operations listener is not the API (ADR 0025): its `/metrics` and
        // `/health/ready` are the API's handlers, documented here; its `/health/live`
        // is documented in docs/operations.md.
        files.retain(|f| !f.ends_with("src/ops.rs"));
        // The console's pages (ADR 0029) are a client of the API, not operations of it
        // (as the docs page is): documented in docs/console.md.
        files.retain(|f| !f.ends_with("src/routes/console.rs"));
        for file in files {
            let src = std::fs::read_to_string(&file).expect("read source");
            for (path, methods) in routes_in(&src) {
                // Open311 GeoReport v2 is another standard's API, outside this document
                // (ADR 0031; tested in tests/e2e/open311.rs).
                if path.starts_with("/open311/v2/") {
                    continue;
                }
                assert!(
                    !methods.is_empty(),
                    "{}: no method router recognised for route {path}",
                    file.display()
                );
                for m in methods {
                    out.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                collect_rs(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }

    /// The `Router::route("path", get(a).post(b))` calls of a source file (outside
    /// comments): path and methods.
    fn routes_in(src: &str) -> Vec<(String, Vec<String>)> {
        let needle = concat!(".", "route(");
        let code: String = src
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut out = vec![];
        let mut rest = code.as_str();
        while let Some(at) = rest.find(needle) {
            let args_start = at + needle.len();
            // The call's arguments: up to the matching parenthesis.
            let mut depth = 1;
            let mut end = args_start;
            for (i, c) in rest[args_start..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = args_start + i;
                    break;
                }
            }
            let args = &rest[args_start..end];
            rest = &rest[end..];
            let Some(path) = args.split('"').nth(1) else {
                continue;
            };
            let after_path = args.split_once(',').map(|(_, r)| r).unwrap_or_default();
            let mut methods = vec![];
            for m in METHODS {
                let mut hay = after_path;
                while let Some(i) = hay.find(&format!("{m}(")) {
                    let before = hay[..i].chars().last();
                    if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
                        methods.push((*m).to_string());
                        break;
                    }
                    hay = &hay[i + 1..];
                }
            }
            out.push((path.to_string(), methods));
        }
        out
    }

    /// Every shared answer an operation refers to (through an error set or on its own)
    /// is a component of the document.
    #[test]
    fn openapi_response_refs_resolve() {
        let v = serde_json::to_value(spec()).expect("JSON");
        let components = v["components"]["responses"]
            .as_object()
            .expect("component responses");
        for (path, item) in v["paths"].as_object().expect("paths") {
            for m in METHODS {
                let Some(op) = item.get(*m) else { continue };
                for (status, r) in op["responses"].as_object().expect("responses") {
                    if let Some(name) = r["$ref"].as_str() {
                        let name = name.trim_start_matches("#/components/responses/");
                        assert!(
                            components.contains_key(name),
                            "{m} {path} {status}: no component response {name}"
                        );
                    }
                }
            }
        }
        // The sets carry their answers' own statuses.
        use utoipa::IntoResponses;
        let set = CommandErrors::responses();
        assert_eq!(
            set.keys().map(String::as_str).collect::<Vec<_>>(),
            ["400", "401", "403", "404", "409", "413", "422", "503"]
        );
    }

    /// Every write operation documents 503 with `Retry-After`: the admission limit of
    /// commands (ADR 0021) may answer any of them.
    #[test]
    fn every_write_operation_documents_503() {
        let v = serde_json::to_value(spec()).expect("JSON");
        let mut missing = Vec::new();
        for (path, item) in v["paths"].as_object().expect("paths") {
            for m in ["post", "put", "patch", "delete"] {
                if let Some(op) = item.get(m) {
                    if op["responses"].get("503").is_none() {
                        missing.push(format!("{m} {path}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "no 503 documented: {missing:?}");
    }

    /// Operation ids are unique (clients generate function names from them).
    /// Every link leaves a creating operation's 201 answer, whose body has the field it
    /// reads, for an operation that exists and has the path parameter it fills.
    #[test]
    fn openapi_links_lead_from_a_created_id_to_operations_that_take_it() {
        let doc: serde_json::Value =
            serde_json::from_str(&spec_json()).expect("the document is JSON");
        let operations: Vec<(&String, &serde_json::Value)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .into_iter()
                    .flat_map(|i| i.values())
                    .filter(|op| op.get("operationId").is_some())
                    .map(move |op| (path, op))
            })
            .collect();
        let find = |id: &str| {
            operations
                .iter()
                .find(|(_, op)| op["operationId"] == id)
                .unwrap_or_else(|| panic!("no operation {id}"))
        };
        let mut links = 0;
        for (from, field, parameter, targets) in LINKS {
            let (_, op) = find(from);
            let answer = &op["responses"]["201"];
            let body = answer["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{from}: a 201 body by reference"));
            let body = serde_json::to_string(
                &doc["components"]["schemas"][body.rsplit('/').next().expect("name")],
            )
            .expect("schema");
            // The body's own properties or those of the view it extends.
            let view_has = |json: &str| json.contains(&format!("\"{field}\""));
            let extends = body
                .split("#/components/schemas/")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .any(|name| {
                    view_has(
                        &serde_json::to_string(&doc["components"]["schemas"][name])
                            .expect("schema"),
                    )
                });
            assert!(
                view_has(&body) || extends,
                "{from}: no field {field} in its 201 body"
            );
            for target in *targets {
                let (path, _) = find(target);
                assert!(
                    path.contains(&format!("{{{parameter}}}")),
                    "{target} ({path}) has no path parameter {parameter}"
                );
                let link = &answer["links"][*target];
                assert_eq!(link["operationId"], *target);
                assert_eq!(
                    link["parameters"][*parameter],
                    format!("$response.body#/{field}")
                );
                links += 1;
            }
        }
        assert!(links > 40, "{links} links");
    }

    #[test]
    fn openapi_operation_ids_are_unique() {
        let v = serde_json::to_value(spec()).expect("JSON");
        let mut seen = BTreeSet::new();
        for item in v["paths"].as_object().expect("paths").values() {
            for m in METHODS {
                if let Some(id) = item.get(*m).and_then(|op| op["operationId"].as_str()) {
                    assert!(
                        seen.insert(id.to_string()),
                        "operationId {id} is used twice"
                    );
                }
            }
        }
    }

    /// Every route is documented, and every documented operation is a route.
    #[test]
    fn openapi_documents_every_route() {
        let documented = documented();
        let registered = registered();
        assert!(registered.len() > 30, "found only {registered:?}");
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes without a #[utoipa::path] listed in their module's `Api`: {undocumented:?}"
        );
        let unrouted: Vec<_> = documented.difference(&registered).collect();
        assert!(
            unrouted.is_empty(),
            "documented operations that no router registers: {unrouted:?}"
        );
    }

    /// Every operation names its roles, answers problem+json for its errors, and is
    /// either public or asks for the bearer token.
    #[test]
    fn openapi_operations_are_complete() {
        let v = serde_json::to_value(spec()).expect("JSON");
        for (path, item) in v["paths"].as_object().expect("paths") {
            for m in METHODS {
                let Some(op) = item.get(*m) else { continue };
                let what = format!("{} {path}", m.to_uppercase());
                let description = op["description"].as_str().unwrap_or_default();
                assert!(
                    description.contains("Roles:"),
                    "{what}: the description must name the roles (\"Roles: ...\")"
                );
                assert!(
                    op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{what}: tag"
                );
                let responses = op["responses"].as_object().expect("responses");
                assert!(
                    responses
                        .keys()
                        .any(|k| k.starts_with('2') || k.starts_with('3')),
                    "{what}: a success response"
                );
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let is_problem = r["$ref"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("#/components/responses/"))
                            || r["content"]["application/problem+json"].is_object();
                        // /health/ready answers its JSON status with 503 by design.
                        let ready = path == "/health/ready" && status == "503";
                        assert!(is_problem || ready, "{what}: {status} is not problem+json");
                    }
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "header" {
                        assert!(
                            !p["schema"]["type"].is_array(),
                            "{what}: header {} has a nullable type",
                            p["name"]
                        );
                    }
                }
                // `security: []` is a public operation; `[{}, {bearer}]` an optional token.
                let bearer_required = op["security"].as_array().is_some_and(|s| {
                    !s.is_empty()
                        && !s
                            .iter()
                            .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
                });
                if bearer_required {
                    assert!(responses.contains_key("401"), "{what}: 401");
                }
            }
        }
    }
}
