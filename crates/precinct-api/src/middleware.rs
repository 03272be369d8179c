//! Cross-cutting layers: request and correlation ids, the request's tracing span, the
//! compliance request log, HTTP metrics, security headers.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use precinct_eventlog::RequestRecord;
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::token_subject;
use crate::extract::{ClientAddr, CorrelationId, RequestId};
use crate::AppState;

/// The correlation id of a request: a valid `X-Correlation-Id`, else the request id when
/// it is a UUID, else a new one. `None` when `X-Correlation-Id` is present but invalid
/// (a command refuses it with 400).
fn correlation_id(req: &Request, request_id: &str) -> Option<Uuid> {
    match req.headers().get("x-correlation-id") {
        Some(v) => v.to_str().ok().and_then(|s| Uuid::parse_str(s).ok()),
        None => Some(Uuid::parse_str(request_id).unwrap_or_else(|_| Uuid::new_v4())),
    }
}

/// The routes whose path holds no secret although it names invites.
const INVITE_ROUTES: [&str; 2] = ["/invites", "/invites/accept"];

/// What the request log keeps of a path that names invites but is not one of their
/// routes.
const REDACTED_INVITE_PATH: &str = "/invites/{redacted}";

/// The path as the request log and the process log keep it. Invite codes are
/// credentials and travel in the body, but old or careless clients put them in the
/// path, in any shape (`/invites/CODE`, `/invites/accept/CODE`, `/Invites/CODE/Accept`,
/// `/invites%2FCODE`, `/invites/./CODE`, `//invites/CODE`, …). So every path that,
/// percent-decoded (repeatedly) and case-folded, mentions `invite` anywhere and is not
/// exactly one of the invite routes is logged as `/invites/{redacted}`; an Open311
/// token path as `/open311/v2/tokens/{redacted}`. The other
/// secrets a client holds (bearer tokens, tracking tokens) travel in headers, which the
/// logs never keep; queries are not logged either.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    // An Open311 token (`/open311/v2/tokens/{id}.{tracking token}.json`) holds the
    // report's tracking token, a credential of its reporter (ADR 0031).
    if mentions_open311_token(path) {
        return std::borrow::Cow::Borrowed("/open311/v2/tokens/{redacted}");
    }
    if INVITE_ROUTES.contains(&path) || !mentions_invites(path) {
        return std::borrow::Cow::Borrowed(path);
    }
    std::borrow::Cow::Borrowed(REDACTED_INVITE_PATH)
}

/// Whether `path`, or any of its percent-decodings, names an Open311 token.
fn mentions_open311_token(path: &str) -> bool {
    let mut bytes = path.as_bytes().to_ascii_lowercase();
    for _ in 0..4 {
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        if has(b"open311") && has(b"tokens") {
            return true;
        }
        let decoded = percent_decode(&bytes).to_ascii_lowercase();
        if decoded == bytes {
            return false;
        }
        bytes = decoded;
    }
    false
}

/// Whether `path`, or any of its percent-decodings (up to four levels: `%2569` is
/// `%69` is `i`), contains `invite` in any case.
fn mentions_invites(path: &str) -> bool {
    let mut bytes = path.as_bytes().to_vec();
    for _ in 0..4 {
        if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"invite")) {
            return true;
        }
        let decoded = percent_decode(&bytes);
        if decoded == bytes {
            return false;
        }
        bytes = decoded;
    }
    // Still encoded after four rounds: nobody legitimate writes paths like that.
    true
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes
            .get(i + 1..i + 3)
            .and_then(|p| Some((hex(p[0])?, hex(p[1])?)));
        match (bytes[i], pair) {
            (b'%', Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The subject of the request's bearer token when its signature holds (whether the
/// account may still act is [`crate::auth::Caller`]'s question): whose own writes the
/// request's reads wait for.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject(pub Uuid);

/// Assigns a request id and a correlation id, works out the client's address (the TCP
/// peer, or what a trusted proxy says: [`crate::proxy`]) for every handler and limit,
/// runs the request inside an `http` span that carries both ids (so every log line of the
/// request has them), records HTTP metrics, and records the request in the request log
/// (time, request id, actor, method, path, status, latency, client address).
pub async fn request_log(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let at = chrono::Utc::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.is_ascii())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let correlation = correlation_id(&req, &request_id);
    if let Some(c) = correlation {
        req.extensions_mut().insert(CorrelationId(c));
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let http_method = req.method().clone();
    let method = req.method().to_string();
    let path = loggable_path(req.uri().path()).into_owned();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .and_then(|ci| {
            state
                .config
                .trusted_proxies
                .client_addr(ci.0.ip(), req.headers())
        });
    req.extensions_mut().insert(ClientAddr(client));
    let client_addr = client.map(|ip| ip.to_string());
    let (parts, body) = req.into_parts();
    let actor_id = token_subject(&parts, &state.tokens);
    let mut req = Request::from_parts(parts, body);
    if let Some(a) = actor_id {
        req.extensions_mut().insert(TokenSubject(a));
    }
    let writes = !matches!(http_method, Method::GET | Method::HEAD | Method::OPTIONS);

    let span = tracing::info_span!(
        "http",
        %method,
        route = route.as_deref().unwrap_or("unmatched"),
        %path,
        request_id = %request_id,
        client_addr = client_addr.as_deref().unwrap_or("unknown"),
        correlation_id = tracing::field::Empty,
        actor_id = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    if let Some(c) = correlation {
        span.record("correlation_id", tracing::field::display(c));
    }
    if let Some(a) = actor_id {
        span.record("actor_id", tracing::field::display(a));
    }
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.record("status", status);
    span.in_scope(|| tracing::info!(status, latency_ms, "request"));
    crate::metrics::record_request(&http_method, route.as_deref(), status, elapsed);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    // Read-your-own-writes across replicas (ADR 0014): a command's answer carries the
    // account's last position in a signed cookie.
    if let (true, Some(account)) = (writes && res.status().is_success(), actor_id) {
        if let Some(position) = state.app.last_write_of(account) {
            res.headers_mut().append(
                axum::http::header::SET_COOKIE,
                crate::own_writes::cookie(
                    &state.config.secret,
                    account,
                    position,
                    state.config.hsts,
                ),
            );
        }
    }
    state
        .requests
        .record(RequestRecord {
            at,
            request_id,
            actor_id,
            method,
            path,
            status,
            latency_ms,
            client_addr,
        })
        .await;
    res
}

/// The docs page's policy: its own scripts, styles and images only (Swagger UI sets
/// inline styles and uses `data:` images); the spec is fetched from this origin.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The console's policy (ADR 0029): its own script, style and API only — no inline
/// script or style, no other host, no frames, no forms posted anywhere.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Headers every response carries.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let docs = req.uri().path() == "/docs" || req.uri().path().starts_with("/docs/");
    let console = req.uri().path() == "/console" || req.uri().path().starts_with("/console/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // The console's files carry their own policy (with the tile origin, if configured):
    // kept; any other console answer (a redirect, a 404) gets the plain console policy.
    let own = console && h.contains_key("content-security-policy");
    if !own {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(if docs {
                DOCS_CSP
            } else if console {
                CONSOLE_CSP
            } else {
                "default-src 'none'; frame-ancestors 'none'"
            }),
        );
    }
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn invite_codes_in_old_style_paths_are_redacted() {
        assert_eq!(
            loggable_path("/invites/AbC-123_x/accept"),
            "/invites/{redacted}"
        );
        assert_eq!(
            loggable_path("/invites/AbC/accept/more"),
            "/invites/{redacted}"
        );
        for kept in ["/invites/accept", "/invites", "/crimes/123/accept", "/"] {
            assert_eq!(loggable_path(kept), kept);
        }
    }

    #[test]
    fn open311_token_paths_are_redacted_in_any_case_or_encoding() {
        for shape in [
            "/open311/v2/tokens/abc.def.json",
            "/OPEN311/v2/Tokens/abc.def.xml",
            "/open311/v2/token%73/abc.def.json",
            "/open311/v2/token%2573/abc.def.json",
        ] {
            assert_eq!(
                loggable_path(shape),
                "/open311/v2/tokens/{redacted}",
                "{shape}"
            );
        }
        for kept in [
            "/open311/v2/requests.json",
            "/open311/v2/services.xml",
            "/crimes",
        ] {
            assert_eq!(loggable_path(kept), kept);
        }
    }

    /// Review of issue 13, N12: every path shape that can carry an invite code.
    #[test]
    fn no_path_under_invites_but_the_routes_is_kept() {
        for shape in [
            "/invites/accept/AbC-123",
            "/invites/AbC-123",
            "/invites/AbC-123/Accept",
            "/invites%2FAbC-123%2Faccept",
            "/invites%252FAbC-123",
            "/invites/./AbC-123/accept",
            "//invites/AbC-123/accept",
            "/Invites/AbC-123/accept",
            "/%69nvites/AbC-123",
            "/x/../invites/AbC-123",
            "/invites/",
            "/invites;AbC-123",
            "/invite/AbC-123",
        ] {
            let logged = loggable_path(shape);
            assert!(!logged.contains("AbC-123"), "{shape} -> {logged}");
        }
    }
}
