//! Authentication: argon2id password hashes, short-lived HS256 JWTs (algorithm pinned),
//! and the [`Caller`] extractor.
//!
//! A token says who the caller is (`sub`) and which version of their account it was
//! issued at (`ver`); what the caller may do comes from the account as it is now
//! ([`crate::access::AccountDirectory`]): the role and station claims are informative
//! only. A deactivated or erased account's tokens are refused (401). The console's
//! session cookie carries the same kind of token, naming its session ([`crate::session`],
//! ADR 0029).

use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, SaltString};
use argon2::{Argon2, Block, Params, PasswordHash, Version};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use precinct_app::Principal;
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::values::Role;
use precinct_eventlog::Actor;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{Access, Revoked};
use crate::problem::ApiError;
use crate::AppState;

const ISSUER: &str = "precinct";
const AUDIENCE: &str = "precinct-api";

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    /// The role and station at issue (for clients; authorization uses the account's
    /// current ones).
    pub role: Role,
    #[serde(default)]
    pub station_id: Option<Uuid>,
    /// The account stream's version at issue: the account view must be at least this
    /// new to authorize the token (0: a token from before versions were issued).
    #[serde(default)]
    pub ver: u64,
    /// The console session this token renews (ADR 0029): such a token is honoured only
    /// while its session is neither revoked nor ended. Bearer tokens have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct Tokens {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("ttl", &self.ttl).finish()
    }
}

impl Tokens {
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        // Only HS256 is accepted: `alg: none` and any other algorithm are refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 5;
        Self {
            enc: EncodingKey::from_secret(secret.expose()),
            dec: DecodingKey::from_secret(secret.expose()),
            validation,
            ttl,
        }
    }

    /// A token for `account` as of its stream version `version`.
    pub fn issue(
        &self,
        account: AccountId,
        role: Role,
        station: Option<StationId>,
        version: u64,
    ) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        self.encode(Claims {
            sub: account.as_uuid(),
            role,
            station_id: station.map(|s| s.as_uuid()),
            ver: version,
            sid: None,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        })
    }

    /// A token of the console session `sid` (the session cookie's value, ADR 0029),
    /// expiring after the usual lifetime or at `session_end`, whichever comes first.
    pub fn issue_session(
        &self,
        account: AccountId,
        role: Role,
        station: Option<StationId>,
        version: u64,
        sid: Uuid,
        session_end: i64,
    ) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        self.encode(Claims {
            sub: account.as_uuid(),
            role,
            station_id: station.map(|s| s.as_uuid()),
            ver: version,
            sid: Some(sid),
            iat: now,
            exp: (now + self.ttl.as_secs() as i64).min(session_end),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        })
    }

    fn encode(&self, claims: Claims) -> Result<String, ApiError> {
        encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .map_err(|e| ApiError::Internal(format!("token encoding: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.dec, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| ApiError::InvalidToken("invalid or expired access token".into()))
    }

    /// The claims of a token whose signature holds, expired or not (logout of an
    /// expired console session still revokes it and clears its cookies).
    pub fn verify_signature(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        decode::<Claims>(token, &self.dec, &validation)
            .map(|d| d.claims)
            .map_err(|_| ApiError::InvalidToken("invalid access token".into()))
    }
}

/// Hashes a password with argon2id (off the async runtime: it is slow on purpose), for
/// the one-off ADMIN bootstrap. Request paths go through [`PasswordJobs`], which bounds
/// how many run at once and on which threads.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("hash task: {e}")))?
}

/// Most argon2id memory a stored hash may ask for (blocks of 1 KiB): four times the
/// default. Hashes are only ever made here, with the defaults; a bigger one is refused
/// rather than allocated.
const MAX_ARGON2_BLOCKS: usize = 4 * Params::DEFAULT_M_COST as usize;

thread_local! {
    /// This thread's argon2id memory (~19 MiB with the default parameters), allocated by
    /// its first job and reused by every later one. Freeing and allocating it per job
    /// fragments the allocator's arena — small allocations land in the freed block, the
    /// next job's block goes elsewhere — and a process grew by 19 MiB per job up to
    /// hundreds of MiB on just two threads. Kept, it stays one block per password
    /// worker.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// argon2id of `password` with `salt` and `params` into `out`, in this thread's
/// memory.
fn argon2id_into(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), ApiError> {
    let blocks = argon.params().block_count();
    if blocks > MAX_ARGON2_BLOCKS {
        return Err(ApiError::Internal(format!(
            "argon2: {blocks} blocks asked for"
        )));
    }
    ARGON2_MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
}

fn hash_now(password: &str) -> Result<String, ApiError> {
    let failed = |e: argon2::password_hash::Error| ApiError::Internal(format!("argon2: {e}"));
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(failed)?;
    let params = Params::DEFAULT;
    let argon = Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id_into(&argon, password.as_bytes(), salt_bytes, &mut out)?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(failed)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored` (constant-time comparison).
fn matches(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        argon2::Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon2id_into(&argon, password.as_bytes(), salt_bytes, &mut out).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Verifies a password; with `None` it verifies against a dummy hash so that unknown
/// accounts take as long as known ones.
fn verify_now(password: &str, hash: Option<String>) -> bool {
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_now("not-a-password").unwrap_or_default());
    let known = hash.is_some();
    let stored = hash.unwrap_or_else(|| DUMMY.clone());
    let ok = matches(password, &stored);
    known && ok
}

/// How many password jobs (argon2id hashes and verifications) run at once, and how many
/// may wait for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordJobsConfig {
    /// Jobs running at once (default: the number of CPUs). Each holds about 19 MiB.
    pub workers: usize,
    /// Jobs waiting for a slot (default 32); beyond them a request is answered 503 with
    /// `Retry-After` at once.
    pub queue: usize,
    /// Jobs (running or waiting) of one client address at once (default: a quarter of
    /// `workers + queue`); beyond them its request is answered 429 with `Retry-After`.
    pub per_address: usize,
    /// Jobs (running or waiting) for one account at once (default: an eighth of
    /// `workers + queue`).
    pub per_account: usize,
}

impl PasswordJobsConfig {
    /// `workers` and `queue`, with the default shares of one address and one account.
    pub fn new(workers: usize, queue: usize) -> Self {
        let places = workers.max(1) + queue;
        Self {
            workers,
            queue,
            per_address: (places / 4).max(1),
            per_account: (places / 8).max(1),
        }
    }
}

impl Default for PasswordJobsConfig {
    fn default() -> Self {
        Self::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            32,
        )
    }
}

/// Whose password work a job is: the client address that asked, and the account it is
/// for (a login's throttle key, the e-mail address of a registration or an invite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOwner {
    pub address: String,
    pub account: String,
}

/// How many admitted jobs each key holds (keys holding none are removed, so the map
/// holds at most as many keys as there are admitted jobs).
#[derive(Debug, Default)]
struct Shares {
    held: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// One admitted job's share of its key; given back when dropped.
#[derive(Debug)]
struct Share {
    shares: std::sync::Arc<Shares>,
    key: String,
}

impl Shares {
    fn take(self: &std::sync::Arc<Self>, key: &str, max: usize) -> Option<Share> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key.to_string()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Share {
            shares: self.clone(),
            key: key.to_string(),
        })
    }

    #[cfg(test)]
    fn held(&self, key: &str) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(key).copied().unwrap_or(0)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.shares.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The one limiter of password work shared by registration, login and invite
/// acceptance: argon2id is slow and memory-hard on purpose, so an unbounded number of
/// concurrent jobs lets anyone exhaust memory and CPU (and every login with them).
///
/// Jobs run on `workers` threads of their own, started here and kept for the life of
/// the limiter — not on tokio's blocking pool — and each thread keeps one argon2id
/// memory block (~19 MiB) for all its jobs ([`ARGON2_MEMORY`]). Allocating that block
/// per job, on a pool that grows to hundreds of threads shared with other blocking
/// work, left memory behind with every thread and every job (the allocator's arenas
/// fragment: 48 MB grew to 462 MB in the review of issue 13, N11; a test process grew
/// by 19 MiB per job on one thread). Now password memory is `workers` × 19 MiB, however
/// many jobs run. Up to `queue` more jobs wait; beyond them the caller
/// gets 503 with `Retry-After` at once. A job keeps its place until it has run, even
/// when the request that started it is gone (otherwise dropped requests would free
/// places while their hashes still ran).
///
/// Request paths run their jobs as a [`JobOwner`] ([`PasswordJobs::hash_for`],
/// [`PasswordJobs::verify_for`]): one client address, and one account, holds at most its
/// share of the slots and queue places, so a flood from one address or at one account
/// cannot take every place (and the ADMIN's login still finds one).
#[derive(Debug, Clone)]
pub struct PasswordJobs {
    /// Running + waiting.
    admitted: std::sync::Arc<tokio::sync::Semaphore>,
    /// The workers' queue; they end when the last clone of this limiter is dropped.
    jobs: std::sync::mpsc::Sender<PasswordJob>,
    per_address: usize,
    per_account: usize,
    addresses: std::sync::Arc<Shares>,
    accounts: std::sync::Arc<Shares>,
}

/// A job as the workers run it: it answers its caller itself.
type PasswordJob = Box<dyn FnOnce() + Send>;

/// Seconds a client is told to wait when every slot and queue place is taken.
const BUSY_RETRY_SECS: u64 = 1;

impl PasswordJobs {
    /// Starts the `config.workers` worker threads.
    pub fn new(config: PasswordJobsConfig) -> Self {
        let workers = config.workers.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<PasswordJob>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for i in 0..workers {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("precinct-password-{i}"))
                .spawn(move || loop {
                    // One idle worker at a time waits for the next job, holding the lock;
                    // the lock is released before the job runs.
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else {
                        return; // every sender is gone
                    };
                    // A panicking job must not take its worker with it (its caller gets
                    // an error when its answer channel drops).
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password worker thread");
            }
        }
        Self {
            admitted: std::sync::Arc::new(tokio::sync::Semaphore::new(workers + config.queue)),
            jobs,
            per_address: config.per_address.max(1),
            per_account: config.per_account.max(1),
            addresses: Default::default(),
            accounts: Default::default(),
        }
    }

    /// Runs `job` on a password worker when one is free; 503 with `Retry-After` at once
    /// when the queue is full.
    pub async fn run<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            ::metrics::counter!("precinct_password_jobs_refused_total").increment(1);
            return Err(ApiError::Busy {
                retry_after_secs: BUSY_RETRY_SECS,
            });
        };
        ::metrics::counter!("precinct_password_jobs_total").increment(1);
        let (answer, answered) = tokio::sync::oneshot::channel();
        let queued: PasswordJob = Box::new(move || {
            let _place = admitted;
            let _ = answer.send(job());
        });
        self.jobs
            .send(queued)
            .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
        answered
            .await
            .map_err(|_| ApiError::Internal("a password job ended without an answer".into()))
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_now(&password)).await?
    }

    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        self.run(move || verify_now(&password, hash)).await
    }

    /// Runs `job` for `owner` as [`PasswordJobs::run`] does, if neither its address nor
    /// its account already holds its share of the places: otherwise 429 with
    /// `Retry-After` at once (the client is flooding, the server is not full). The
    /// shares are held as long as the places.
    pub async fn run_for<T, F>(&self, owner: &JobOwner, job: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let over_share = |whose: &'static str| {
            ::metrics::counter!("precinct_password_jobs_over_share_total", "owner" => whose)
                .increment(1);
            ApiError::TooManyRequests {
                retry_after_secs: BUSY_RETRY_SECS,
            }
        };
        let address = self
            .addresses
            .take(&owner.address, self.per_address)
            .ok_or_else(|| over_share("address"))?;
        let account = self
            .accounts
            .take(&owner.account, self.per_account)
            .ok_or_else(|| over_share("account"))?;
        self.run(move || {
            let _shares = (address, account);
            job()
        })
        .await
    }

    pub async fn hash_for(&self, owner: &JobOwner, password: String) -> Result<String, ApiError> {
        self.run_for(owner, move || hash_now(&password)).await?
    }

    pub async fn verify_for(
        &self,
        owner: &JobOwner,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        self.run_for(owner, move || verify_now(&password, hash))
            .await
    }
}

/// An authenticated caller: the bearer token's account, with its **current** role and
/// station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub id: AccountId,
    pub role: Role,
    pub station_id: Option<StationId>,
    /// The account as the request was authorized (for connections that must end when
    /// it changes).
    pub access: Access,
    /// The console session the request came with (its cookie), if it did (ADR 0029).
    pub session: Option<Uuid>,
}

impl Caller {
    /// Who commands run for: the account as the request was authorized.
    pub fn principal(&self) -> Principal {
        Principal {
            id: self.id,
            role: self.role,
            station_id: self.station_id,
        }
    }

    pub fn actor(&self) -> Actor {
        self.principal().actor()
    }

    pub fn is(&self, roles: &[Role]) -> bool {
        self.principal().is(roles)
    }

    /// Refuses (403) unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        Ok(self.principal().require(roles)?)
    }

    pub fn is_admin(&self) -> bool {
        self.principal().is_admin()
    }

    /// Staff of `station` (ADMIN: every station).
    pub fn is_staff_of(&self, station: StationId) -> bool {
        self.principal().is_staff_of(station)
    }
}

/// The hex SHA-256 of a token (tracking tokens and invite codes are stored hashed).
pub fn token_hash(token: &str) -> Option<precinct_domain::values::TokenHash> {
    use sha2::Digest;
    precinct_domain::values::TokenHash::parse(&hex::encode(sha2::Sha256::digest(token.as_bytes())))
        .ok()
}

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthorized(
            "expected `Authorization: Bearer <token>`".into(),
        )),
    }
}

/// The account a request's bearer token names, if it verifies (for the request log: it
/// says who claimed to call, not what they may do).
pub fn token_subject(parts: &Parts, tokens: &Tokens) -> Option<Uuid> {
    let token = match bearer(parts).ok()? {
        Some(token) => token,
        None => crate::session::cookie_token(&parts.headers)?,
    };
    tokens.verify(token).ok().map(|c| c.sub)
}

/// The caller of a request: its bearer token (or, without one, its console session
/// cookie) verified, then its account as it is now. No token: `None`. A token that does
/// not verify, or whose account is gone, deactivated, erased, or deactivated since the
/// token was issued, or whose console session was revoked or has ended: 401. A
/// state-changing request authenticated by the cookie without the CSRF proofs: 403
/// ([`crate::session::check_csrf`], ADR 0029).
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<Caller>, ApiError> {
    let (token, by_cookie) = match bearer(parts)? {
        Some(token) => (token, false),
        None => match crate::session::cookie_token(&parts.headers) {
            Some(token) => (token, true),
            None => return Ok(None),
        },
    };
    let claims = state.tokens.verify(token)?;
    let session = match (claims.sid, by_cookie) {
        (None, true) => {
            return Err(ApiError::InvalidToken(
                "the session cookie holds no console session; sign in again".into(),
            ))
        }
        (sid, _) => sid,
    };
    if let Some(sid) = session {
        if by_cookie {
            crate::session::check_csrf(parts, &state.config.secret, sid)?;
        }
        crate::session::check_live(state, sid, claims.sub).await?;
    }
    let id = AccountId::new(claims.sub);
    let refused = |why: Revoked| {
        tracing::info!(account = %claims.sub, reason = %why, "access token refused");
        ApiError::InvalidToken("this access token is no longer valid; sign in again".into())
    };
    let access = state
        .accounts
        .current(id, claims.ver)
        .await?
        .ok_or_else(|| refused(Revoked::Unknown))?;
    access.check(claims.ver).map_err(refused)?;
    Ok(Some(Caller {
        id,
        role: access.role,
        station_id: access.station_id,
        access,
        session,
    }))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("authentication required".into()))
    }
}

impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// No token: anonymous. A token that does not verify is refused, never downgraded.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        authenticate(parts, state).await
    }
}

/// A bearer secret derived from a command id: `base64url(HMAC-SHA256(secret, purpose|id))`,
/// 160 bits. The same command (an idempotent retry) gets the same token back, and the
/// token cannot be guessed without the server secret. Only its hash is stored.
pub fn derive_token(secret: &Secret, purpose: &str, command_id: Uuid) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.expose()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(purpose.as_bytes());
    mac.update(b"|");
    mac.update(command_id.as_bytes());
    let bytes = mac.finalize().into_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..20])
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn password_jobs_queue_then_refuse_with_retry_after() {
        let jobs = PasswordJobs::new(PasswordJobsConfig::new(1, 1));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
        // The first job runs and blocks; the second waits in the queue.
        let mut held = Vec::new();
        for _ in 0..2 {
            let (jobs, rx) = (jobs.clone(), release_rx.clone());
            held.push(tokio::spawn(async move {
                jobs.run(move || {
                    let _ = rx.lock().map(|r| r.recv_timeout(Duration::from_secs(10)));
                })
                .await
            }));
        }
        for _ in 0..200 {
            if jobs.admitted.available_permits() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(jobs.admitted.available_permits(), 0, "both jobs admitted");
        // The third finds the running slot and the queue taken: 503 at once.
        match jobs.run(|| ()).await {
            Err(ApiError::Busy { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected Busy, got {other:?}"),
        }
        release_tx.send(()).expect("release");
        release_tx.send(()).expect("release");
        for h in held {
            assert!(h.await.expect("join").is_ok());
        }
        // Slots come back: a job runs again.
        assert_eq!(jobs.run(|| 7).await.ok(), Some(7));
    }

    #[tokio::test]
    async fn a_job_keeps_its_slot_after_its_request_is_gone() {
        let jobs = PasswordJobs::new(PasswordJobsConfig::new(1, 0));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = started.clone();
        let j = jobs.clone();
        let request = tokio::spawn(async move {
            j.run(move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = release_rx.recv_timeout(Duration::from_secs(10));
            })
            .await
        });
        for _ in 0..200 {
            if started.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The client went away: its request future is dropped, the argon2 work is not.
        request.abort();
        let _ = request.await;
        assert!(matches!(jobs.run(|| ()).await, Err(ApiError::Busy { .. })));
        release_tx.send(()).expect("release");
        for _ in 0..200 {
            if jobs.admitted.available_permits() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(jobs.run(|| ()).await.is_ok());
    }

    /// Argon2id leaves a ~19 MiB buffer with every thread that ever ran it (the
    /// allocator's per-thread arenas keep it): password jobs must run on their own
    /// `workers` threads, never on threads shared with other blocking work, and never
    /// more than `workers` at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_on_a_fixed_set_of_threads_at_most_workers_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let jobs = PasswordJobs::new(PasswordJobsConfig::new(3, 100));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
        // Waves of password jobs among other blocking work (file reads, DNS lookups
        // and the like share tokio's blocking pool).
        for _ in 0..8 {
            let others: Vec<_> = (0..6)
                .map(|_| {
                    tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(10)))
                })
                .collect();
            let wave: Vec<_> = (0..8)
                .map(|_| {
                    let (jobs, running, most, threads) =
                        (jobs.clone(), running.clone(), most.clone(), threads.clone());
                    tokio::spawn(async move {
                        jobs.run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            if let Ok(mut t) = threads.lock() {
                                t.insert(std::thread::current().id());
                            }
                            std::thread::sleep(Duration::from_millis(3));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                    })
                })
                .collect();
            for job in wave {
                assert!(job.await.expect("join").is_ok());
            }
            for o in others {
                o.await.expect("join");
            }
        }
        assert!(most.load(Ordering::SeqCst) <= 3, "{most:?} ran at once");
        let distinct = threads.lock().map(|t| t.len()).unwrap_or(usize::MAX);
        assert!(distinct <= 3, "password jobs ran on {distinct} threads");
    }

    /// Hashes made before the workers kept their memory (argon2's own `hash_password`)
    /// still verify, and the new ones are standard PHC argon2id strings.
    #[test]
    fn hashes_are_standard_argon2id_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_now("correct horse battery", Some(old.clone())));
        assert!(!verify_now("correct horse batterY", Some(old)));
        let new = hash_now("correct horse battery").expect("hash");
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
        let parsed = PasswordHash::new(&new).expect("PHC string");
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(!verify_now("x", Some("not a hash".into())));
    }

    #[tokio::test]
    async fn one_owner_holds_at_most_its_share_and_others_still_get_places() {
        let jobs = PasswordJobs::new(PasswordJobsConfig {
            workers: 1,
            queue: 8,
            per_address: 2,
            per_account: 3,
        });
        let owner = |address: &str, account: &str| JobOwner {
            address: address.into(),
            account: account.into(),
        };
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
        let blocked = |o: JobOwner| {
            let (jobs, rx) = (jobs.clone(), release_rx.clone());
            tokio::spawn(async move {
                jobs.run_for(&o, move || {
                    let _ = rx.lock().map(|r| r.recv_timeout(Duration::from_secs(10)));
                })
                .await
            })
        };
        // One address holds its two places; its third job is refused at once (429),
        // even for another account, while the limiter has room.
        let mut held = vec![
            blocked(owner("10.0.0.1", "a")),
            blocked(owner("10.0.0.1", "b")),
        ];
        for _ in 0..200 {
            if jobs.addresses.held("10.0.0.1") == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match jobs.run_for(&owner("10.0.0.1", "c"), || ()).await {
            Err(ApiError::TooManyRequests { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        // One account holds its three places from any addresses.
        held.push(blocked(owner("10.0.0.2", "a")));
        held.push(blocked(owner("10.0.0.3", "a")));
        for _ in 0..200 {
            if jobs.accounts.held("a") == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(matches!(
            jobs.run_for(&owner("10.0.0.4", "a"), || ()).await,
            Err(ApiError::TooManyRequests { .. })
        ));
        // Someone else still gets a place (and runs once the slot is free).
        let other = {
            let jobs = jobs.clone();
            tokio::spawn(async move { jobs.run_for(&owner("10.0.0.9", "z"), || 7).await })
        };
        for _ in 0..held.len() {
            release_tx.send(()).expect("release");
        }
        for h in held {
            assert!(h.await.expect("join").is_ok());
        }
        assert_eq!(other.await.expect("join").ok(), Some(7));
        // Shares come back with their places; nothing is left behind.
        assert_eq!(jobs.addresses.held("10.0.0.1"), 0);
        assert_eq!(jobs.accounts.held("a"), 0);
        assert!(jobs
            .addresses
            .held
            .lock()
            .map(|h| h.is_empty())
            .unwrap_or(false));
        assert!(jobs.run_for(&owner("10.0.0.1", "a"), || ()).await.is_ok());
    }

    #[test]
    fn default_shares_leave_most_places_to_others() {
        let c = PasswordJobsConfig::new(2, 32);
        assert_eq!((c.per_address, c.per_account), (8, 4));
        let c = PasswordJobsConfig::new(1, 0);
        assert_eq!((c.per_address, c.per_account), (1, 1));
    }

    #[tokio::test]
    async fn hashes_verify() {
        let jobs = PasswordJobs::new(PasswordJobsConfig::default());
        let h = jobs
            .hash("correct horse battery".into())
            .await
            .expect("hash");
        assert!(jobs
            .verify("correct horse battery".into(), Some(h.clone()))
            .await
            .expect("verify"));
        assert!(!jobs.verify("wrong".into(), Some(h)).await.expect("verify"));
        assert!(!jobs.verify("x".into(), None).await.expect("verify"));
    }
}
