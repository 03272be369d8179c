//! User management: `GET /users`, `GET /users/{id}`, `PATCH /users/{id}`, deactivation,
//! reactivation, an ADMIN's password reset, `GET /me` and the caller's own password
//! change. Who may do what is in `precinct_app::commands::user`; what each audience
//! sees is [`UserView`] (ADMIN, the account itself) or [`StaffMemberView`] (the
//! station's SUPERVISOR: no e-mail address).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::commands::user::{self, Audience, Placement, UserUpdate};
use precinct_domain::account::Account;
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::values::Role;
use precinct_readmodel::queries::{self, AccountFilter, AccountRow, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::{Caller, JobOwner};
use crate::export::{self, Format, FormatParam};
use crate::extract::{ClientAddr, Cmd, MinPosition, Path, Validator};
use crate::openapi::{
    BadRequest, CommandErrors, CommandHeaders, Forbidden, ListErrors, NotFound, PayloadTooLarge,
    QueryHeaders, ReadErrors, TooManyRequests, Unauthorized, Unavailable, ValidationFailed,
};
use crate::ports::{Facts, OwnedJobs};
use crate::problem::{ApiError, ApiResult};
use crate::routes::accounts::check_password;
use crate::routes::crimes::NoBody;
use crate::routes::queries::{page, ListQ};
use crate::throttle::addr_key;
use crate::AppState;

/// Password changes one account may attempt per hour (each checks the current
/// password: without a bound, a stolen token would be a password oracle).
const PASSWORD_CHANGES_PER_HOUR: u32 = 10;
/// Longest `q` of `GET /users`.
const TEXT_MAX: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users))
        .route("/users/{id}", get(get_user).patch(update_user))
        .route("/users/{id}/deactivate", post(deactivate))
        .route("/users/{id}/reactivate", post(reactivate))
        .route("/users/{id}/password", post(reset_password))
        .route("/me", get(me))
        .route("/me/password", post(change_password))
}

#[derive(OpenApi)]
#[openapi(paths(
    list_users,
    get_user,
    update_user,
    deactivate,
    reactivate,
    reset_password,
    me,
    change_password
))]
pub struct Api;

/// An account as an ADMIN or the account itself sees it. No credential, ever.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    id: Uuid,
    /// Null once the account's personal data was erased. Always present (it tells this
    /// view from [`StaffMemberView`]).
    #[schema(required = true)]
    email: Option<String>,
    /// Null once the account's personal data was erased.
    name: Option<String>,
    #[schema(value_type = crate::openapi::Role)]
    role: Role,
    station_id: Option<Uuid>,
    active: bool,
    personal_erased: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The log position of the change (answers to commands only).
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u64>,
}

/// An account as the SUPERVISOR of its station sees it: no e-mail address (and no
/// other field than these: the schema says so, which tells it from [`UserView`]).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffMemberView {
    id: Uuid,
    /// Null once the account's personal data was erased.
    name: Option<String>,
    #[schema(value_type = crate::openapi::Role)]
    role: Role,
    station_id: Option<Uuid>,
    active: bool,
    personal_erased: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// An account, in the view its caller's audience gets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserAnswer {
    Full(UserView),
    Staff(StaffMemberView),
}

/// One page of accounts; pass `next_cursor` as `cursor` for the next page (null: last
/// page).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    items: Vec<UserAnswer>,
    next_cursor: Option<String>,
}

fn row_role(row: &AccountRow) -> ApiResult<Role> {
    row.role
        .parse::<Role>()
        .map_err(|e| ApiError::Internal(format!("accounts row role: {e}")))
}

impl UserView {
    /// From the write side (the log, personal fields opened).
    fn of_account(a: &Account, position: Option<u64>) -> Self {
        let erased = a.email.is_none();
        UserView {
            id: a.id.as_uuid(),
            email: a.email.as_ref().map(|e| e.as_str().to_string()),
            name: (!erased).then(|| a.name.clone()),
            role: a.role,
            station_id: a.station_id.map(|s| s.as_uuid()),
            active: a.active,
            personal_erased: erased,
            created_at: a.registered_at,
            updated_at: a.updated_at,
            position,
        }
    }
}

/// The row as `by` may see it.
fn answer_for(by: &precinct_app::Principal, row: AccountRow) -> ApiResult<UserAnswer> {
    let role = row_role(&row)?;
    Ok(match user::audience(by, AccountId::new(row.id)) {
        Audience::Full => UserAnswer::Full(UserView {
            id: row.id,
            email: row.email,
            name: row.name,
            role,
            station_id: row.station_id,
            active: row.active,
            personal_erased: row.personal_erased,
            created_at: row.created_at,
            updated_at: row.updated_at,
            position: None,
        }),
        Audience::Staff => UserAnswer::Staff(StaffMemberView {
            id: row.id,
            name: row.name,
            role,
            station_id: row.station_id,
            active: row.active,
            personal_erased: row.personal_erased,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }),
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserParams {
    #[serde(default)]
    #[param(value_type = Option<crate::openapi::Role>)]
    role: Option<String>,
    /// ADMIN only (a SUPERVISOR lists their own station).
    #[serde(default)]
    station_id: Option<Uuid>,
    #[serde(default)]
    active: Option<bool>,
    /// A case-insensitive part of the name (or, for an ADMIN, of the e-mail address);
    /// at most 200 characters, no control characters.
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

/// List accounts, in registration order.
///
/// Roles: ADMIN (every account, e-mail addresses included); SUPERVISOR (the staff of
/// their own station, without e-mail addresses, whatever `station_id` names). Erased
/// accounts are listed without e-mail or name.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    params(UserParams, FormatParam, QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of accounts", body = UserPage),
        ListErrors,
    )
)]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    format: Format,
    ListQ(p): ListQ<UserParams>,
) -> ApiResult<Response> {
    let by = caller.principal();
    user::may_list(&by)?;
    let mut v = Validator::new();
    let role = p
        .role
        .as_deref()
        .and_then(|r| v.check("role", r.parse::<Role>()));
    if let Some(q) = &p.q {
        if q.chars().count() > TEXT_MAX {
            v.fail("q", "must be at most 200 characters");
        } else if q.chars().any(char::is_control) {
            v.fail("q", "must not contain control characters");
        }
    }
    v.finish()?;
    let pg = page(p.limit, p.cursor)?;
    let filter = if by.is_admin() {
        AccountFilter {
            station_id: p.station_id,
            role: role.map(|r| r.as_str().to_string()),
            active: p.active,
            staff_only: false,
            text: p.q,
            text_in_email: true,
        }
    } else {
        // A SUPERVISOR's list is their station's staff, whatever the filters name.
        AccountFilter {
            station_id: Some(
                by.station_id
                    .map(|s| s.as_uuid())
                    .ok_or_else(ApiError::forbidden)?,
            ),
            role: role.map(|r| r.as_str().to_string()),
            active: p.active,
            staff_only: true,
            text: p.q,
            text_in_email: false,
        }
    };
    if format == Format::Csv {
        state.exports.take(Some(&caller), None)?;
        // An ADMIN's export has every account's full view; a SUPERVISOR's the staff view's
        // columns, whoever the row is.
        let schema = if by.is_admin() {
            "UserView"
        } else {
            "StaffMemberView"
        };
        let fetch = export::query(&state.pool, filter, |pool, f, pg| async move {
            queries::list_accounts(&pool, &f, &pg).await
        });
        return export::pages("users", schema, pg.cursor, pg.limit, fetch, move |r| {
            answer_for(&by, r)
        })
        .await;
    }
    let rows: Page<AccountRow> = queries::list_accounts(&state.pool, &filter, &pg).await?;
    let items = rows
        .items
        .into_iter()
        .map(|r| answer_for(&by, r))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(UserPage {
        items,
        next_cursor: rows.next_cursor,
    })
    .into_response())
}

/// One account.
///
/// Roles: ADMIN (any account); SUPERVISOR (the staff of their own station, without
/// e-mail address); anyone (their own account). Another account is a 404.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "The account"), QueryHeaders),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = UserAnswer),
        ReadErrors,
    )
)]
async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    _min: MinPosition,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<UserAnswer>> {
    let by = caller.principal();
    let row = queries::get_account(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let role = row_role(&row)?;
    if !user::can_see(
        &by,
        AccountId::new(row.id),
        role,
        row.station_id.map(StationId::new),
    ) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(answer_for(&by, row)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// 1 to 200 characters (the account itself or an ADMIN).
    #[serde(default)]
    name: Option<String>,
    /// ADMIN only; with it, `station_id` is the new role's station (absent: none).
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::Role>)]
    role: Option<String>,
    /// ADMIN only; without `role`, moves the account to this station in its role.
    #[serde(default)]
    station_id: Option<Uuid>,
}

/// Change an account's name, role or station.
///
/// Roles: ADMIN (name, role, station of any account); anyone (their own name). A
/// SUPERVISOR sees the staff of their station but changes nothing (403); another account
/// is a 404. A role or station change takes effect at once for the account's tokens
/// already issued and takes the account out of the crews it can no longer serve in;
/// the last active ADMIN keeps their role (409).
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "The account"), CommandHeaders),
    request_body = UpdateUserBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account after the change", body = UserView),
        CommandErrors,
    )
)]
async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<UpdateUserBody>,
) -> ApiResult<Json<UserView>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let b = cmd.body;
    let mut v = Validator::new();
    let role = b
        .role
        .as_deref()
        .and_then(|r| v.check("role", r.parse::<Role>()));
    v.finish()?;
    let station = b.station_id.map(StationId::new);
    let placement = match (role, station) {
        (Some(role), station) => Some(Placement::Role { role, station }),
        (None, Some(s)) => Some(Placement::Station(s)),
        (None, None) => None,
    };
    let change = UserUpdate {
        name: b.name,
        placement,
    };
    let out = user::update(
        &state.app,
        &by,
        &meta,
        AccountId::new(id),
        change,
        &Facts(&state),
    )
    .await?;
    Ok(Json(UserView::of_account(&out.account, Some(out.position))))
}

/// Deactivate an account: it can no longer sign in, its tokens already issued are
/// refused (in every API process within a second), and it leaves every patrol crew.
///
/// Roles: ADMIN. Deactivating oneself, or the last active ADMIN, is a 409 (nothing
/// recorded); an inactive account stays as it is.
#[utoipa::path(
    post,
    path = "/users/{id}/deactivate",
    tag = "users",
    params(("id" = Uuid, Path, description = "The account"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account after the change", body = UserView),
        CommandErrors,
    )
)]
async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<UserView>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let out = user::deactivate(&state.app, &by, &meta, AccountId::new(id), &Facts(&state)).await?;
    Ok(Json(UserView::of_account(&out.account, Some(out.position))))
}

/// Reactivate an account: it may sign in again (tokens issued before its deactivation
/// stay refused; the crews it left are not restored).
///
/// Roles: ADMIN.
#[utoipa::path(
    post,
    path = "/users/{id}/reactivate",
    tag = "users",
    params(("id" = Uuid, Path, description = "The account"), CommandHeaders),
    request_body = Option<NoBody>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account after the change", body = UserView),
        CommandErrors,
    )
)]
async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<NoBody>,
) -> ApiResult<Json<UserView>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let out = user::reactivate(&state.app, &by, &meta, AccountId::new(id)).await?;
    Ok(Json(UserView::of_account(&out.account, Some(out.position))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordBody {
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128)]
    new_password: String,
}

/// Reset an account's password.
///
/// Roles: ADMIN. Every token of the account issued before the reset is refused from
/// then on. Password hashing is bounded (429 or 503 with `Retry-After`).
#[utoipa::path(
    post,
    path = "/users/{id}/password",
    tag = "users",
    params(("id" = Uuid, Path, description = "The account"), CommandHeaders),
    request_body = ResetPasswordBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account after the change", body = UserView),
        CommandErrors,
        (status = 429, response = TooManyRequests),
    )
)]
async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<Uuid>,
    cmd: Cmd<ResetPasswordBody>,
) -> ApiResult<Json<UserView>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    user::may_reset_password(&by)?;
    let mut v = Validator::new();
    check_password(&mut v, &cmd.body.new_password);
    v.finish()?;
    let passwords = OwnedJobs {
        jobs: &state.passwords,
        owner: JobOwner {
            address: addr_key(addr),
            account: format!("user|{id}"),
        },
    };
    let out = user::reset_password(
        &state.app,
        &by,
        &meta,
        AccountId::new(id),
        cmd.body.new_password,
        &passwords,
    )
    .await?;
    Ok(Json(UserView::of_account(&out.account, Some(out.position))))
}

/// The caller's own account, as the log holds it now.
///
/// Roles: anyone signed in.
#[utoipa::path(
    get,
    path = "/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<UserView>> {
    let (account, _) = state.app.load::<Account>(caller.id.as_uuid()).await?;
    if !precinct_domain::Aggregate::version_exists(&account) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(UserView::of_account(&account, None)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    current_password: String,
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128)]
    new_password: String,
}

/// The answer to a password change: a new access token (every token issued before the
/// change, the one that asked included, is refused from then on).
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
    position: u64,
}

/// Change the caller's own password.
///
/// Roles: anyone signed in. `current_password` must match (else 422, nothing recorded);
/// 10 attempts per account per hour (429 with `Retry-After`), and password work is
/// bounded (429 or 503 with `Retry-After`). Every token issued before the change is
/// refused from then on; the answer carries a new one.
#[utoipa::path(
    post,
    path = "/me/password",
    tag = "users",
    params(CommandHeaders),
    request_body = ChangePasswordBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A new access token", body = PasswordChanged),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(addr): ClientAddr,
    cmd: Cmd<ChangePasswordBody>,
) -> ApiResult<Json<PasswordChanged>> {
    let (by, meta) = cmd.ctx.for_caller(&caller);
    let mut v = Validator::new();
    check_password(&mut v, &cmd.body.new_password);
    v.finish()?;
    let key = format!("password-change|{}", by.id);
    let hour = std::time::Duration::from_secs(3600);
    if let Err(retry_after_secs) = state
        .windows
        .hit(&key, PASSWORD_CHANGES_PER_HOUR, hour)
        .await?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let passwords = OwnedJobs {
        jobs: &state.passwords,
        owner: JobOwner {
            address: addr_key(addr),
            account: format!("user|{}", by.id),
        },
    };
    let b = cmd.body;
    let out = user::change_password(
        &state.app,
        &by,
        &meta,
        b.current_password,
        b.new_password,
        &passwords,
    )
    .await?;
    let token = state
        .tokens
        .issue(by.id, by.role, by.station_id, out.position)?;
    Ok(Json(PasswordChanged {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl.as_secs(),
        position: out.position,
    }))
}
