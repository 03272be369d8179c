//! The client's address behind trusted reverse proxies: `X-Forwarded-For` or `Forwarded`
//! (RFC 7239) is read only when the TCP peer is a configured trusted proxy, and walked
//! right to left past trusted hops (ADR 0010).
//!
//! Why one header and not "whichever is present": a proxy appends to the header it
//! knows and passes the other through untouched, so honouring both would let a client
//! write its own address into the one its proxy ignores. The operator names the header
//! their proxy writes (`PRECINCT_FORWARDED_HEADER`, default `x-forwarded-for`).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Entries of a forwarding header looked at, from the right: more hops than this are
/// not a real chain of proxies.
const MAX_HOPS: usize = 32;

/// Which header a trusted proxy writes the client's address into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl std::str::FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            other => Err(format!(
                "unknown forwarding header {other:?} (expected x-forwarded-for or forwarded)"
            )),
        }
    }
}

/// The proxies whose forwarding header is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { nets, header }
    }

    /// No proxy is trusted: the client address is always the TCP peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses `10.0.0.0/8, 127.0.0.1, ::1/128` (a bare address is one host).
    pub fn parse_nets(list: &str) -> Result<Vec<IpNet>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not a network (10.0.0.0/8) or an address"))
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`: the peer itself
    /// unless it is trusted; else the right-most address of the forwarding chain that is
    /// not a trusted proxy. A chain of trusted hops only gives its left-most address; no
    /// header at all, the peer itself.
    ///
    /// `None` — the client is unknown — when the walk meets an entry it cannot read
    /// (`unknown`, an obfuscated name, bytes that are not ASCII) before an untrusted
    /// address: the trusted hop that wrote it did not know its client, and nothing left
    /// of it can be believed. Never the proxy's own address in its place: that would put
    /// every such client in the proxy's per-address budgets (and its anonymous
    /// idempotency scope). The header is read entry by entry from the right, in bytes, so
    /// garbage a client wrote on the left never hides the entry its proxy appended.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return Some(peer);
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        // Lines in order, then entries: the last line's last entry was written last.
        let lines: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
        let entries = lines
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(|b| *b == b','))
            .filter(|entry| !entry.trim_ascii().is_empty())
            .take(MAX_HOPS);
        let mut current = peer;
        for entry in entries {
            let node = std::str::from_utf8(entry)
                .ok()
                .filter(|e| e.is_ascii())
                .and_then(|e| match self.header {
                    ForwardedHeader::XForwardedFor => parse_node(e),
                    ForwardedHeader::Forwarded => forwarded_for(e),
                });
            match node {
                Some(ip) if self.trusts(ip) => current = ip,
                Some(ip) => return Some(ip),
                None => return None,
            }
        }
        Some(current)
    }
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.60;proto=https`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("for") {
            Some(parse_node(value.trim().trim_matches('"')))
        } else {
            None
        }
    })?
}

/// An address, possibly with a port: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn proxies(nets: &str, header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(TrustedProxies::parse_nets(nets).expect("nets"), header)
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies("10.0.0.0/8", ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["198.51.100.9"]);
        assert_eq!(
            p.client_addr(ip("203.0.113.7"), &h),
            Some(ip("203.0.113.7"))
        );
        let none = TrustedProxies::none();
        assert_eq!(none.client_addr(ip("127.0.0.1"), &h), Some(ip("127.0.0.1")));
    }

    #[test]
    fn the_chain_is_walked_right_to_left_past_trusted_hops() {
        let p = proxies("10.0.0.0/8, 127.0.0.1", ForwardedHeader::XForwardedFor);
        // The client wrote a fake first entry; the proxies appended what they saw.
        let h = headers(
            "x-forwarded-for",
            &["6.6.6.6, 198.51.100.9", "10.1.2.3, 10.9.9.9"],
        );
        assert_eq!(p.client_addr(ip("127.0.0.1"), &h), Some(ip("198.51.100.9")));
        // Only trusted hops: the left-most one is the best we know.
        let h = headers("x-forwarded-for", &["10.1.2.3"]);
        assert_eq!(p.client_addr(ip("127.0.0.1"), &h), Some(ip("10.1.2.3")));
        // No header at all: the proxy itself.
        assert_eq!(
            p.client_addr(ip("127.0.0.1"), &HeaderMap::new()),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn garbage_where_a_trusted_hop_wrote_makes_the_client_unknown() {
        let p = proxies("10.0.0.0/8", ForwardedHeader::XForwardedFor);
        // 10.0.0.2 did not know its client: the client is unknown, not the proxy.
        let h = headers("x-forwarded-for", &["198.51.100.9, unknown, 10.0.0.2"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), None);
        let h = headers("x-forwarded-for", &["unknown"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), None);
    }

    fn raw(name: &'static str, lines: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in lines {
            h.append(name, HeaderValue::from_bytes(v).expect("value"));
        }
        h
    }

    /// Review of issue 13, N5: a line that is not ASCII was thrown away whole, so the
    /// proxy became the client (and two clients shared its budgets).
    #[test]
    fn bytes_a_client_wrote_never_hide_what_its_proxy_appended() {
        let p = proxies("127.0.0.1", ForwardedHeader::XForwardedFor);
        let lo = ip("127.0.0.1");
        let h = raw("x-forwarded-for", &[b"\xff\xfe, 198.51.100.9"]);
        assert_eq!(p.client_addr(lo, &h), Some(ip("198.51.100.9")));
        let h = raw("x-forwarded-for", &[b"\xff", b"198.51.100.9"]);
        assert_eq!(p.client_addr(lo, &h), Some(ip("198.51.100.9")));
        let h = raw("x-forwarded-for", &["é, 198.51.100.9".as_bytes()]);
        assert_eq!(p.client_addr(lo, &h), Some(ip("198.51.100.9")));
        // Nothing readable where the proxy writes: unknown, never the proxy.
        let h = raw("x-forwarded-for", &[b"198.51.100.9, \xff"]);
        assert_eq!(p.client_addr(lo, &h), None);
        let h = raw("x-forwarded-for", &[b"198.51.100.9", b"\xff"]);
        assert_eq!(p.client_addr(lo, &h), None);
        // Empty entries carry nothing and are passed over.
        let h = raw("x-forwarded-for", &[b"198.51.100.9, ,"]);
        assert_eq!(p.client_addr(lo, &h), Some(ip("198.51.100.9")));
        let f = proxies("127.0.0.1", ForwardedHeader::Forwarded);
        let h = raw("forwarded", &[b"for=\xff, for=198.51.100.9;proto=https"]);
        assert_eq!(f.client_addr(lo, &h), Some(ip("198.51.100.9")));
        let h = raw("forwarded", &[b"for=198.51.100.9, for=\"\xff\""]);
        assert_eq!(f.client_addr(lo, &h), None);
    }

    #[test]
    fn forwarded_is_read_only_when_configured() {
        let h = headers(
            "forwarded",
            &[r#"for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711""#],
        );
        let fwd = proxies("127.0.0.1/32", ForwardedHeader::Forwarded);
        assert_eq!(
            fwd.client_addr(ip("127.0.0.1"), &h),
            Some(ip("2001:db8:cafe::17"))
        );
        // A proxy that writes X-Forwarded-For passes a client's `Forwarded` through: it is
        // not believed.
        let xff = proxies("127.0.0.1/32", ForwardedHeader::XForwardedFor);
        assert_eq!(xff.client_addr(ip("127.0.0.1"), &h), Some(ip("127.0.0.1")));
        let h = headers("forwarded", &["for=_hidden, for=10.0.0.5;by=10.0.0.1"]);
        let p = proxies("127.0.0.1/32", ForwardedHeader::Forwarded);
        assert_eq!(p.client_addr(ip("127.0.0.1"), &h), Some(ip("10.0.0.5")));
    }

    #[test]
    fn mapped_v4_peers_and_ports_are_understood() {
        let p = proxies("127.0.0.1", ForwardedHeader::XForwardedFor);
        let mapped = IpAddr::V6(std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        let h = headers("x-forwarded-for", &["198.51.100.9:5555"]);
        assert_eq!(p.client_addr(mapped, &h), Some(ip("198.51.100.9")));
    }

    #[test]
    fn network_lists_parse_or_say_what_is_wrong() {
        assert_eq!(
            TrustedProxies::parse_nets(" 10.0.0.0/8 ,127.0.0.1,::1/128,")
                .expect("nets")
                .len(),
            3
        );
        assert!(TrustedProxies::parse_nets("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse_nets("proxy.local").is_err());
        assert_eq!(
            "Forwarded".parse::<ForwardedHeader>(),
            Ok(ForwardedHeader::Forwarded)
        );
        assert!("x-real-ip".parse::<ForwardedHeader>().is_err());
    }
}
