//! The crime-type catalogue (ADR 0026): listing (`GET /crime-types`, public; retired
//! types too with `?include_retired=true`, ADMIN), reading one
//! (`GET /crime-types/{code}`), creating (`POST /crime-types`), editing
//! (`PATCH /crime-types/{code}`) and retiring (`POST /crime-types/{code}/retire`), each
//! by an ADMIN and each an event. Parses, calls `precinct_app::commands::crime_type*`,
//! renders; the rules are the domain's.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::commands::crime_type::{self, CrimeTypeWritten};
use precinct_app::commands::crime_type_edit;
use precinct_domain::crime_type::{CrimeTypeChanges, CrimeTypeCode, CrimeTypeSpec};
use precinct_domain::values::{Priority, Role};
use precinct_readmodel::queries::{self, CrimeTypeRow, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::auth::Caller;
use crate::export::{self, Format, FormatParam};
use crate::extract::ClientAddr;
use crate::extract::{Cmd, MinPosition, Path, Validator};
use crate::openapi::{CommandErrors, CommandHeaders, CreationErrors, ListErrors, QueryHeaders};
use crate::problem::{ApiError, ApiResult};
use crate::routes::crimes::NoBody;
use crate::routes::queries::{page, ListQ};
use crate::routes::stations::Patch;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/crime-types", get(list).post(create))
        .route("/crime-types/{code}", get(get_one).patch(edit))
        .route("/crime-types/{code}/retire", post(retire))
}

#[derive(OpenApi)]
#[openapi(paths(list, get_one, create, edit, retire))]
pub struct Api;

/// A crime type of the catalogue. Public: no personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrimeTypeView {
    /// Stable code, `^[A-Z][A-Z0-9_]{1,31}$`.
    pub code: String,
    /// Language tag → name; always has `en`.
    pub names: BTreeMap<String, String>,
    #[schema(value_type = crate::openapi::Priority)]
    pub default_priority: String,
    /// Lower-case; a free-text crime type containing one resolves to this type.
    pub keywords: Vec<String>,
    /// Open311 `service_code`.
    pub service_code: Option<String>,
    /// Open311 `group`.
    pub group: Option<String>,
    /// False once retired: it stays readable, no new text resolves to it.
    pub active: bool,
    /// Null for the built-in `OTHER`.
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl CrimeTypeView {
    fn of_row(r: CrimeTypeRow) -> Self {
        CrimeTypeView {
            code: r.code,
            names: r
                .names
                .0
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
                .collect(),
            default_priority: r.default_priority,
            keywords: r.keywords,
            service_code: r.service_code,
            group: r.group,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A command's answer: the type after it, and the log position of its event.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenCrimeType {
    #[serde(flatten)]
    pub crime_type: CrimeTypeView,
    pub position: u64,
}

impl WrittenCrimeType {
    fn of(out: CrimeTypeWritten) -> Self {
        let t = out.crime_type;
        let s = t.spec;
        WrittenCrimeType {
            crime_type: CrimeTypeView {
                code: t.code.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                names: s.names,
                default_priority: s.default_priority.as_str().to_owned(),
                keywords: s.keywords,
                service_code: s.service_code,
                group: s.group,
                active: t.active,
                created_at: Some(t.created_at),
                updated_at: Some(t.updated_at),
            },
            position: out.position,
        }
    }
}

/// One page of crime types, by code.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrimeTypePage {
    pub items: Vec<CrimeTypeView>,
    /// Pass as `cursor` for the next page (null: last page).
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Retired types too (ADMIN only).
    #[serde(default)]
    include_retired: bool,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// List the crime-type catalogue, by code.
///
/// Roles: anyone; `include_retired=true`: ADMIN.
///
/// Active types and the built-in `OTHER`, 1 to 100 a page (20 by default).
#[utoipa::path(
    get,
    path = "/crime-types",
    operation_id = "list_crime_types",
    tag = "crime-types",
    params(ListParams, FormatParam, QueryHeaders),
    responses(
        (status = 200, description = "A page of crime types", body = CrimeTypePage),
        ListErrors,
    )
)]
async fn list(
    State(state): State<AppState>,
    caller: Option<Caller>,
    _min: MinPosition,
    ClientAddr(addr): ClientAddr,
    format: Format,
    ListQ(p): ListQ<ListParams>,
) -> ApiResult<Response> {
    if p.include_retired {
        caller
            .as_ref()
            .ok_or_else(|| ApiError::Unauthorized("authentication required".into()))?
            .require(&[Role::Admin])?;
    }
    let pg = page(p.limit, p.cursor)?;
    if format == Format::Csv {
        state.exports.take(caller.as_ref(), addr)?;
        let fetch = export::query(
            &state.pool,
            p.include_retired,
            |pool, retired, pg| async move { queries::list_crime_types(&pool, retired, &pg).await },
        );
        return export::pages(
            "crime-types",
            "CrimeTypeView",
            pg.cursor,
            pg.limit,
            fetch,
            |r| Ok(CrimeTypeView::of_row(r)),
        )
        .await;
    }
    let Page { items, next_cursor } =
        queries::list_crime_types(&state.pool, p.include_retired, &pg).await?;
    Ok(Json(CrimeTypePage {
        items: items.into_iter().map(CrimeTypeView::of_row).collect(),
        next_cursor,
    })
    .into_response())
}

/// One crime type, active or retired.
///
/// Roles: anyone.
#[utoipa::path(
    get,
    path = "/crime-types/{code}",
    operation_id = "get_crime_type",
    tag = "crime-types",
    params(("code" = String, Path, description = "The type's code"), QueryHeaders),
    responses(
        (status = 200, description = "The crime type", body = CrimeTypeView),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
async fn get_one(
    State(state): State<AppState>,
    _min: MinPosition,
    Path(code): Path<String>,
) -> ApiResult<Json<CrimeTypeView>> {
    let code = CrimeTypeCode::parse(&code).map_err(|_| ApiError::NotFound)?;
    let row = queries::get_crime_type(&state.pool, code.as_str())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(CrimeTypeView::of_row(row)))
}

/// A new crime type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrimeTypeBody {
    /// `^[A-Z][A-Z0-9_]{1,31}$`; `OTHER` is built in.
    code: String,
    /// Language tag → name (1 to 200 characters), at most 20; `en` is required.
    names: BTreeMap<String, String>,
    /// `LOW`, `MEDIUM` (default), `HIGH` or `CRITICAL`.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::Priority>)]
    default_priority: Option<String>,
    /// At most 50, each 1 to 100 characters (lower-cased, duplicates dropped).
    #[serde(default)]
    keywords: Vec<String>,
    /// Open311 `service_code`: 1 to 64 of `A-Z a-z 0-9 _ . -`.
    #[serde(default)]
    service_code: Option<String>,
    /// Open311 `group`: 1 to 100 characters.
    #[serde(default)]
    group: Option<String>,
}

fn priority(v: &mut Validator, p: Option<&str>) -> Option<Priority> {
    p.and_then(|p| v.check("default_priority", p.parse::<Priority>()))
}

/// Create a crime type.
///
/// Roles: ADMIN.
///
/// A code that exists (active or retired) is 409, so is `OTHER`; of two concurrent
/// creations of one code, one is 201 and the other 409.
#[utoipa::path(
    post,
    path = "/crime-types",
    operation_id = "create_crime_type",
    tag = "crime-types",
    params(CommandHeaders),
    request_body = CrimeTypeBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new crime type", body = WrittenCrimeType),
        CreationErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<CrimeTypeBody>,
) -> ApiResult<(StatusCode, Json<WrittenCrimeType>)> {
    let by = caller.principal();
    crime_type::may_change(&by)?;
    let b = cmd.body;
    let mut v = Validator::new();
    let code = match CrimeTypeCode::parse(&b.code) {
        Ok(c) => Some(c),
        Err(e) => {
            v.fail("code", e.to_string().trim_start_matches("code: "));
            None
        }
    };
    let default_priority = priority(&mut v, b.default_priority.as_deref());
    v.finish()?;
    let code = code.ok_or_else(|| ApiError::invalid("code", "invalid"))?;
    let spec = CrimeTypeSpec {
        names: b.names,
        default_priority: default_priority.unwrap_or_default(),
        keywords: b.keywords,
        service_code: b.service_code,
        group: b.group,
    };
    let meta = cmd.ctx.meta(by.actor());
    let out = crime_type::create(&state.app, &by, &meta, code, spec).await?;
    Ok((StatusCode::CREATED, Json(WrittenCrimeType::of(out))))
}

/// The changes to a crime type; a field left out is kept, `null` removes an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditCrimeTypeBody {
    /// The whole new name map (`en` required).
    #[serde(default)]
    names: Option<BTreeMap<String, String>>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::Priority>)]
    default_priority: Option<String>,
    /// The whole new keyword list.
    #[serde(default)]
    keywords: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    service_code: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    group: Patch<String>,
}

fn patch<T>(p: Patch<T>) -> Option<Option<T>> {
    match p {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Value(v) => Some(Some(v)),
    }
}

fn path_code(code: &str) -> ApiResult<CrimeTypeCode> {
    CrimeTypeCode::parse(code).map_err(|_| ApiError::NotFound)
}

/// Edit a crime type: names, default priority, keywords, Open311 service code and group.
///
/// Roles: ADMIN.
///
/// Applies to reports submitted after its position; codes already resolved are never
/// rewritten. A concurrent edit is decided again on the fresh type (last writer wins,
/// field by field). An edit that changes nothing appends nothing. `OTHER` is 409.
#[utoipa::path(
    patch,
    path = "/crime-types/{code}",
    operation_id = "edit_crime_type",
    tag = "crime-types",
    params(("code" = String, Path, description = "The type's code"), CommandHeaders),
    request_body = EditCrimeTypeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The type after the edit", body = WrittenCrimeType),
        CommandErrors,
    )
)]
async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    cmd: Cmd<EditCrimeTypeBody>,
) -> ApiResult<Json<WrittenCrimeType>> {
    let by = caller.principal();
    crime_type::may_change(&by)?;
    let code = path_code(&code)?;
    let b = cmd.body;
    let mut v = Validator::new();
    let default_priority = priority(&mut v, b.default_priority.as_deref());
    v.finish()?;
    let changes = CrimeTypeChanges {
        names: b.names,
        default_priority,
        keywords: b.keywords,
        service_code: patch(b.service_code),
        group: patch(b.group),
    };
    let meta = cmd.ctx.meta(by.actor());
    let out = crime_type_edit::update(&state.app, &by, &meta, code, changes).await?;
    Ok(Json(WrittenCrimeType::of(out)))
}

/// Retire a crime type: it stays readable, no new text resolves to it.
///
/// Roles: ADMIN.
///
/// Reports that resolved to it keep it. Already retired: nothing appended. `OTHER` is
/// 409.
#[utoipa::path(
    post,
    path = "/crime-types/{code}/retire",
    operation_id = "retire_crime_type",
    tag = "crime-types",
    params(("code" = String, Path, description = "The type's code"), CommandHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The retired type", body = WrittenCrimeType),
        CommandErrors,
    )
)]
async fn retire(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<WrittenCrimeType>> {
    let by = caller.principal();
    crime_type::may_change(&by)?;
    let code = path_code(&code)?;
    let meta = cmd.ctx.meta(by.actor());
    let out = crime_type_edit::retire(&state.app, &by, &meta, code).await?;
    Ok(Json(WrittenCrimeType::of(out)))
}
