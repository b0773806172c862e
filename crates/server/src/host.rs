//! Which `Host` latchkey answers for (DNS rebinding).
//!
//! A page on `evil.example` whose name an attacker points at 127.0.0.1 is, to the browser, the
//! same origin as anything served there: without this check it could read `/dev/mailbox` or
//! any page of a latchkey on the victim's machine. Such a request still names the attacker's
//! host in `Host`, so every request whose host is not the public URL's (or a loopback name
//! when the public URL is on loopback, or one the operator lists) gets 421 Misdirected Request
//! before any handler runs. A host that is an IP address cannot come from rebinding; only
//! loopback addresses are let through that way, for the process's own deliveries and local
//! tools. `/healthz` and `/readyz` answer any host, as load balancers probe by address.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use latchkey_web::ApiError;

/// The hosts a request may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    names: Vec<String>,
    /// `localhost` is allowed (the public URL is on loopback).
    localhost: bool,
    /// Any IP literal is allowed (the public URL is the unspecified address: no name exists).
    any_address: bool,
}

impl AllowedHosts {
    /// The public URL's host, plus `extra` (host names, lowercase, no port).
    #[must_use]
    pub fn new(public_url: &url::Url, extra: &[String]) -> Self {
        let public = public_url.host_str().map(normalise).unwrap_or_default();
        let public_ip = public.parse::<IpAddr>().ok();
        let mut names = vec![public.clone()];
        names.extend(extra.iter().map(|h| normalise(h)));
        Self {
            names,
            localhost: public == "localhost" || public_ip.is_some_and(|ip| is_loopback(&ip)),
            any_address: public_ip.is_some_and(|ip| ip.is_unspecified()),
        }
    }

    /// Whether a request naming `host` (as in the `Host` header, port optional) is for us.
    #[must_use]
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = host_without_port(host) else {
            return false;
        };
        let name = normalise(name);
        if self.names.contains(&name) {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return self.any_address || is_loopback(&ip);
        }
        self.localhost && name == "localhost"
    }
}

/// Refuses requests addressed to another host with 421 before any handler runs.
pub async fn check_host(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return next.run(request).await;
    }
    // An absolute-form request target names the host itself and overrides `Host`.
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|value| value.to_str().ok()),
    };
    if host.is_some_and(|host| allowed.allows(host)) {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "misdirected_request",
        "This server does not answer for the host this request names.",
    )
    .into_response()
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → the host; `None` if malformed.
fn host_without_port(host: &str) -> Option<&str> {
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(is_port))
            .then_some(inside);
    }
    match host.split_once(':') {
        Some((name, port)) if is_port(port) && !name.is_empty() => Some(name),
        Some(_) => None,
        None => (!host.is_empty()).then_some(host),
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Lowercase, without the brackets of an IPv6 literal or a DNS root dot.
fn normalise(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn is_loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(public: &str, extra: &[&str]) -> AllowedHosts {
        let extra: Vec<String> = extra.iter().map(|h| (*h).to_owned()).collect();
        AllowedHosts::new(&url::Url::parse(public).unwrap(), &extra)
    }

    #[test]
    fn a_loopback_public_url_allows_loopback_names_only() {
        let allowed = hosts("http://127.0.0.1:3000", &[]);
        for host in [
            "127.0.0.1:3000",
            "127.0.0.1",
            "localhost:3000",
            "LOCALHOST",
            "[::1]:3000",
            "127.0.0.2",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "evil.example:3000",
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1:3000",
            "",
            ":3000",
            "127.0.0.1:x",
            "[::1",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn a_named_public_url_allows_its_name_extras_and_loopback_addresses() {
        let allowed = hosts("https://auth.example.com", &["admin.example.com"]);
        for host in [
            "auth.example.com",
            "Auth.Example.COM.",
            "auth.example.com:443",
            "admin.example.com",
            "127.0.0.1:3000",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in ["localhost:3000", "evil.example", "example.com", "10.1.2.3"] {
            assert!(!allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn an_unspecified_bind_without_a_public_url_allows_addresses_not_names() {
        let allowed = hosts("http://0.0.0.0:3000", &[]);
        assert!(allowed.allows("192.0.2.7:3000"));
        assert!(allowed.allows("[2001:db8::1]:3000"));
        assert!(!allowed.allows("evil.example:3000"));
    }
}
