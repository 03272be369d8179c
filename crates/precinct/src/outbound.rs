//! What the two outbound HTTP deliverers share (webhooks, ADR 0028; Web Push and device
//! gateways, ADR 0032, ADR 0038): a failure fit for their ledgers, an HTTP client
//! pinned to the addresses a target's last SSRF check resolved
//! (`precinct_api::webhook_target`), so that nothing connects anywhere the check did not
//! allow, and the Standard Webhooks POST.

use std::net::SocketAddr;
use std::time::Duration;

use precinct_api::webhook_target::Target;

/// Most characters of a recorded error.
const ERROR_MAX: usize = 200;

/// The longest `Retry-After` honoured: a receiver cannot park a delivery for longer.
pub(crate) const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// Why an attempt failed, fit for a ledger (never the receiver's body).
pub(crate) struct Failure {
    pub status: Option<u16>,
    pub error: String,
    /// How long the receiver asked to be left alone (`Retry-After` on a 429 or 503,
    /// RFC 9110 §10.2.3), at most [`RETRY_AFTER_MAX`]: the next attempt waits at least
    /// that long.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn new(status: Option<u16>, error: String) -> Self {
        let error = error.chars().take(ERROR_MAX).collect();
        Self {
            status,
            error,
            retry_after: None,
        }
    }

    /// A request that got no answer: timed out, could not connect, or failed otherwise
    /// (never the library's text, which may name addresses).
    pub fn of_request(e: &reqwest::Error, timeout: Duration) -> Self {
        let what = if e.is_timeout() {
            format!("timed out after {} ms", timeout.as_millis())
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else {
            "request failed".to_owned()
        };
        Failure::new(None, what)
    }

    /// The failure of a response that is not a success: its status, and the
    /// `Retry-After` of a 429 or 503.
    pub fn of_response(status: reqwest::StatusCode, headers: &reqwest::header::HeaderMap) -> Self {
        let mut f = Failure::new(Some(status.as_u16()), format!("HTTP {}", status.as_u16()));
        if matches!(status.as_u16(), 429 | 503) {
            f.retry_after = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, chrono::Utc::now()));
        }
        f
    }
}

/// A `Retry-After` value (delay-seconds or an HTTP-date) as a delay from `now`, at most
/// [`RETRY_AFTER_MAX`]; `None` when it cannot be read (the sender's own back-off
/// applies then).
pub(crate) fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        // IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) is an RFC 2822 date.
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(RETRY_AFTER_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_is_capped() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z")
            .expect("now")
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Mon, 30 Nov 2026 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Mon, 30 Nov 2026 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        assert_eq!(retry_after("999999", now), Some(RETRY_AFTER_MAX));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}

/// A sender's HTTP client, pinned to the addresses its target's last check resolved;
/// rebuilt when they change.
#[derive(Default)]
pub(crate) struct PinnedClient {
    pinned: Option<(String, Vec<SocketAddr>, reqwest::Client)>,
}

impl PinnedClient {
    pub fn for_target(
        &mut self,
        timeout: Duration,
        user_agent: &'static str,
        target: &Target,
    ) -> Result<reqwest::Client, Failure> {
        if let Some((host, addrs, client)) = &self.pinned {
            if *host == target.host && *addrs == target.addrs {
                return Ok(client.clone());
            }
        }
        let client = reqwest::Client::builder()
            // Never through a proxy from the environment: it would resolve the host
            // itself, around the pinned, checked addresses.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .resolve_to_addrs(&target.host, &target.addrs)
            .user_agent(user_agent)
            .build()
            .map_err(|_| Failure::new(None, "cannot build the HTTP client".into()))?;
        self.pinned = Some((target.host.clone(), target.addrs.clone(), client.clone()));
        Ok(client)
    }

    /// POSTs a JSON `body` to `url` with the Standard Webhooks headers (a webhook
    /// delivery, or a device gateway's notification): the response, whatever its status.
    pub async fn post_signed(
        &mut self,
        timeout: Duration,
        user_agent: &'static str,
        target: &Target,
        url: &str,
        signed: &Signed<'_>,
        body: &[u8],
    ) -> Result<reqwest::Response, Failure> {
        let client = self.for_target(timeout, user_agent, target)?;
        client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", signed.message_id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", signed.signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| Failure::of_request(&e, timeout))
    }
}

/// What an answer means to both deliverers: a 2xx is delivered; a redirect is not
/// followed; anything else failed (with its `Retry-After`, if any).
pub(crate) fn answer(response: reqwest::Response) -> Result<u16, Failure> {
    let status = response.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else if status.is_redirection() {
        Err(Failure::new(
            Some(status.as_u16()),
            format!("HTTP {}: redirects are not followed", status.as_u16()),
        ))
    } else {
        Err(Failure::of_response(status, response.headers()))
    }
}

/// A message's Standard Webhooks identity: its id, timestamp and signature header.
pub(crate) struct Signed<'a> {
    pub message_id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
}
