//! Accounts: registration, login, role changes, invites.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::commands::account::{self, NewAccount};
use precinct_app::commands::invite::{self, NewInvite};
use precinct_domain::account::Account;
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::values::{Email, Role};
use precinct_eventlog::Actor;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::{derive_token, token_hash, Caller, JobOwner};
use crate::extract::Path;
use crate::extract::{ClientAddr, Cmd, Validator};
use crate::openapi::{
    BadRequest, CommandErrors, CommandHeaders, Conflict, CreationErrors, NotFound, PayloadTooLarge,
    PublicCommandErrors, Unavailable, ValidationFailed,
};
use crate::ports::{Facts, OwnedJobs};
use crate::problem::{ApiError, ApiResult};
use crate::throttle::{account_key, addr_key};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/register", post(register))
        .route("/users/login", post(login))
        .route("/admin/users/{id}/role", patch(change_role))
        .route("/invites", post(create_invite))
        .route("/invites/accept", post(accept_invite))
}

#[derive(OpenApi)]
#[openapi(paths(register, login, change_role, create_invite, accept_invite))]
pub struct Api;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RegisterAccountBody)]
pub struct RegisterBody {
    #[schema(example = "ana@example.com")]
    email: String,
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128)]
    password: String,
    name: String,
    /// Default `CITIZEN`; any other role needs an ADMIN token.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::Role>)]
    role: Option<String>,
    /// The staff member's station (needs an ADMIN token).
    #[serde(default)]
    station_id: Option<Uuid>,
}

/// An account, without any credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    id: Uuid,
    email: String,
    name: String,
    #[schema(value_type = crate::openapi::Role)]
    role: Role,
    station_id: Option<Uuid>,
    active: bool,
    position: u64,
}

impl AccountView {
    fn of(a: &Account, position: u64) -> Self {
        AccountView {
            id: a.id.as_uuid(),
            email: a
                .email
                .as_ref()
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            name: a.name.clone(),
            role: a.role,
            station_id: a.station_id.map(|s| s.as_uuid()),
            active: a.active,
            position,
        }
    }
}

pub(crate) fn check_password(v: &mut Validator, password: &str) {
    let n = password.chars().count();
    if n < 10 {
        v.fail("password", "must be at least 10 characters");
    } else if n > 128 {
        v.fail("password", "must be at most 128 characters");
    }
}

/// Register an account.
///
/// Roles: anyone registers a CITIZEN account; only an ADMIN token may set `role` or
/// `station_id`. The e-mail address is reserved atomically with the account: a second
/// registration of it is a 409. Registrations without an ADMIN token are limited per
/// client address (429 with `Retry-After`); password hashing is bounded (503 with
/// `Retry-After` when the server is at capacity).
#[utoipa::path(
    post,
    path = "/users/register",
    operation_id = "register_account",
    tag = "accounts",
    params(CommandHeaders),
    request_body = RegisterBody,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "The new account", body = AccountView),
        CreationErrors,
    )
)]
async fn register(
    State(state): State<AppState>,
    caller: Option<Caller>,
    ClientAddr(addr): ClientAddr,
    cmd: Cmd<RegisterBody>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let b = cmd.body;
    let mut v = Validator::new();
    let email = v.check("email", Email::parse(&b.email));
    check_password(&mut v, &b.password);
    let role = match &b.role {
        None => Some(Role::Citizen),
        Some(r) => v.check("role", r.parse::<Role>()),
    };
    v.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::invalid("body", "invalid"));
    };
    let station = b.station_id.map(StationId::new);
    let by = caller.map(|c| c.principal());
    account::may_register(by.as_ref(), role, station)?;
    if !by.is_some_and(|p| p.is_admin()) {
        // Counted before anything is looked up: the 409 of a taken address must not
        // become a free oracle of who has an account.
        let key = format!("register|{}", addr_key(addr));
        let hour = std::time::Duration::from_secs(3600);
        if let Err(retry_after_secs) = state
            .windows
            .hit(&key, state.config.registrations_per_hour, hour)
            .await?
        {
            return Err(ApiError::TooManyRequests { retry_after_secs });
        }
    }
    let meta = cmd
        .ctx
        .meta(by.map(|p| p.actor()).unwrap_or(Actor::Anonymous));
    let passwords = OwnedJobs {
        jobs: &state.passwords,
        owner: JobOwner {
            address: addr_key(addr),
            account: email.as_str().to_string(),
        },
    };
    let new = NewAccount {
        email,
        password: b.password,
        name: b.name,
        role,
        station,
    };
    let out = account::register(&state.app, by.as_ref(), &meta, new, &passwords).await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView::of(&out.account, out.position)),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    #[schema(example = "ana@example.com")]
    email: String,
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginUser {
    id: Uuid,
    email: String,
    #[schema(value_type = crate::openapi::Role)]
    role: Role,
    station_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send it as `Authorization: Bearer <access_token>`.
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
    user: LoginUser,
}

/// Log in: exchange an e-mail address and password for an access token.
///
/// Roles: anyone. Throttled (429 with `Retry-After`): 5 consecutive failures for one
/// account from one client address lock that pair for 15 minutes; an account failing
/// from many addresses backs off progressively (up to 5 minutes between attempts) for
/// every address it has not logged in from before; an address failing at many accounts
/// is limited per hour; every attempt from one address, and every successful login of
/// one account, counts in a 10-minute window; one address or account may wait for only
/// a share of the server's password checks at once (ADR 0010).
#[utoipa::path(
    post,
    path = "/users/login",
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "An access token", body = LoginResponse),
        PublicCommandErrors,
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    cmd: Cmd<LoginBody>,
) -> ApiResult<Json<LoginResponse>> {
    let (a, version) = sign_in(&state, addr, &cmd.body).await?;
    let token = state.tokens.issue(a.id, a.role, a.station_id, version)?;
    Ok(Json(LoginResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl.as_secs(),
        user: LoginUser::of(&a),
    }))
}

impl LoginUser {
    /// The role and station as they are now (an account's stream may be behind the
    /// account view).
    pub(crate) fn set_current(&mut self, role: Role, station: Option<StationId>) {
        self.role = role;
        self.station_id = station.map(|s| s.as_uuid());
    }

    pub(crate) fn of(a: &Account) -> Self {
        LoginUser {
            id: a.id.as_uuid(),
            email: a
                .email
                .as_ref()
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            role: a.role,
            station_id: a.station_id.map(|s| s.as_uuid()),
        }
    }
}

/// The one sign-in path of `POST /users/login` and the console's `POST /session`: the
/// throttles, the password check, and the account's standing. The account and its
/// stream version, or 401 (429/503 from the throttles and the password limiter).
pub(crate) async fn sign_in(
    state: &AppState,
    addr: Option<std::net::IpAddr>,
    body: &LoginBody,
) -> ApiResult<(Account, u64)> {
    // Accounts registered before e-mail addresses had to be ASCII can still sign in.
    let email = Email::parse_existing(&body.email).ok();
    let owner = JobOwner {
        address: addr_key(addr),
        account: account_key(&state.config.secret, &body.email),
    };
    let attempt = state
        .throttle
        .admit(owner.account.clone(), owner.address.clone())
        .await?;
    let checked = check_login(state, &owner, email.as_ref(), body.password.clone()).await;
    match checked {
        Ok(Some(found)) => {
            state.throttle.succeeded(&attempt).await;
            Ok(found)
        }
        // A wrong password (or no such active account) stays charged: a failure.
        Ok(None) => {
            state.throttle.failed(&attempt).await;
            Err(ApiError::Unauthorized("wrong e-mail or password".into()))
        }
        Err(e) => {
            // The password was never checked: the attempt is not a failure.
            state.throttle.not_checked(&attempt).await;
            Err(e)
        }
    }
}

/// The active account these credentials open, if any. Unknown addresses are verified
/// against a dummy hash: they take as long as known ones.
async fn check_login(
    state: &AppState,
    owner: &JobOwner,
    email: Option<&Email>,
    password: String,
) -> ApiResult<Option<(Account, u64)>> {
    let account = match email {
        Some(email) => match state.app.email_owner(email).await? {
            Some(id) => Some(state.app.load::<Account>(id.as_uuid()).await?),
            None => None,
        },
        None => None,
    };
    let hash = account
        .as_ref()
        .and_then(|(a, _)| a.password_hash.as_ref())
        .map(|h| h.as_str().to_string());
    let ok = state.passwords.verify_for(owner, password, hash).await?;
    let Some((a, version)) = account.filter(|(a, _)| ok && a.active) else {
        return Ok(None);
    };
    // Active and not erased, as the account view knows it at this version or later.
    let standing = state
        .accounts
        .current(a.id, version)
        .await?
        .is_some_and(|access| access.check(version).is_ok());
    Ok(standing.then_some((a, version)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    #[schema(value_type = crate::openapi::Role)]
    role: String,
    /// The station of a PATROL, DISPATCHER or SUPERVISOR.
    #[serde(default)]
    station_id: Option<Uuid>,
}

/// Change an account's role (and station).
///
/// Roles: ADMIN. Takes effect at once for the account's tokens already issued (in every
/// API process within a second) and ends its open live streams. In the same append, the
/// account leaves the crew of every patrol it can no longer serve in (any patrol unless
/// it stays a PATROL, and then those of other stations). The last active ADMIN keeps
/// their role (409). `PATCH /users/{id}` does the same and more.
#[utoipa::path(
    patch,
    path = "/admin/users/{id}/role",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "The account"), CommandHeaders),
    request_body = RoleBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account after the change", body = AccountView),
        CommandErrors,
    )
)]
async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<RoleBody>,
) -> ApiResult<Json<AccountView>> {
    let by = caller.principal();
    account::may_change_role(&by)?;
    let role = cmd
        .body
        .role
        .parse::<Role>()
        .map_err(|e| ApiError::invalid("role", e.to_string()))?;
    let station = cmd.body.station_id.map(StationId::new);
    let meta = cmd.ctx.meta(by.actor());
    let id = AccountId::new(id);
    let out =
        account::change_role(&state.app, &by, &meta, id, role, station, &Facts(&state)).await?;
    Ok(Json(AccountView::of(&out.account, out.position)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    #[schema(value_type = crate::openapi::Role)]
    role: String,
    #[serde(default)]
    station_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InviteView {
    /// The invite code: give it to the invitee (only its hash is stored).
    code: String,
    email: String,
    #[schema(value_type = crate::openapi::Role)]
    role: Role,
    station_id: Option<Uuid>,
    expires_at: DateTime<Utc>,
    position: u64,
}

/// Invite a person to a role (and station); the answer carries the invite code.
///
/// Roles: ADMIN (any role, any station); SUPERVISOR (PATROL or DISPATCHER of their own
/// station).
#[utoipa::path(
    post,
    path = "/invites",
    tag = "accounts",
    params(CommandHeaders),
    request_body = InviteBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The invite, with its code", body = InviteView),
        CreationErrors,
    )
)]
async fn create_invite(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<InviteBody>,
) -> ApiResult<(StatusCode, Json<InviteView>)> {
    let by = caller.principal();
    invite::may_invite(&by)?;
    let mut v = Validator::new();
    let email = v.check("email", Email::parse(&cmd.body.email));
    let role = v.check("role", cmd.body.role.parse::<Role>());
    v.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::invalid("body", "invalid"));
    };
    let meta = cmd.ctx.meta(by.actor());
    // The code is a bearer secret derived from the command id: a retry hands out the
    // same code, and only its hash is stored.
    let code = derive_token(&state.config.secret, "invite", meta.command_id);
    let code_hash = token_hash(&code).ok_or_else(|| ApiError::Internal("code hash".into()))?;
    let valid_for = chrono::Duration::from_std(state.config.invite_ttl)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let new = NewInvite {
        email,
        role,
        station: cmd.body.station_id.map(StationId::new),
        code_hash,
        valid_for,
    };
    let out = invite::create_invite(&state.app, &by, &meta, new).await?;
    let invite = &out.invite;
    Ok((
        StatusCode::CREATED,
        Json(InviteView {
            code,
            email: invite
                .email
                .as_ref()
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            role: invite.role,
            station_id: invite.station_id.map(|s| s.as_uuid()),
            expires_at: out.expires_at,
            position: out.position,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteBody {
    /// The invite code (in the body, never in the URL: paths are logged).
    code: String,
    name: String,
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128)]
    password: String,
}

/// Accept an invite: create the invited account (role and station from the invite).
///
/// Roles: anyone holding the invite code. An unknown code is a 404; an expired or used
/// invite, an invite whose author may no longer invite to its role and station
/// (deactivated, erased, demoted or moved), or an e-mail address already taken, a 409
/// (found before the password is hashed). Limited per client address (429 with `Retry-After`). The code travels in
/// the body: the old `POST /invites/{code}/accept` is gone (its paths are redacted in
/// the request log).
#[utoipa::path(
    post,
    path = "/invites/accept",
    tag = "accounts",
    params(CommandHeaders),
    request_body = AcceptInviteBody,
    responses(
        (status = 201, description = "The new account", body = AccountView),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn accept_invite(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    cmd: Cmd<AcceptInviteBody>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let mut v = Validator::new();
    check_password(&mut v, &cmd.body.password);
    v.finish()?;
    // Counted before the code is looked up, like self-registration.
    let address = addr_key(addr);
    let key = format!("invite-accept|{address}");
    let hour = std::time::Duration::from_secs(3600);
    if let Err(retry_after_secs) = state
        .windows
        .hit(&key, state.config.invite_accepts_per_hour, hour)
        .await?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let code_hash = token_hash(&cmd.body.code).ok_or(ApiError::NotFound)?;
    let meta = cmd.ctx.meta(Actor::Anonymous);
    let b = cmd.body;
    // The invite stands for the one account it creates.
    let passwords = OwnedJobs {
        jobs: &state.passwords,
        owner: JobOwner {
            address,
            account: format!("invite|{}", code_hash.as_str()),
        },
    };
    let out = invite::accept_invite(
        &state.app, &meta, &code_hash, b.name, b.password, &passwords,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView::of(&out.account, out.position)),
    ))
}
