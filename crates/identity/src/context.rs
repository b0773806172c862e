//! Who is asking: the client address and user agent of a request, read the same way everywhere.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::HeaderMap;
use http::request::Parts;

/// The peer address of the connection, when the server recorded it (it always does in
/// production; a router driven without a socket has none).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr),
        ))
    }
}

/// Facts about the request that sessions and throttles record.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// From the connection's peer address, or, when latchkey runs behind a proxy it trusts
    /// (`trust_forwarded_for`), the last `X-Forwarded-For` entry: the one that proxy appended.
    /// Entries before it are whatever the client sent, so the first one is never used (a
    /// client could name a new address on every request and escape per-address limits).
    /// Never from a header otherwise, since clients can write any header they like.
    #[must_use]
    pub fn read(headers: &HeaderMap, peer: Peer, trust_forwarded_for: bool) -> Self {
        let forwarded = trust_forwarded_for
            .then(|| {
                headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .next_back()
            })
            .flatten()
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        let ip = forwarded.or_else(|| peer.0.map(|addr| addr.ip()));
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        Self { ip, user_agent }
    }

    /// The address as text, for storage and throttle buckets.
    #[must_use]
    pub fn ip_text(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }

    /// The key per-address limits count under: the IPv4 address, or an IPv6 address's /64
    /// (one subscriber's network: a client holding one has 2^64 addresses to rotate through).
    #[must_use]
    pub fn throttle_key(&self) -> Option<String> {
        self.ip.map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_of(values: &[&str], trust: bool) -> Option<IpAddr> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        let peer = Peer(Some("10.0.0.9:5000".parse().unwrap()));
        RequestContext::read(&headers, peer, trust).ip
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let key = |ip: &str| {
            RequestContext {
                ip: Some(ip.parse().unwrap()),
                user_agent: None,
            }
            .throttle_key()
            .unwrap()
        };
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:eeee:dddd:cccc")
        );
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn the_address_the_trusted_proxy_appended_counts() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        // The client wrote the first entries; the proxy appended the last.
        assert_eq!(
            ip_of(&["1.2.3.4, 5.6.7.8, 203.0.113.7"], true),
            Some(client)
        );
        assert_eq!(ip_of(&["1.2.3.4", "203.0.113.7"], true), Some(client));
        assert_eq!(ip_of(&["203.0.113.7"], true), Some(client));
        // Not trusted, or unreadable: the connection's peer.
        assert_eq!(ip_of(&["203.0.113.7"], false), Some(peer));
        assert_eq!(ip_of(&["1.2.3.4, not-an-ip"], true), Some(peer));
        assert_eq!(ip_of(&[], true), Some(peer));
    }
}
