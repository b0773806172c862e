//! Who issues the session tokens the app accepts, and what the app knows about Clerk as an
//! issuer: how a publishable key names its Frontend API (the token issuer, the public JWKS and
//! the cookie suffix) and where its Account Portal pages are. The wiring (`latchkey_server`)
//! passes settings in and gets an [`IssuerConfig`] out; it knows nothing of Clerk's URL rules.
//! The encoding is described in `docs/PROTOCOLS.md §4.1`.

use base64::Engine as _;

/// Who issues the session tokens the app accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerKind {
    /// latchkey's own identity part.
    Latchkey,
    /// Real Clerk.
    Clerk,
}

/// How the app verifies sessions and where it sends people to sign in.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub kind: IssuerKind,
    /// The `iss` tokens must carry, when known.
    pub issuer: Option<String>,
    /// Origins allowed as `azp`; when set, tokens without `azp` are refused.
    pub authorized_parties: Option<Vec<String>>,
    /// Clerk's cookie suffix (from the publishable key) for `__session_<suffix>` cookies.
    pub cookie_suffix: Option<String>,
    /// Where signed-out visitors of pages are sent (`redirect_url` is added).
    pub sign_in_url: String,
    /// Where "Manage account" leads.
    pub account_url: String,
    /// A same-site path that signs out by form post (latchkey's identity), if any.
    pub sign_out_path: Option<String>,
}

impl IssuerConfig {
    /// latchkey's own identity part in the same process: its pages are same-site paths and
    /// it signs out by form post.
    #[must_use]
    pub fn latchkey(issuer: String, authorized_parties: Option<Vec<String>>) -> Self {
        Self {
            kind: IssuerKind::Latchkey,
            issuer: Some(issuer),
            authorized_parties,
            cookie_suffix: None,
            sign_in_url: "/sign-in".to_owned(),
            account_url: "/user".to_owned(),
            sign_out_path: Some("/sign-out".to_owned()),
        }
    }

    /// Real Clerk. With a publishable key the issuer, the cookie suffix and the Account
    /// Portal's pages follow from it; explicit sign-in and account URLs win; without either
    /// the app falls back to same-site `/sign-in` and `/user`.
    #[must_use]
    pub fn clerk(
        publishable_key: Option<&str>,
        sign_in_url: Option<String>,
        account_url: Option<String>,
        authorized_parties: Option<Vec<String>>,
    ) -> Self {
        let frontend = publishable_key.and_then(clerk_frontend_api);
        let portal = frontend.as_ref().map(|(api, _)| account_portal(api));
        Self {
            kind: IssuerKind::Clerk,
            issuer: frontend.as_ref().map(|(api, _)| api.clone()),
            authorized_parties,
            cookie_suffix: frontend.map(|(_, suffix)| suffix),
            sign_in_url: sign_in_url
                .or_else(|| portal.as_ref().map(|p| format!("{p}/sign-in")))
                .unwrap_or_else(|| "/sign-in".to_owned()),
            account_url: account_url
                .or_else(|| portal.map(|p| format!("{p}/user")))
                .unwrap_or_else(|| "/user".to_owned()),
            sign_out_path: None,
        }
    }
}

/// The Frontend API URL a Clerk publishable key encodes (`pk_test_`/`pk_live_` + base64 of
/// `host$`), and the cookie suffix Clerk derives from the key.
#[must_use]
pub fn clerk_frontend_api(publishable_key: &str) -> Option<(String, String)> {
    let encoded = publishable_key
        .strip_prefix("pk_live_")
        .or_else(|| publishable_key.strip_prefix("pk_test_"))?;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = String::from_utf8(engine.decode(encoded).ok()?).ok()?;
    let host = decoded.strip_suffix('$')?;
    if host.is_empty() || host.contains(['/', ' ', '$']) {
        return None;
    }
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        publishable_key.as_bytes(),
    );
    let suffix: String = base64::engine::general_purpose::STANDARD
        .encode(digest.as_ref())
        .replace('+', "-")
        .replace('/', "_")
        .chars()
        .take(8)
        .collect();
    Some((format!("https://{host}"), suffix))
}

/// The public JWKS of a Clerk Frontend API URL (no credentials needed).
#[must_use]
pub fn frontend_jwks_url(frontend_api: &str) -> String {
    format!(
        "{}/.well-known/jwks.json",
        frontend_api.trim_end_matches('/')
    )
}

/// The JWKS of Clerk's Backend API at `api_url`, fetched with the secret key as a bearer.
#[must_use]
pub fn backend_jwks_url(api_url: &str) -> String {
    format!("{}/v1/jwks", api_url.trim_end_matches('/'))
}

/// Clerk's Account Portal for a Frontend API URL: `clerk.example.com` → `accounts.example.com`
/// (production), `slug.clerk.accounts.dev` → `slug.accounts.dev` (development); any other
/// host is taken as the portal itself.
#[must_use]
pub fn account_portal(frontend_api: &str) -> String {
    let host = frontend_api.trim_start_matches("https://");
    if let Some(rest) = host.strip_prefix("clerk.") {
        format!("https://accounts.{rest}")
    } else if let Some(slug) = host.strip_suffix(".clerk.accounts.dev") {
        format!("https://{slug}.accounts.dev")
    } else {
        format!("https://{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str) -> String {
        format!(
            "pk_live_{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("{host}$"))
        )
    }

    #[test]
    fn publishable_keys_decode_to_the_frontend_api() {
        let key = format!(
            "pk_test_{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode("clerk.example.com$")
        );
        let (issuer, suffix) = clerk_frontend_api(&key).unwrap();
        assert_eq!(issuer, "https://clerk.example.com");
        assert_eq!(suffix.len(), 8);
        assert_eq!(clerk_frontend_api("sk_test_nope"), None);
        assert_eq!(clerk_frontend_api("pk_test_%%%"), None);
    }

    #[test]
    fn account_portals_follow_clerks_hosts() {
        assert_eq!(
            account_portal("https://clerk.example.com"),
            "https://accounts.example.com"
        );
        assert_eq!(
            account_portal("https://happy-cat-12.clerk.accounts.dev"),
            "https://happy-cat-12.accounts.dev"
        );
        assert_eq!(
            account_portal("https://auth.example.org"),
            "https://auth.example.org"
        );
    }

    #[test]
    fn a_clerk_issuer_takes_its_urls_from_the_publishable_key_unless_given() {
        let config = IssuerConfig::clerk(Some(&key("clerk.example.com")), None, None, None);
        assert_eq!(config.kind, IssuerKind::Clerk);
        assert_eq!(config.issuer.as_deref(), Some("https://clerk.example.com"));
        assert_eq!(config.sign_in_url, "https://accounts.example.com/sign-in");
        assert_eq!(config.account_url, "https://accounts.example.com/user");
        assert_eq!(config.cookie_suffix.as_ref().map(String::len), Some(8));
        assert_eq!(config.sign_out_path, None);

        let config = IssuerConfig::clerk(
            Some(&key("clerk.example.com")),
            Some("https://example.com/login".to_owned()),
            Some("https://example.com/me".to_owned()),
            None,
        );
        assert_eq!(config.sign_in_url, "https://example.com/login");
        assert_eq!(config.account_url, "https://example.com/me");

        let config = IssuerConfig::clerk(None, None, None, Some(vec!["https://a".to_owned()]));
        assert_eq!(config.issuer, None);
        assert_eq!(config.cookie_suffix, None);
        assert_eq!(
            (config.sign_in_url.as_str(), config.account_url.as_str()),
            ("/sign-in", "/user")
        );
        assert_eq!(
            config.authorized_parties,
            Some(vec!["https://a".to_owned()])
        );
    }

    #[test]
    fn jwks_urls_are_clerks() {
        assert_eq!(
            frontend_jwks_url("https://clerk.example.com"),
            "https://clerk.example.com/.well-known/jwks.json"
        );
        assert_eq!(
            backend_jwks_url("https://api.clerk.com/"),
            "https://api.clerk.com/v1/jwks"
        );
    }
}
