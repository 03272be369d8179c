//! Where a webhook may be delivered (ADR 0028): the SSRF rules shared by the API (at
//! creation and edit) and the deliverer (before every attempt). A target must be
//! `https` unless the operator allows plain HTTP (`PRECINCT_WEBHOOK_ALLOW_HTTP`, for
//! development and tests), and every address its host resolves to must be a public
//! one: loopback, private, shared (CGNAT), link-local, unspecified, multicast,
//! broadcast, reserved and unique-local addresses are refused — unless the host (or
//! the IP literal) is in the operator's allow-list (`PRECINCT_WEBHOOK_ALLOW`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long resolving a target's host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most addresses of one host kept.
const ADDRS_MAX: usize = 16;

/// The operator's rules for webhook targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Plain `http://` targets are accepted (never in production).
    pub allow_http: bool,
    /// Hosts or IP literals (lower case) accepted whatever they resolve to.
    pub allow: Vec<String>,
}

/// A checked target: the host, and the addresses to connect to (pinned: the deliverer
/// connects to exactly these, so a second resolution cannot point elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

impl TargetPolicy {
    /// Parses `PRECINCT_WEBHOOK_ALLOW`: comma-separated hosts or IP literals.
    pub fn parse_allow(list: &str) -> Vec<String> {
        list.split(',')
            .map(|h| {
                h.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase()
            })
            .filter(|h| !h.is_empty())
            .collect()
    }

    /// Checks `url` and resolves its host. The error is a reason fit for a client.
    pub async fn check(&self, url: &str) -> Result<Target, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err("must be https".into()),
            _ => return Err("must be an https URL".into()),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not carry user information".into());
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("must name a host".into()),
        };
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| "must name a port".to_string())?;
        let allowed = self.allow.contains(&host);
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(
                RESOLVE_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            .map_err(|_| "the host did not resolve in time".to_string())?
            .map_err(|_| "the host does not resolve".to_string())?
            .take(ADDRS_MAX)
            .collect(),
        };
        if addrs.is_empty() {
            return Err("the host does not resolve".into());
        }
        if !allowed {
            // The address itself is not named: the answer must not map the internal
            // network for whoever may create a webhook.
            if addrs.iter().any(|a| !is_public(a.ip())) {
                return Err("resolves to a forbidden address: loopback, private, \
                     link-local, unspecified, multicast and reserved addresses are refused"
                    .into());
            }
        }
        Ok(Target { host, addrs })
    }
}

/// Is `ip` a public unicast address a webhook may reach?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0
        // Shared address space (RFC 6598).
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        // IETF protocol assignments, benchmarking, reserved.
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || o[0] >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32.
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // Site-local fec0::/10 (deprecated, still routed on some networks).
        || (s[0] & 0xffc0) == 0xfec0
        // Prefixes that carry a v4 address: IPv4-compatible ::/96, NAT64 64:ff9b::/96
        // and the local-use 64:ff9b:1::/48, 6to4 2002::/16 (a private v4 behind any
        // of them is a private target).
        || (s[..6] == [0; 6])
        || (s[0] == 0x64 && s[1] == 0xff9b)
        || s[0] == 0x2002)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_multicast_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(
                !is_public(ip.parse().expect("an address")),
                "{ip} must be refused"
            );
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().expect("an address")), "{ip} is public");
        }
    }

    #[tokio::test]
    async fn http_needs_the_operator_and_the_allow_list_admits_loopback() {
        let strict = TargetPolicy::default();
        assert_eq!(
            strict.check("http://1.1.1.1/x").await.expect_err("refused"),
            "must be https"
        );
        assert!(strict
            .check("https://127.0.0.1/x")
            .await
            .expect_err("refused")
            .contains("forbidden"));
        assert!(strict.check("https://user:pw@1.1.1.1/").await.is_err());
        assert!(strict.check("ftp://1.1.1.1/").await.is_err());
        let dev = TargetPolicy {
            allow_http: true,
            allow: TargetPolicy::parse_allow(" 127.0.0.1 ,[::1]"),
        };
        let t = dev
            .check("http://127.0.0.1:8080/hook")
            .await
            .expect("accepted");
        assert_eq!(t.addrs, vec!["127.0.0.1:8080".parse().expect("accepted")]);
        assert!(dev
            .check("http://10.0.0.1/")
            .await
            .expect_err("refused")
            .contains("forbidden"));
    }
}
