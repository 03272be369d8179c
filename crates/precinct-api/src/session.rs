//! Browser sessions of the console (ADR 0029): the cookies, the CSRF proofs and the
//! session check every cookie-authenticated request passes.
//!
//! - **The session cookie** `precinct_session` holds a short-lived access token (the
//!   usual lifetime, `PRECINCT_TOKEN_TTL_SECS`) naming its session (`sid`); `HttpOnly`,
//!   `SameSite=Strict`, `Path=/`, and `Secure` whenever the deployment is HTTPS (served
//!   with TLS or behind a TLS proxy). Without TLS the server listens only on loopback
//!   (`check_transport`), so there — development — the cookie goes without `Secure`.
//!   The console renews it (`POST /session/renew`) while it is open, up to the
//!   session's absolute end ([`crate::ApiConfig::session_ttl`]).
//! - **A session row** in PostgreSQL (`precinct_readmodel::sessions`) is checked on every
//!   request that carries such a token: logout revokes it, and every replica refuses the
//!   cookie at its next request.
//! - **CSRF.** A state-changing request (not `GET`/`HEAD`/`OPTIONS`) authenticated by the
//!   cookie needs both: the browser says it is same-origin (`Sec-Fetch-Site:
//!   same-origin`, or an `Origin` whose host is the request's `Host`), and the header
//!   `X-Precinct-CSRF` carries the session's CSRF value — an HMAC of the session id
//!   under the server secret, handed out at login and in the readable cookie
//!   `precinct_csrf` (a double-submit value another site can neither read nor forge).
//!   Refusals are 403 problem+json. Bearer tokens need neither: nothing sends them
//!   ambiently.

use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method};
use hmac::{Hmac, Mac};
use uuid::Uuid;

use crate::auth::Secret;
use crate::problem::ApiError;
use crate::AppState;

/// The session cookie (`HttpOnly`): the access token of the session.
pub const COOKIE: &str = "precinct_session";
/// The readable cookie with the session's CSRF value.
pub const CSRF_COOKIE: &str = "precinct_csrf";
/// The header that must carry the CSRF value on state-changing requests.
pub const CSRF_HEADER: &str = "x-precinct-csrf";

/// The value of cookie `name` in `headers`, if sent (the first one).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// The session token of a request, from its `precinct_session` cookie.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

fn csrf_mac(secret: &Secret, sid: Uuid) -> Hmac<sha2::Sha256> {
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.expose()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(b"console-csrf|");
    mac.update(sid.as_bytes());
    mac
}

/// The CSRF value of session `sid`.
pub fn csrf_value(secret: &Secret, sid: Uuid) -> String {
    hex::encode(csrf_mac(secret, sid).finalize().into_bytes())
}

/// Whether `parts` came from a page of this origin: `Sec-Fetch-Site: same-origin`, or
/// (from browsers that do not send it) an `Origin` naming the request's own host. A
/// `Sec-Fetch-Site` of anything else is refused whatever the `Origin` says.
pub fn check_same_origin(parts: &Parts) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::Forbidden(format!("cross-site request refused: {why}"));
    match parts
        .headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some("same-origin") => return Ok(()),
        Some(other) => return Err(refused(&format!("Sec-Fetch-Site is `{other}`"))),
        None => {}
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .ok_or_else(|| refused("no Host"))?;
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .ok_or_else(|| refused("no Origin and no Sec-Fetch-Site"))?;
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .filter(|h| !h.contains('/'))
        .ok_or_else(|| refused("the Origin is not this server"))?;
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(refused("the Origin is not this server"))
    }
}

/// The CSRF proofs of a cookie-authenticated request of session `sid`: none for safe
/// methods; for the others, same origin and the session's CSRF header (403 otherwise).
pub fn check_csrf(parts: &Parts, secret: &Secret, sid: Uuid) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    check_same_origin(parts)?;
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| hex::decode(v).ok())
        .ok_or_else(|| {
            ApiError::Forbidden(format!(
                "a request authenticated by the session cookie needs the `{CSRF_HEADER}` header"
            ))
        })?;
    // Constant-time comparison.
    csrf_mac(secret, sid)
        .verify_slice(&sent)
        .map_err(|_| ApiError::Forbidden(format!("the `{CSRF_HEADER}` header does not match")))
}

/// Refuses (401) a token of session `sid` unless the session exists for `account`, is
/// not revoked and has not ended.
pub async fn check_live(state: &AppState, sid: Uuid, account: Uuid) -> Result<(), ApiError> {
    let row = precinct_readmodel::sessions::get(&state.pool, sid).await?;
    match row {
        Some(s) if s.account_id == account && !s.revoked && s.expires_at > chrono::Utc::now() => {
            Ok(())
        }
        _ => Err(ApiError::InvalidToken(
            "this console session has ended; sign in again".into(),
        )),
    }
}

fn header_value(value: String) -> HeaderValue {
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` values of a session: its token (`HttpOnly`) and its CSRF value
/// (readable by the console's script), both for `max_age` seconds.
pub fn cookies(token: &str, csrf: &str, max_age: i64, secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = max_age.max(0);
    [
        header_value(format!(
            "{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        )),
        header_value(format!(
            "{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age}; SameSite=Strict{secure}"
        )),
    ]
}

/// The `Set-Cookie` values that delete both cookies.
pub fn cleared(secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    [
        header_value(format!(
            "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
        )),
        header_value(format!(
            "{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict{secure}"
        )),
    ]
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().method(method).uri("/crimes");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).expect("request").into_parts().0
    }

    #[test]
    fn same_origin_is_what_the_browser_says_or_an_origin_naming_this_host() {
        let host = ("host", "127.0.0.1:8080");
        let ok = [
            vec![host, ("sec-fetch-site", "same-origin")],
            vec![host, ("origin", "http://127.0.0.1:8080")],
            vec![host, ("origin", "https://127.0.0.1:8080")],
        ];
        for h in ok {
            assert!(check_same_origin(&parts(Method::POST, &h)).is_ok(), "{h:?}");
        }
        let refused = [
            vec![host],
            vec![host, ("origin", "http://evil.test")],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "http://127.0.0.1:8080.evil.test")],
            vec![host, ("origin", "http://127.0.0.1:8080/x")],
            vec![
                host,
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:8080"),
            ],
            vec![host, ("sec-fetch-site", "same-site")],
        ];
        for h in refused {
            assert!(
                matches!(
                    check_same_origin(&parts(Method::POST, &h)),
                    Err(ApiError::Forbidden(_))
                ),
                "{h:?}"
            );
        }
    }

    #[test]
    fn the_csrf_header_must_carry_this_sessions_value_on_writes_only() {
        let secret = Secret::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let (sid, other) = (Uuid::new_v4(), Uuid::new_v4());
        let good = csrf_value(&secret, sid);
        let wrong = csrf_value(&secret, other);
        let same = ("sec-fetch-site", "same-origin");
        assert!(check_csrf(&parts(Method::GET, &[]), &secret, sid).is_ok());
        assert!(check_csrf(
            &parts(Method::POST, &[same, (CSRF_HEADER, &good)]),
            &secret,
            sid
        )
        .is_ok());
        for h in [
            vec![same],
            vec![same, (CSRF_HEADER, wrong.as_str())],
            vec![same, (CSRF_HEADER, "zz")],
            vec![(CSRF_HEADER, good.as_str())],
        ] {
            assert!(
                matches!(
                    check_csrf(&parts(Method::DELETE, &h), &secret, sid),
                    Err(ApiError::Forbidden(_))
                ),
                "{h:?}"
            );
        }
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let [token, csrf] = cookies("t", "c", 900, true);
        let token = token.to_str().expect("ascii");
        assert!(token.starts_with("precinct_session=t;"));
        for flag in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Max-Age=900",
            "Path=/",
        ] {
            assert!(token.contains(flag), "{token}");
        }
        let csrf = csrf.to_str().expect("ascii");
        assert!(
            !csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"),
            "{csrf}"
        );
        let [plain, _] = cookies("t", "c", 900, false);
        assert!(!plain.to_str().expect("ascii").contains("Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; precinct_session=tok; c=d"),
        );
        assert_eq!(cookie_token(&headers), Some("tok"));
    }
}
