//! Extractors: [`Cmd`] (a command's JSON body plus what makes it idempotent and
//! traceable, within the caller's command budget), [`JsonBody`] (a JSON body that is not
//! a command: live positions), [`Validator`] (field-by-field parsing into domain
//! values), [`MinPosition`] (read-your-writes for queries) and [`Page`] parameters.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use precinct_domain::values::ValueError;
use precinct_eventlog::{Actor, CommandMeta, RequestHash};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::problem::{ApiError, FieldError};
use crate::AppState;

/// Namespace of command ids derived from idempotency keys.
const IDEMPOTENCY_NS: Uuid = Uuid::from_u128(0x6a1c_33c0_5b0e_4e5e_9d6f_1f9e_a0c4_2b71);

/// The request id the request-log middleware assigned (also in `X-Request-Id`).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The correlation id the request-log middleware chose (a valid `X-Correlation-Id`, else
/// the request id when it is a UUID, else a new one); also on the request's span.
#[derive(Debug, Clone, Copy)]
pub struct CorrelationId(pub Uuid);

/// What identifies and traces one command request.
#[derive(Debug, Clone)]
pub struct CmdCtx {
    idempotency_key: Option<String>,
    body_hash: [u8; 32],
    correlation_id: Uuid,
    method: String,
    path: String,
    /// Who an anonymous caller is, for the scope of its idempotency keys.
    client_addr: Option<std::net::IpAddr>,
}

impl CmdCtx {
    /// The context of the command in a request of these `parts` with this `body`.
    pub(crate) fn from_parts(
        parts: &Parts,
        body: &[u8],
        client_addr: Option<std::net::IpAddr>,
    ) -> Result<Self, ApiError> {
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v
                    .to_str()
                    .ok()
                    // Visible ASCII without space or tab: the documented pattern
                    // `^[!-~]{1,255}$` (`to_str` alone lets both through).
                    .filter(|k| {
                        !k.is_empty()
                            && k.len() <= 255
                            && k.bytes().all(|b| (b'!'..=b'~').contains(&b))
                    })
                    .ok_or_else(|| {
                        ApiError::BadRequest(
                            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                        )
                    })?;
                Some(key.to_string())
            }
        };
        let correlation_id = match parts.headers.get("x-correlation-id") {
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| ApiError::BadRequest("X-Correlation-Id must be a UUID".into()))?,
            None => match parts.extensions.get::<CorrelationId>() {
                Some(c) => c.0,
                None => parts
                    .extensions
                    .get::<RequestId>()
                    .and_then(|r| Uuid::parse_str(&r.0).ok())
                    .unwrap_or_else(Uuid::new_v4),
            },
        };
        Ok(Self {
            idempotency_key,
            body_hash: Sha256::digest(body).into(),
            correlation_id,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            client_addr,
        })
    }

    /// The command's metadata. With an `Idempotency-Key`, the command id is derived from
    /// (caller's scope, method, path, key) and the body's SHA-256 travels with it: the
    /// same request retried is the same command (answered with its original outcome);
    /// the same key with another body is refused (422, ADR 0012). The scope is the
    /// account, or for an anonymous caller its client address (an IPv6 one by its /64,
    /// which survives the client's address rotation: [`crate::throttle::addr_key`]),
    /// so that one anonymous
    /// client can never replay another's key into the other's report and tracking token;
    /// an anonymous caller without a known address gets no idempotency. Without a key,
    /// every request is a new command.
    pub fn meta(&self, actor: Actor) -> CommandMeta {
        let scope = match actor.id() {
            Some(id) => Some(format!("account:{id}")),
            None => self
                .client_addr
                .map(|a| format!("anonymous:{}", crate::throttle::addr_key(Some(a)))),
        };
        let (command_id, request_hash) = match (&self.idempotency_key, scope) {
            (Some(key), Some(scope)) => {
                let name = format!("{scope}|{}|{}|{key}", self.method, self.path);
                (
                    Uuid::new_v5(&IDEMPOTENCY_NS, name.as_bytes()),
                    Some(RequestHash(self.body_hash)),
                )
            }
            _ => (Uuid::new_v4(), None),
        };
        CommandMeta {
            command_id,
            correlation_id: self.correlation_id,
            causation_id: None,
            actor,
            request_hash,
        }
    }
}

impl CmdCtx {
    /// The caller as commands see them (the account as it is now), and the command's
    /// metadata with them as its actor.
    pub fn for_caller(
        &self,
        caller: &crate::auth::Caller,
    ) -> (precinct_app::Principal, CommandMeta) {
        let by = caller.principal();
        (by, self.meta(by.actor()))
    }
}

/// A command request: its JSON body (an empty body reads as `{}`) and its [`CmdCtx`].
#[derive(Debug)]
pub struct Cmd<T> {
    pub body: T,
    pub ctx: CmdCtx,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Cmd<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        // The signed-in caller's command budget, before the body is even read. (A bad
        // token was refused by the handler's `Caller` already; anonymous commands have
        // their own per-address limits where they exist.)
        if let Ok(Some(caller)) = crate::auth::authenticate(&parts, state).await {
            state.commands.take(&caller)?;
        }
        let client_addr = ClientAddr::from_request_parts(&mut parts, state)
            .await
            .ok()
            .and_then(|ClientAddr(addr)| addr);
        let bytes = json_bytes(&parts, body, state).await?;
        let ctx = CmdCtx::from_parts(&parts, &bytes, client_addr)?;
        let body = parse_body(&bytes)?;
        Ok(Cmd { body, ctx })
    }
}

/// A JSON body that is not a command (no idempotency, no command budget): the live
/// positions' high-rate path, which appends nothing to the event log.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = json_bytes(&parts, body, state).await?;
        Ok(JsonBody(parse_body(&bytes)?))
    }
}

/// A request body: an absent body stands for `{}`. A JSON `null` is parsed as it is:
/// only the bodies the OpenAPI document declares optional ("an object or null",
/// [`NoBody`](crate::routes::crimes::NoBody)) accept it; any other body answers 422
/// (schemathesis found `PATCH /users/{id}` with `null` applied as an empty change).
/// Every body is a JSON object: serde would take an array for a struct (its fields in
/// order, `[]` for one whose fields are all optional), so a top-level array is a 422.
fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.trim_ascii() {
        b"" => parse_json(b"{}"),
        json if json.starts_with(b"[") => Err(ApiError::Invalid(vec![FieldError {
            field: "body".into(),
            reason: "must be a JSON object".into(),
        }])),
        _ => parse_json(bytes),
    }
}

/// The body, within the size limit, if it is JSON (or empty).
async fn json_bytes(
    parts: &Parts,
    body: axum::body::Body,
    state: &AppState,
) -> Result<axum::body::Bytes, ApiError> {
    let bytes = axum::body::to_bytes(body, state.config.body_limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    if !bytes.is_empty() {
        let json = parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let ct = ct.to_ascii_lowercase();
                ct.starts_with("application/json") || ct.contains("+json")
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            ));
        }
    }
    Ok(bytes)
}

/// Parses JSON: syntax errors are 400, well-formed JSON of the wrong shape is 422 naming
/// the field.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::BadRequest(format!("malformed JSON: {inner}"))
            }
            _ => {
                // serde's message names the field for missing fields; keep its first clause.
                let reason = inner.to_string();
                let reason = reason
                    .split(" at line")
                    .next()
                    .unwrap_or("invalid")
                    .to_string();
                let field = if path == "." {
                    reason
                        .split('`')
                        .nth(1)
                        .map(str::to_string)
                        .unwrap_or_else(|| "body".into())
                } else {
                    path
                };
                ApiError::Invalid(vec![FieldError { field, reason }])
            }
        }
    })
}

/// Collects field errors while parsing a request into domain values.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value, or records why `field` is invalid.
    pub fn check<T>(&mut self, field: &str, r: Result<T, ValueError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(field, e.to_string());
                None
            }
        }
    }

    pub fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// 422 with every recorded field, or Ok.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.errors))
        }
    }
}

/// `X-Min-Position: N`: the query answers only once the read models include position N
/// (waiting up to 5 s, then 503). A position past the head of the log was never handed
/// out and can never be reached: 400 at once.
///
/// Without the header, an authenticated caller's reads still wait for the caller's own
/// last command (ADR 0014): its position from this process's memory or the signed
/// `precinct_written` cookie, for up to [`crate::own_writes::WAIT`]; past that the read
/// answers with the read models as they are (the caller did not ask for a position, so
/// a projection that is stuck does not turn every read into a 503).
#[derive(Debug, Clone, Copy)]
pub struct MinPosition(pub Option<u64>);

impl MinPosition {
    /// The caller's own last write, if it is ahead of `explicit`; waited for within
    /// [`crate::own_writes::WAIT`], never an error of the read.
    async fn own_write(parts: &Parts, state: &AppState, explicit: Option<u64>) {
        // Reads only: a command that honours `X-Min-Position` (submit) must not queue
        // behind the projection of the caller's previous command.
        if !matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        ) {
            return;
        }
        let Some(crate::middleware::TokenSubject(account)) = parts.extensions.get().copied() else {
            return;
        };
        let own = state
            .app
            .last_write_of(account)
            .max(crate::own_writes::from_cookie(
                &parts.headers,
                &state.config.secret,
                account,
            ));
        let Some(own) = own.filter(|p| Some(*p) > explicit) else {
            return;
        };
        let started = std::time::Instant::now();
        let outcome = match state.read_models_reach(own, crate::own_writes::WAIT).await {
            Ok(true) => "reached",
            Ok(false) => "timed_out",
            Err(_) => "failed",
        };
        ::metrics::histogram!("precinct_own_write_wait_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
    }
}

impl FromRequestParts<AppState> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let explicit = Self::explicit(parts, state).await?;
        Self::own_write(parts, state, explicit.0).await;
        Ok(explicit)
    }
}

impl MinPosition {
    /// The `X-Min-Position` header, waited for.
    async fn explicit(parts: &Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("x-min-position") else {
            return Ok(MinPosition(None));
        };
        let n: u64 = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ApiError::BadRequest("X-Min-Position must be an integer".into()))?;
        let started = std::time::Instant::now();
        let now = state
            .read_models_reach(n, std::time::Duration::ZERO)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if now {
            crate::metrics::min_position_wait("immediate", started.elapsed());
            return Ok(MinPosition(Some(n)));
        }
        let head = state
            .app
            .log()
            .head()
            .await
            .map_err(|e| ApiError::outage("the event log is unavailable; retry later", e))?;
        if n > head {
            return Err(ApiError::BadRequest(format!(
                "X-Min-Position {n} is past the head of the log ({head})"
            )));
        }
        let reached = state
            .read_models_reach(n, std::time::Duration::from_secs(5))
            .await
            .map_err(|e| {
                crate::metrics::min_position_wait("failed", started.elapsed());
                ApiError::Internal(e.to_string())
            })?;
        let outcome = if reached { "reached" } else { "timed_out" };
        crate::metrics::min_position_wait(outcome, started.elapsed());
        if !reached {
            return Err(ApiError::Unavailable(format!(
                "read models have not reached position {n} yet; retry later"
            )));
        }
        Ok(MinPosition(Some(n)))
    }
}

/// A path parameter: axum's `Path`, except that a value that does not parse (an id
/// that is not a UUID) is a problem+json 400, not axum's plain-text answer.
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::BadRequest(
                format!("malformed path: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::Internal(format!("path extraction: {other}"))),
        }
    }
}

/// `limit` and `cursor` of a list request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The client's address: the one the request-log middleware worked out (the TCP peer,
/// or the address a trusted proxy forwarded), else the TCP peer; `None` when the server
/// was started without connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(resolved) = parts.extensions.get::<ClientAddr>() {
            return Ok(*resolved);
        }
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|ci| ci.0.ip().to_canonical()),
        ))
    }
}

/// The TCP peer of a request, and whether the request says it was forwarded for
/// someone else (`Forwarded`, `X-Forwarded-For` or `X-Real-IP`, believed or not).
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: Option<std::net::IpAddr>,
    pub forwarded: bool,
}

impl Peer {
    /// A client on this host talking to the process directly: the TCP peer is loopback
    /// and the request names no other client. Judged by the connection, never by a
    /// forwarded address (which anyone a trusted proxy forwards can write), and a proxy
    /// on the same host that forwards someone else is not it.
    pub fn is_local_monitor(&self) -> bool {
        !self.forwarded && self.addr.is_some_and(|a| a.to_canonical().is_loopback())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
            .iter()
            .any(|h| parts.headers.contains_key(*h));
        Ok(Peer {
            addr: parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|ci| ci.0.ip()),
            forwarded,
        })
    }
}

#[cfg(test)]
mod peer_tests {
    use super::Peer;

    #[test]
    fn only_an_unforwarded_loopback_peer_is_a_local_monitor() {
        let ip = |s: &str| Some(s.parse().expect("ip"));
        let peer = |addr, forwarded| Peer { addr, forwarded };
        assert!(peer(ip("127.0.0.1"), false).is_local_monitor());
        assert!(peer(ip("::1"), false).is_local_monitor());
        assert!(peer(ip("::ffff:127.0.0.1"), false).is_local_monitor());
        assert!(!peer(ip("127.0.0.1"), true).is_local_monitor());
        assert!(!peer(ip("10.0.0.5"), false).is_local_monitor());
        assert!(!peer(None, false).is_local_monitor());
    }
}
