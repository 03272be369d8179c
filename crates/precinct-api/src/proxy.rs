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
    /// not a trusted proxy. An entry that is not an address (`unknown`, an obfuscated
    /// name, garbage) ends the walk at the trusted hop that wrote it: nothing left of it
    /// can be believed. A chain of trusted hops only gives its left-most address.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let chain = self.chain(headers);
        let mut current = peer;
        for entry in chain.iter().rev().take(MAX_HOPS) {
            match entry {
                Some(ip) if self.trusts(*ip) => current = *ip,
                Some(ip) => return *ip,
                None => return current,
            }
        }
        current
    }

    /// The header's entries left to right, over every line of it (`None`: not an address).
    fn chain(&self, headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let mut chain = Vec::new();
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else {
                // Not visible ASCII: nothing in this line (or left of it) is believable.
                chain.clear();
                chain.push(None);
                continue;
            };
            for element in value.split(',') {
                chain.push(match self.header {
                    ForwardedHeader::XForwardedFor => parse_node(element),
                    ForwardedHeader::Forwarded => forwarded_for(element),
                });
            }
        }
        chain
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
        assert_eq!(p.client_addr(ip("203.0.113.7"), &h), ip("203.0.113.7"));
        let none = TrustedProxies::none();
        assert_eq!(none.client_addr(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn the_chain_is_walked_right_to_left_past_trusted_hops() {
        let p = proxies("10.0.0.0/8, 127.0.0.1", ForwardedHeader::XForwardedFor);
        // The client wrote a fake first entry; the proxies appended what they saw.
        let h = headers(
            "x-forwarded-for",
            &["6.6.6.6, 198.51.100.9", "10.1.2.3, 10.9.9.9"],
        );
        assert_eq!(p.client_addr(ip("127.0.0.1"), &h), ip("198.51.100.9"));
        // Only trusted hops: the left-most one is the best we know.
        let h = headers("x-forwarded-for", &["10.1.2.3"]);
        assert_eq!(p.client_addr(ip("127.0.0.1"), &h), ip("10.1.2.3"));
        // No header at all: the proxy itself.
        assert_eq!(
            p.client_addr(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_hop_that_wrote_it() {
        let p = proxies("10.0.0.0/8", ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["198.51.100.9, unknown, 10.0.0.2"]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("10.0.0.2"));
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
            ip("2001:db8:cafe::17")
        );
        // A proxy that writes X-Forwarded-For passes a client's `Forwarded` through: it is
        // not believed.
        let xff = proxies("127.0.0.1/32", ForwardedHeader::XForwardedFor);
        assert_eq!(xff.client_addr(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        let h = headers("forwarded", &["for=_hidden, for=10.0.0.5;by=10.0.0.1"]);
        let p = proxies("127.0.0.1/32", ForwardedHeader::Forwarded);
        assert_eq!(p.client_addr(ip("127.0.0.1"), &h), ip("10.0.0.5"));
    }

    #[test]
    fn mapped_v4_peers_and_ports_are_understood() {
        let p = proxies("127.0.0.1", ForwardedHeader::XForwardedFor);
        let mapped = IpAddr::V6(std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        let h = headers("x-forwarded-for", &["198.51.100.9:5555"]);
        assert_eq!(p.client_addr(mapped, &h), ip("198.51.100.9"));
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
