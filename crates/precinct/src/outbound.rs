//! What the two outbound HTTP deliverers share (webhooks, ADR 0028; Web Push, ADR
//! 0032): a failure fit for their ledgers, and an HTTP client pinned to the addresses a
//! target's last SSRF check resolved (`precinct_api::webhook_target`), so that nothing
//! connects anywhere the check did not allow.

use std::net::SocketAddr;
use std::time::Duration;

use precinct_api::webhook_target::Target;

/// Most characters of a recorded error.
const ERROR_MAX: usize = 200;

/// Why an attempt failed, fit for a ledger (never the receiver's body).
pub(crate) struct Failure {
    pub status: Option<u16>,
    pub error: String,
}

impl Failure {
    pub fn new(status: Option<u16>, error: String) -> Self {
        let error = error.chars().take(ERROR_MAX).collect();
        Self { status, error }
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
}
