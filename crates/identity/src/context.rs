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
    /// From the connection's peer address, or the first `X-Forwarded-For` hop when latchkey
    /// runs behind a proxy it trusts (`trust_forwarded_for`); never from a header otherwise,
    /// since clients can write any header they like.
    #[must_use]
    pub fn read(headers: &HeaderMap, peer: Peer, trust_forwarded_for: bool) -> Self {
        let forwarded = trust_forwarded_for
            .then(|| headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|list| list.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok());
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
}
