//! The HTTP client deliveries go out through: no redirects (only a 2xx from the URL itself
//! counts), a hard timeout, and no requests to private, loopback or link-local addresses unless
//! allowed, checked on the addresses actually connected to (so DNS cannot be used to point an
//! endpoint at the internal network after it was added). The same rules judge an endpoint's
//! URL when it is added ([`refuse_private_destination`]), so a refused one is never stored.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is on the public internet.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // 100.64.0.0/10 carrier-grade NAT, 0.0.0.0/8, 192.0.0.0/24, 198.18.0.0/15, 240.0.0.0/4
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() || v6.is_unspecified() {
                return false;
            }
            if let Some(v4) = embedded_ipv4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let [first, second, ..] = v6.segments();
            !(v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local (deprecated)
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                // 2001:db8::/32 documentation, 2001::/32 Teredo (a tunnel to an IPv4 host),
                // 64:ff9b:1::/48 local-use NAT64
                || (first == 0x2001 && (second == 0x0db8 || second == 0))
                || (first == 0x64 && second == 0xff9b))
        }
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`. Connecting to any of
/// them can reach that IPv4 host, so they are judged by it.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let o = v6.octets();
    let last = std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match v6.segments() {
        [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last),
        [0x2002, ..] => Some(std::net::Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// Resolves names and keeps only public addresses.
#[derive(Debug, Clone, Copy)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves only to private, loopback or link-local addresses"
                )
                .into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// A client for deliveries. With `allow_private` false, names resolving only to non-public
/// addresses fail to connect; literal IPs are checked by [`refuse_private_literal`].
///
/// # Errors
/// If the TLS backend cannot be set up.
pub fn build(timeout: Duration, allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("latchkey-webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(8)
        // A proxy from the environment (`HTTPS_PROXY`, `ALL_PROXY`) would resolve the
        // endpoint's name itself, past the check on the addresses connected to.
        .no_proxy();
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build()
}

/// Refuses a URL whose host is a literal non-public IP or a loopback name (other names are
/// checked at resolution).
///
/// # Errors
/// A message naming the refused address.
pub fn refuse_private_literal(url: &url::Url) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(name)) if is_loopback_name(name) => {
            return Err(format!("{name} is a loopback name"));
        }
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(format!("{ip} is not a public address"))
    }
}

/// `localhost` and its subdomains (RFC 6761 §6.3), in any case, with or without the final
/// dot of a fully qualified name.
fn is_loopback_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// How long adding an endpoint waits for its host name to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The check made when an endpoint is added: [`refuse_private_literal`], then, for a name, its
/// addresses now (resolved within [`RESOLVE_TIMEOUT`]); a name whose every address is not
/// public is refused. A name that does not resolve (yet, or within the timeout) is let
/// through: DNS is often set up after the endpoint, a failed lookup may be transient, and
/// whatever the name points at later is judged again on every connection.
///
/// # Errors
/// A message naming the refused host or address.
pub async fn refuse_private_destination(url: &url::Url) -> Result<(), String> {
    refuse_private_literal(url)?;
    let Some(url::Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(0);
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await {
        Ok(Ok(resolved)) => judge_resolved(name, resolved.map(|addr| addr.ip())),
        Ok(Err(_)) | Err(_) => Ok(()),
    }
}

/// Refuses `name` if it resolved to addresses and none of them is public (the delivery
/// client would find nothing to connect to).
fn judge_resolved(name: &str, resolved: impl IntoIterator<Item = IpAddr>) -> Result<(), String> {
    let mut any = false;
    for ip in resolved {
        if is_public(ip) {
            return Ok(());
        }
        any = true;
    }
    if any {
        Err(format!(
            "{name} resolves only to private, loopback or link-local addresses"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.1.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:5",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "ff02::1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "93.184.216.34",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_private_urls_are_refused() {
        for url in [
            "http://127.0.0.1:3000/x",
            "http://[::1]/",
            "http://localhost/",
            "http://api.localhost/",
            "http://169.254.169.254/latest",
            "http://LOCALHOST./",
            "http://api.localhost./",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00:ec2::254]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://2130706433/",
        ] {
            assert!(
                refuse_private_literal(&url::Url::parse(url).unwrap()).is_err(),
                "{url}"
            );
        }
        assert!(
            refuse_private_literal(&url::Url::parse("https://hooks.example.com/x").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn a_name_is_refused_only_when_every_address_is_private() {
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|ip| ip.parse().unwrap()).collect() };
        assert!(judge_resolved("in.example", ips(&["10.0.0.1", "fd00::1"])).is_err());
        assert!(judge_resolved("in.example", ips(&["::ffff:169.254.169.254"])).is_err());
        assert!(judge_resolved("mixed.example", ips(&["10.0.0.1", "93.184.216.34"])).is_ok());
        assert!(judge_resolved("none.example", ips(&[])).is_ok());
    }

    #[tokio::test]
    async fn the_check_at_creation_refuses_literals_and_resolves_names() {
        async fn check(url: &str) -> Result<(), String> {
            refuse_private_destination(&url::Url::parse(url).unwrap()).await
        }
        assert!(check("http://169.254.169.254/").await.is_err());
        assert!(check("http://[::ffff:127.0.0.1]/").await.is_err());
        assert!(check("http://localhost:1/").await.is_err());
        assert!(check("https://93.184.216.34/").await.is_ok());
        // `.invalid` never resolves (RFC 6761 §6.4): let through, judged again at delivery.
        assert!(check("https://hooks.invalid/").await.is_ok());
    }
}
