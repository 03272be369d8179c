//! Accounts: registration, login, role changes, invites.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use precinct_app::email::{reserve_email, EmailStreams};
use precinct_domain::account::{Account, AccountCommand};
use precinct_domain::email::EmailReservation;
use precinct_domain::ids::{AccountId, InviteId, StationId};
use precinct_domain::invite::{invite_id_for_code_hash, Invite, InviteCommand};
use precinct_domain::patrol::{serves_in, Patrol, PatrolCommand};
use precinct_domain::station::Station;
use precinct_domain::values::{Email, PasswordHash, Role};
use precinct_domain::Aggregate;
use precinct_eventlog::Actor;
use precinct_projections::queries;
use precinct_projections::Projection;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::{derive_token, Caller};
use crate::extract::Path;
use crate::extract::{ClientAddr, Cmd, Validator};
use crate::openapi::{
    BadRequest, CommandHeaders, Conflict, Forbidden, NotFound, PayloadTooLarge, TooManyRequests,
    Unauthorized, Unavailable, ValidationFailed,
};
use crate::policy::token_hash;
use crate::problem::{ApiError, ApiResult};
use crate::throttle::{account_key, addr_key};
use crate::AppState;

/// Namespace for ids derived from command ids (so a retried creation targets the same id).
pub const ID_NS: Uuid = Uuid::from_u128(0x0d7e_52a4_8c1f_4a8e_b9b1_3f0a_6e2c_9d15);

pub fn derived_id(command_id: Uuid, kind: &str) -> Uuid {
    Uuid::new_v5(&ID_NS, format!("{kind}|{command_id}").as_bytes())
}

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

fn check_password(v: &mut Validator, password: &str) {
    let n = password.chars().count();
    if n < 10 {
        v.fail("password", "must be at least 10 characters");
    } else if n > 128 {
        v.fail("password", "must be at most 128 characters");
    }
}

async fn require_station(state: &AppState, id: StationId) -> ApiResult<()> {
    let (station, _) = state.app.load::<Station>(id.as_uuid()).await?;
    if station.version_exists() {
        Ok(())
    } else {
        Err(ApiError::invalid("station_id", "no such station"))
    }
}

/// Creates an account and its e-mail reservation in one atomic append: two concurrent
/// registrations of one address cannot both succeed.
// The three callers (admin registration, citizen sign-up, invite acceptance) each pass
// every field explicitly; a one-use parameter struct would only rename them.
#[allow(clippy::too_many_arguments)]
async fn create_account(
    state: &AppState,
    ctx: &crate::extract::CmdCtx,
    actor: Actor,
    email: Email,
    name: String,
    role: Role,
    station_id: Option<StationId>,
    password_hash: String,
    invite: Option<InviteId>,
) -> ApiResult<(Account, u64)> {
    let meta = ctx.meta(actor);
    let account_id = AccountId::new(derived_id(meta.command_id, "account"));
    let password_hash = PasswordHash::parse(&password_hash)
        .map_err(|e| ApiError::Internal(format!("password hash: {e}")))?;
    let emails = state.app.email_streams(&email).await?;
    let email_id = emails.for_new_reservation();
    let decide = AccountDecision {
        invite,
        account_id,
        emails,
        email: &email,
        name: &name,
        role,
        station_id,
        password_hash: &password_hash,
    };
    let out = match invite {
        Some(invite) => precinct_app::run!(
            state.app,
            &meta,
            Invite,
            ApiError,
            invite.as_uuid(),
            |uow| { decide.apply(uow).await }
        )?,
        None => precinct_app::run!(
            state.app,
            &meta,
            EmailReservation,
            ApiError,
            email_id,
            |uow| { decide.apply(uow).await }
        )?,
    };
    // The account as the write side knows it (also for an idempotent retry).
    let (account, _) = state.app.load::<Account>(account_id.as_uuid()).await?;
    if !account.version_exists() {
        return Err(ApiError::Internal(
            "account missing after registration".into(),
        ));
    }
    Ok((account, out.position))
}

/// The events of a new account: the invite (if any) is used, the e-mail reserved, the
/// account registered — one atomic append.
struct AccountDecision<'a> {
    invite: Option<InviteId>,
    account_id: AccountId,
    emails: EmailStreams,
    email: &'a Email,
    name: &'a str,
    role: Role,
    station_id: Option<StationId>,
    password_hash: &'a PasswordHash,
}

impl AccountDecision<'_> {
    async fn apply(&self, uow: &mut precinct_app::UnitOfWork<'_>) -> ApiResult<()> {
        let at = uow.now();
        let account_id = self.account_id;
        if let Some(invite) = self.invite {
            uow.execute::<Invite>(invite.as_uuid(), InviteCommand::Accept { account_id, at })
                .await?;
        }
        reserve_email(uow, &self.emails, account_id)
            .await
            .map_err(|e| match e {
                precinct_app::AppError::Domain { .. } => {
                    ApiError::Conflict("an account with this e-mail already exists".into())
                }
                other => other.into(),
            })?;
        uow.execute::<Account>(
            account_id.as_uuid(),
            AccountCommand::Register {
                account_id,
                email: self.email.clone(),
                name: self.name.to_string(),
                role: self.role,
                station_id: self.station_id,
                password_hash: self.password_hash.clone(),
                at,
                invite_id: self.invite,
            },
        )
        .await?;
        Ok(())
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
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
async fn register(
    State(state): State<AppState>,
    caller: Option<Caller>,
    ClientAddr(addr): ClientAddr,
    cmd: Cmd<RegisterBody>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let b = &cmd.body;
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
    let station_id = b.station_id.map(StationId::new);
    // Only an ADMIN may choose a role or a station.
    if role != Role::Citizen || station_id.is_some() {
        match &caller {
            Some(c) if c.is_admin() => {}
            Some(_) => return Err(ApiError::forbidden()),
            None => {
                return Err(ApiError::Forbidden(
                    "only an ADMIN may set role or station_id".into(),
                ))
            }
        }
    }
    if !caller.is_some_and(|c| c.is_admin()) {
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
    if let Some(s) = station_id {
        require_station(&state, s).await?;
    }
    let actor = caller.map(|c| c.actor()).unwrap_or(Actor::Anonymous);
    // A taken address is answered at once, before any password work (argon2id is slow
    // and memory-hard on purpose). A retry of this very registration (same command id)
    // goes on, to get its original answer.
    let owner = state.app.email_owner(&email).await?;
    let this_command = AccountId::new(derived_id(
        cmd.ctx.meta(actor.clone()).command_id,
        "account",
    ));
    if owner.is_some_and(|id| id != this_command) {
        return Err(ApiError::Conflict(
            "an account with this e-mail already exists".into(),
        ));
    }
    let hash = state.passwords.hash(b.password.clone()).await?;
    let (account, position) = create_account(
        &state,
        &cmd.ctx,
        actor,
        email,
        b.name.clone(),
        role,
        station_id,
        hash,
        None,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView::of(&account, position)),
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
/// is limited per hour (ADR 0010).
#[utoipa::path(
    post,
    path = "/users/login",
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "An access token", body = LoginResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    cmd: Cmd<LoginBody>,
) -> ApiResult<Json<LoginResponse>> {
    let body = cmd.body;
    // Accounts registered before e-mail addresses had to be ASCII can still sign in.
    let email = Email::parse_existing(&body.email).ok();
    let attempt = state
        .throttle
        .admit(
            account_key(&state.config.secret, &body.email),
            addr_key(addr),
        )
        .await?;
    let checked = check_login(&state, email.as_ref(), body.password).await;
    match checked {
        Ok(Some((a, version))) => {
            state.throttle.succeeded(&attempt).await;
            let token = state.tokens.issue(a.id, a.role, a.station_id, version)?;
            Ok(Json(LoginResponse {
                access_token: token,
                token_type: "Bearer",
                expires_in: state.tokens.ttl.as_secs(),
                user: LoginUser {
                    id: a.id.as_uuid(),
                    email: a
                        .email
                        .as_ref()
                        .map(|e| e.as_str().to_string())
                        .unwrap_or_default(),
                    role: a.role,
                    station_id: a.station_id.map(|s| s.as_uuid()),
                },
            }))
        }
        // A wrong password (or no such active account) stays charged: a failure.
        Ok(None) => Err(ApiError::Unauthorized("wrong e-mail or password".into())),
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
    let ok = state.passwords.verify(password, hash).await?;
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
/// it stays a PATROL, and then those of other stations).
#[utoipa::path(
    patch,
    path = "/admin/users/{id}/role",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "The account"), CommandHeaders),
    request_body = RoleBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account after the change", body = AccountView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    cmd: Cmd<RoleBody>,
) -> ApiResult<Json<AccountView>> {
    caller.require(&[Role::Admin])?;
    let role = cmd
        .body
        .role
        .parse::<Role>()
        .map_err(|e| ApiError::invalid("role", e.to_string()))?;
    let station_id = cmd.body.station_id.map(StationId::new);
    if let Some(s) = station_id {
        require_station(&state, s).await?;
    }
    let listed = patrols_listing(&state, id).await?;
    let meta = cmd.ctx.meta(caller.actor());
    let out = precinct_app::run!(state.app, &meta, Account, ApiError, id, |uow| {
        let at = uow.now();
        uow.execute::<Account>(
            id,
            AccountCommand::ChangeRole {
                role,
                station_id,
                at,
            },
        )
        .await?;
        // Each crew as the log has it now (the list above only says where to look).
        let officer_id = AccountId::new(id);
        for patrol_id in &listed {
            let patrol: Patrol = uow.load(*patrol_id).await?;
            if patrol.is_member(officer_id) && !serves_in(patrol.station_id, role, station_id) {
                uow.execute::<Patrol>(*patrol_id, PatrolCommand::RemoveOfficer { officer_id, at })
                    .await?;
            }
        }
        Ok(())
    })?;
    let account = out
        .state::<Account>(id)
        .ok_or_else(|| ApiError::Internal("account state missing".into()))?;
    Ok(Json(AccountView::of(account, out.position)))
}

/// Most patrols one role change takes an officer out of (a larger number is refused).
const MAX_PATROLS_PER_OFFICER: u32 = 100;

/// The patrols whose crew lists the account. From the patrols read model, once it has
/// caught up with the log as it is now: a crew change acknowledged before this command
/// is seen. (One racing the command may still list the officer; the membership rule,
/// which requires the member's current role to be PATROL of the patrol's station, makes
/// such an entry grant nothing.)
async fn patrols_listing(state: &AppState, account: Uuid) -> ApiResult<Vec<Uuid>> {
    let head = state
        .app
        .log()
        .head()
        .await
        .map_err(precinct_app::AppError::from)?;
    let caught_up = precinct_projections::wait_for_projection(
        &state.pool,
        precinct_projections::projections::patrols::Patrols::NAME,
        head,
        std::time::Duration::from_secs(5),
    )
    .await?;
    if !caught_up {
        return Err(ApiError::Unavailable(
            "the patrol roster is catching up with the log; retry shortly".into(),
        ));
    }
    let listed =
        queries::patrols_listing(&state.pool, account, MAX_PATROLS_PER_OFFICER + 1).await?;
    if listed.len() > MAX_PATROLS_PER_OFFICER as usize {
        return Err(ApiError::Conflict(format!(
            "the account is in more than {MAX_PATROLS_PER_OFFICER} patrols; take it out of some first"
        )));
    }
    Ok(listed)
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
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
async fn create_invite(
    State(state): State<AppState>,
    caller: Caller,
    cmd: Cmd<InviteBody>,
) -> ApiResult<(StatusCode, Json<InviteView>)> {
    caller.require(&[Role::Admin, Role::Supervisor])?;
    let mut v = Validator::new();
    let email = v.check("email", Email::parse(&cmd.body.email));
    let role = v.check("role", cmd.body.role.parse::<Role>());
    v.finish()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(ApiError::invalid("body", "invalid"));
    };
    let station_id = cmd.body.station_id.map(StationId::new);
    if caller.role == Role::Supervisor {
        // A supervisor staffs their own station with officers and dispatchers.
        if !matches!(role, Role::Patrol | Role::Dispatcher) {
            return Err(ApiError::Forbidden(
                "a SUPERVISOR may invite PATROL and DISPATCHER only".into(),
            ));
        }
        if station_id != caller.station_id {
            return Err(ApiError::Forbidden(
                "a SUPERVISOR may invite to their own station only".into(),
            ));
        }
    }
    if let Some(s) = station_id {
        require_station(&state, s).await?;
    }
    let meta = cmd.ctx.meta(caller.actor());
    let code = derive_token(&state.config.secret, "invite", meta.command_id);
    let code_hash = token_hash(&code).ok_or_else(|| ApiError::Internal("code hash".into()))?;
    let invite_id = invite_id_for_code_hash(&code_hash);
    let ttl = chrono::Duration::from_std(state.config.invite_ttl)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let out = precinct_app::run!(
        state.app,
        &meta,
        Invite,
        ApiError,
        invite_id.as_uuid(),
        |uow| {
            let at = uow.now();
            uow.execute::<Invite>(
                invite_id.as_uuid(),
                InviteCommand::Create {
                    invite_id,
                    code_hash: code_hash.clone(),
                    email: email.clone(),
                    role,
                    station_id,
                    expires_at: at + ttl,
                    created_by: caller.id,
                    at,
                },
            )
            .await?;
            Ok(())
        }
    )?;
    let invite = out
        .state::<Invite>(invite_id.as_uuid())
        .ok_or_else(|| ApiError::Internal("invite state missing".into()))?;
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
            expires_at: invite.expires_at,
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
/// invite, or an e-mail address already taken, a 409. The code travels in the body: the
/// old `POST /invites/{code}/accept` is gone (its paths are redacted in the request log).
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
    cmd: Cmd<AcceptInviteBody>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let mut v = Validator::new();
    check_password(&mut v, &cmd.body.password);
    v.finish()?;
    let code_hash = token_hash(&cmd.body.code).ok_or(ApiError::NotFound)?;
    let invite_id = invite_id_for_code_hash(&code_hash);
    let (invite, _) = state.app.load::<Invite>(invite_id.as_uuid()).await?;
    let Some(email) = invite.email.clone().filter(|_| invite.version_exists()) else {
        return Err(ApiError::NotFound);
    };
    let hash = state.passwords.hash(cmd.body.password.clone()).await?;
    let (account, position) = create_account(
        &state,
        &cmd.ctx,
        Actor::Anonymous,
        email,
        cmd.body.name.clone(),
        invite.role,
        invite.station_id,
        hash,
        Some(invite_id),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView::of(&account, position)),
    ))
}
