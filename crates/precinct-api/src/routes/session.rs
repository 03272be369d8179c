//! The console's browser session (ADR 0029): sign in, renew, look, sign out. The
//! cookies and the CSRF rules are [`crate::session`]'s.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_domain::account::Account;
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::values::Role;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{ClientAddr, Cmd};
use crate::openapi::{BadRequest, Forbidden, PublicCommandErrors, Unauthorized, Unavailable};
use crate::problem::{ApiError, ApiResult};
use crate::routes::accounts::{sign_in, LoginBody, LoginUser};
use crate::session::{check_csrf, check_same_origin, cleared, cookie_token, cookies, csrf_value};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session", post(create).get(show).delete(destroy))
        .route("/session/renew", post(renew))
}

#[derive(OpenApi)]
#[openapi(paths(create, show, renew, destroy))]
pub struct Api;

/// A console session as its page sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    user: LoginUser,
    /// Send it as the `X-Precinct-CSRF` header on every state-changing request (it is
    /// also in the readable cookie `precinct_csrf`).
    csrf_token: String,
    /// Seconds until the session cookie's token expires: renew before then.
    expires_in: u64,
    /// When the session ends, renewed or not.
    session_expires_at: DateTime<Utc>,
    /// The service levels the console's timers count against.
    sla: SlaView,
    /// The URL template (`{z}`, `{x}`, `{y}`) of the map's tile layer
    /// (`PRECINCT_MAP_TILES`); absent: no tiles, a plain map.
    #[serde(skip_serializing_if = "Option::is_none")]
    map_tiles: Option<String>,
}

fn map_tiles(state: &AppState) -> Option<String> {
    state
        .config
        .map_tiles
        .as_ref()
        .map(|t| t.template().to_string())
}

/// The service levels of this deployment (`PRECINCT_SLA_ACCEPT_SECS`,
/// `PRECINCT_SLA_RESPOND_SECS`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaView {
    /// Seconds from assignment to acceptance.
    accept_secs: u64,
    /// Seconds from acceptance to response.
    respond_secs: u64,
}

impl SlaView {
    fn of(state: &AppState) -> Self {
        SlaView {
            accept_secs: state.config.sla_accept.as_secs(),
            respond_secs: state.config.sla_respond.as_secs(),
        }
    }
}

/// The answer that (re)sets both cookies.
fn with_cookies(state: &AppState, status: StatusCode, view: SessionView, token: &str) -> Response {
    let [session, csrf] = cookies(
        token,
        &view.csrf_token,
        view.expires_in as i64,
        state.config.hsts,
    );
    let mut res = (status, Json(view)).into_response();
    let headers = res.headers_mut();
    headers.append(header::SET_COOKIE, session);
    headers.append(header::SET_COOKIE, csrf);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A token for session `sid` of `account`, ending at `end`, and its view.
fn issue(
    state: &AppState,
    user: LoginUser,
    (role, station, version): (Role, Option<StationId>, u64),
    account: AccountId,
    sid: Uuid,
    end: DateTime<Utc>,
) -> ApiResult<(SessionView, String)> {
    let token =
        state
            .tokens
            .issue_session(account, role, station, version, sid, end.timestamp())?;
    let left = (end - Utc::now()).num_seconds().max(0) as u64;
    Ok((
        SessionView {
            user,
            csrf_token: csrf_value(&state.config.secret, sid),
            expires_in: state.tokens.ttl.as_secs().min(left),
            session_expires_at: end,
            sla: SlaView::of(state),
            map_tiles: map_tiles(state),
        },
        token,
    ))
}

/// The account's e-mail, role and station as they are now.
async fn user_of(state: &AppState, caller: &Caller) -> ApiResult<LoginUser> {
    let (account, _) = state.app.load::<Account>(caller.id.as_uuid()).await?;
    let mut user = LoginUser::of(&account);
    user.set_current(caller.role, caller.station_id);
    Ok(user)
}

/// The console session a request is made in (401 without one: a bearer token is no
/// session).
fn session_of(caller: &Caller) -> ApiResult<Uuid> {
    caller.session.ok_or_else(|| {
        ApiError::Unauthorized("no console session: sign in with `POST /session`".into())
    })
}

/// Sign in to the console: the same credentials, throttles and refusals as
/// `POST /users/login`, answered with an `HttpOnly`, `SameSite=Strict` session cookie
/// (`Secure` over HTTPS) holding a short-lived token, and the session's CSRF value.
///
/// Roles: anyone. Only from a page of this server (`Sec-Fetch-Site: same-origin` or an
/// `Origin` naming this host; 403 otherwise). The session lasts at most 12 hours;
/// `POST /session/renew` renews its token until then.
#[utoipa::path(
    post,
    path = "/session",
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 201, description = "Signed in: the session cookies are set", body = SessionView),
        (status = 403, response = Forbidden),
        PublicCommandErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    parts: Parts,
    cmd: Cmd<LoginBody>,
) -> ApiResult<Response> {
    check_same_origin(&parts)?;
    let (account, version) = sign_in(&state, addr, &cmd.body).await?;
    let sid = Uuid::new_v4();
    let end = Utc::now()
        + chrono::Duration::from_std(state.config.session_ttl)
            .map_err(|e| ApiError::Internal(format!("session lifetime: {e}")))?;
    precinct_readmodel::sessions::create(&state.pool, sid, account.id.as_uuid(), end).await?;
    let (view, token) = issue(
        &state,
        LoginUser::of(&account),
        (account.role, account.station_id, version),
        account.id,
        sid,
        end,
    )?;
    Ok(with_cookies(&state, StatusCode::CREATED, view, &token))
}

/// The console session of the request's cookie: who is signed in, the CSRF value and
/// how long the token and the session have left.
///
/// Roles: signed-in, with a console session (a bearer token is not one: 401).
#[utoipa::path(
    get,
    path = "/session",
    tag = "accounts",
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
) -> ApiResult<Json<SessionView>> {
    let sid = session_of(&caller)?;
    let row = precinct_readmodel::sessions::get(&state.pool, sid)
        .await?
        .ok_or_else(|| ApiError::InvalidToken("this console session has ended".into()))?;
    let claims = cookie_token(&parts.headers)
        .and_then(|t| state.tokens.verify(t).ok())
        .ok_or_else(|| ApiError::InvalidToken("this console session has ended".into()))?;
    Ok(Json(SessionView {
        user: user_of(&state, &caller).await?,
        csrf_token: csrf_value(&state.config.secret, sid),
        expires_in: (claims.exp - Utc::now().timestamp()).max(0) as u64,
        session_expires_at: row.expires_at,
        sla: SlaView::of(&state),
        map_tiles: map_tiles(&state),
    }))
}

/// Renew the console session's token (the console does so while it is open), with the
/// account's current role and station; never past the session's end.
///
/// Roles: signed-in, with a console session (a bearer token is not one: 401); the CSRF
/// proofs of every state-changing cookie request (403 without them).
#[utoipa::path(
    post,
    path = "/session/renew",
    tag = "accounts",
    responses(
        (status = 200, description = "Renewed: the session cookies are set again", body = SessionView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
async fn renew(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let sid = session_of(&caller)?;
    let row = precinct_readmodel::sessions::get(&state.pool, sid)
        .await?
        .ok_or_else(|| ApiError::InvalidToken("this console session has ended".into()))?;
    let (view, token) = issue(
        &state,
        user_of(&state, &caller).await?,
        (caller.role, caller.station_id, caller.access.version),
        caller.id,
        sid,
        row.expires_at,
    )?;
    Ok(with_cookies(&state, StatusCode::OK, view, &token))
}

/// Sign out of the console: revokes the session (every replica refuses its cookie from
/// the next request on, even a token not yet expired) and deletes both cookies. An
/// expired token's session is revoked too; without a session cookie it only deletes
/// them.
///
/// Roles: anyone holding a console session cookie; the CSRF proofs of every
/// state-changing cookie request (403 without them).
#[utoipa::path(
    delete,
    path = "/session",
    tag = "accounts",
    responses(
        (status = 204, description = "Signed out: the session is revoked, the cookies deleted"),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
async fn destroy(State(state): State<AppState>, parts: Parts) -> ApiResult<Response> {
    let claims = cookie_token(&parts.headers).and_then(|t| state.tokens.verify_signature(t).ok());
    if let Some(sid) = claims.and_then(|c| c.sid) {
        check_csrf(&parts, &state.config.secret, sid)?;
        precinct_readmodel::sessions::revoke(&state.pool, sid).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    for cookie in cleared(state.config.hsts) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}
