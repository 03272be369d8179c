//! Read-your-own-writes by default (ADR 0014): an authenticated caller's reads wait
//! (bounded) for the read models to include that caller's last command, without the
//! client sending `X-Min-Position`.
//!
//! The position comes from this process's memory of each account's last command
//! ([`precinct_app::writes`]) and, across API replicas, from a signed cookie this
//! module sets on every command answer: `precinct_written=<account>.<position>.<mac>`,
//! an HMAC of the account and position under the server secret, so a client cannot make
//! another account wait or forge a position the log never handed out. A cookie for
//! another account, or with a bad MAC, is ignored.

use axum::http::{header, HeaderMap, HeaderValue};
use hmac::{Hmac, Mac};
use uuid::Uuid;

use crate::auth::Secret;

/// The cookie's name.
pub const COOKIE: &str = "precinct_written";
/// How long the cookie lives: far longer than any projection lag worth waiting for.
const MAX_AGE_SECS: u64 = 600;
/// How long a read waits for the caller's own last write before it answers with the
/// read models as they are (the position was not asked for explicitly, so no 503).
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn mac(secret: &Secret, account: Uuid, position: u64) -> Hmac<sha2::Sha256> {
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.expose()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(b"own-write|");
    mac.update(account.as_bytes());
    mac.update(&position.to_be_bytes());
    mac
}

/// The `Set-Cookie` value that carries `account`'s last write to any replica.
pub fn cookie(secret: &Secret, account: Uuid, position: u64, secure: bool) -> HeaderValue {
    let tag = hex::encode(&mac(secret, account, position).finalize().into_bytes()[..16]);
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{COOKIE}={}.{position}.{tag}; Path=/; Max-Age={MAX_AGE_SECS}; HttpOnly; SameSite=Strict{secure}",
        account.simple()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The position the request's cookie vouches for, if it is `account`'s and its MAC
/// holds.
pub fn from_cookie(headers: &HeaderMap, secret: &Secret, account: Uuid) -> Option<u64> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .filter_map(|(_, value)| {
            let mut parts = value.split('.');
            let (who, position, tag) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || Uuid::parse_str(who).ok()? != account {
                return None;
            }
            let position: u64 = position.parse().ok()?;
            let tag = hex::decode(tag).ok()?;
            mac(secret, account, position)
                .verify_truncated_left(&tag)
                .ok()
                .filter(|_| tag.len() == 16)
                .map(|_| position)
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(cookie).expect("ascii"),
        );
        h
    }

    #[test]
    fn a_cookie_vouches_only_for_its_own_account_and_position() {
        let secret = Secret::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let (ana, bo) = (Uuid::new_v4(), Uuid::new_v4());
        let set = cookie(&secret, ana, 42, true);
        let set = set.to_str().expect("ascii");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(set.ends_with("; Secure"));
        let pair = set.split(';').next().expect("pair");
        let sent = headers(&format!("theme=dark; {pair}"));
        assert_eq!(from_cookie(&sent, &secret, ana), Some(42));
        // Another account's cookie, a changed position, another server's secret.
        assert_eq!(from_cookie(&sent, &secret, bo), None);
        let forged = pair.replace(".42.", ".4200.");
        assert_eq!(from_cookie(&headers(&forged), &secret, ana), None);
        let other = Secret::new(b"another-secret-0123456789abcdef!".to_vec());
        assert_eq!(from_cookie(&sent, &other, ana), None);
        // Garbage of every shape.
        for bad in [
            "precinct_written=",
            "precinct_written=x.y.z",
            "precinct_written=...",
        ] {
            assert_eq!(from_cookie(&headers(bad), &secret, ana), None, "{bad}");
        }
        let short = format!("{}.42.00", ana.simple());
        assert_eq!(
            from_cookie(&headers(&format!("{COOKIE}={short}")), &secret, ana),
            None
        );
    }
}
