//! Where mail goes: an SMTP relay named by a URL as lettre reads it, and the sender address.
//!
//! `smtps://user:password@host:465` is TLS from the first byte; `smtp://host:587?tls=required`
//! upgrades with STARTTLS and refuses servers that cannot; `smtp://host:25` is plain, for a
//! relay on loopback. Credentials are refused on a connection that might not be encrypted to
//! anywhere but loopback. Nothing here shows the credentials: `Debug` and [`SmtpUrl::redacted`]
//! give scheme, host and port only.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

/// An SMTP relay URL, checked.
#[derive(Clone)]
pub struct SmtpUrl(url::Url);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpUrl({})", self.redacted())
    }
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SmtpUrl {
    /// Checks `text`. Error messages never repeat the URL, which may hold a password.
    ///
    /// # Errors
    /// A message fit for the one-line configuration error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|_| {
            "not a URL such as smtps://user:password@smtp.example.com:465".to_owned()
        })?;
        let scheme = url.scheme().to_owned();
        if !matches!(scheme.as_str(), "smtp" | "smtps") {
            return Err(format!(
                "unsupported scheme \"{scheme}\"; expected smtp:// or smtps://"
            ));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "the URL needs a host".to_owned())?
            .to_owned();
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            if key != "tls" {
                return Err(format!(
                    "unknown parameter \"{key}\"; the only one is tls=required or tls=opportunistic"
                ));
            }
            tls = Some(value.into_owned());
        }
        match (scheme.as_str(), tls.as_deref()) {
            ("smtp", None | Some("required" | "opportunistic")) | ("smtps", None) => {}
            ("smtps", Some(_)) => {
                return Err("smtps:// is TLS from the start; drop the tls parameter".to_owned());
            }
            (_, other) => {
                return Err(format!(
                    "tls={} is not understood; use tls=required (STARTTLS) or tls=opportunistic",
                    other.unwrap_or_default()
                ));
            }
        }
        let encrypted = scheme == "smtps" || tls.as_deref() == Some("required");
        // lettre authenticates whenever the URL has a password, even with an empty user name.
        let credentials = !url.username().is_empty() || url.password().is_some();
        if !encrypted && credentials && !is_loopback_host(&host) {
            return Err(
                "the credentials would cross the network unencrypted; use smtps:// or add ?tls=required"
                    .to_owned(),
            );
        }
        let checked = Self(url);
        checked.transport(Duration::from_secs(30), None)?;
        Ok(checked)
    }

    /// `scheme://host:port`, for logs and messages.
    #[must_use]
    pub fn redacted(&self) -> String {
        let port = self.0.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}{port}",
            self.0.scheme(),
            self.0.host_str().unwrap_or_default()
        )
    }

    /// Whether the connection is encrypted (implicit TLS, or STARTTLS required).
    #[must_use]
    pub fn is_encrypted(&self) -> bool {
        self.0.scheme() == "smtps"
            || self
                .0
                .query_pairs()
                .any(|(k, v)| k == "tls" && v == "required")
    }

    /// A lettre transport for this relay: one connection per message (no pool), `timeout` per
    /// command, and `hello` as the EHLO name unless the URL's path names one.
    ///
    /// # Errors
    /// If lettre refuses the URL or cannot prepare TLS.
    pub fn transport(
        &self,
        timeout: Duration,
        hello: Option<&str>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(self.0.as_str())
            .map_err(|e| format!("the SMTP URL cannot be used: {e}"))?
            .timeout(Some(timeout));
        if let Some(name) = hello
            && self.0.path().trim_matches('/').is_empty()
        {
            builder = builder.hello_name(lettre::transport::smtp::extension::ClientId::Domain(
                name.to_owned(),
            ));
        }
        Ok(builder.build())
    }
}

/// The `From` of every mail: `Name <address>` or a bare address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender(pub(crate) Mailbox);

impl Sender {
    /// Checks `text` (`Acme <no-reply@acme.example>` or `no-reply@acme.example`).
    ///
    /// # Errors
    /// If lettre cannot read it as a mailbox.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse::<Mailbox>().map(Self).map_err(|_| {
            "not a sender such as \"Acme <no-reply@acme.example>\" or no-reply@acme.example"
                .to_owned()
        })
    }

    /// `site <no-reply@host>` for the public URL's host, or `no-reply@localhost` when the host
    /// is an address or has no dot (a development run).
    #[must_use]
    pub fn default_for(site_name: &str, public_url: &url::Url) -> Self {
        let domain = match public_url.host() {
            Some(url::Host::Domain(domain)) if domain.contains('.') => domain.to_owned(),
            _ => "localhost".to_owned(),
        };
        let address = format!("no-reply@{domain}")
            .parse()
            .unwrap_or_else(|_| "no-reply@localhost".parse().expect("a valid address"));
        Self(Mailbox::new(Some(site_name.to_owned()), address))
    }

    /// The domain of the address, for `Message-ID`s and the EHLO name.
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.email.domain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_are_checked_without_echoing_them() {
        for good in [
            "smtps://user:secret@smtp.example.com:465",
            "smtp://smtp.example.com:587?tls=required",
            "smtp://user:secret@smtp.example.com:587?tls=required",
            "smtp://127.0.0.1:2525",
            "smtp://user:secret@localhost:2525",
        ] {
            assert!(SmtpUrl::parse(good).is_ok(), "{good}");
        }
        for (bad, expected) in [
            ("http://smtp.example.com", "scheme"),
            ("smtp://user:secret@smtp.example.com:25", "unencrypted"),
            ("smtp://:secret@smtp.example.com:25", "unencrypted"),
            ("smtp://user@smtp.example.com", "unencrypted"),
            ("smtp://user:secret@203.0.113.25:25", "unencrypted"),
            ("smtp://user:secret@[::ffff:127.0.0.1]:25", "unencrypted"),
            ("smtp://user:secret@localhost.example.com:25", "unencrypted"),
            (
                "smtp://user:secret@smtp.example.com:25?tls=opportunistic",
                "unencrypted",
            ),
            (
                "smtps://smtp.example.com?tls=required",
                "TLS from the start",
            ),
            ("smtp://smtp.example.com?tls=maybe", "not understood"),
            ("smtp://smtp.example.com?verify=no", "unknown parameter"),
            ("smtp:///nohost", "host"),
        ] {
            let error = SmtpUrl::parse(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
            assert!(!error.contains("secret"), "{error}");
        }
        let url = SmtpUrl::parse("smtps://user:secret@smtp.example.com:465").unwrap();
        assert_eq!(format!("{url:?}"), "SmtpUrl(smtps://smtp.example.com:465)");
        assert!(url.is_encrypted());
        assert!(
            !SmtpUrl::parse("smtp://127.0.0.1:25")
                .unwrap()
                .is_encrypted()
        );
    }

    #[test]
    fn senders_are_mailboxes_with_a_sensible_default() {
        let sender = Sender::parse("Acme <no-reply@acme.example>").unwrap();
        assert_eq!(sender.domain(), "acme.example");
        assert!(Sender::parse("not an address").is_err());
        let local =
            Sender::default_for("My App", &url::Url::parse("http://127.0.0.1:3000").unwrap());
        assert_eq!(local.0.to_string(), "My App <no-reply@localhost>");
        let public = Sender::default_for(
            "My App",
            &url::Url::parse("https://auth.acme.example").unwrap(),
        );
        assert_eq!(public.domain(), "auth.acme.example");
    }
}
