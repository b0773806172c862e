//! Social sign-in's domain: the configured providers (Google, Microsoft, any OpenID Connect
//! issuer, GitHub), talking to them (`provider.rs`: discovery, JWKS, the code exchange;
//! `github.rs`: GitHub's OAuth 2.0 and user API), the pending
//! round trips to them (`states.rs`) and the provider accounts linked to users
//! (`accounts.rs`, Clerk's external accounts). The use case combining them is
//! `flows::social`; the facts relied on are in docs/PROTOCOLS.md §11.

pub mod accounts;
mod github;
pub mod provider;
pub mod states;

use std::fmt;

/// Which provider, for the claims each is known to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Google,
    /// Microsoft Entra ID; the `common` tenant by default.
    Microsoft,
    /// Any OpenID Connect provider, by issuer URL.
    Custom,
    /// GitHub: OAuth 2.0 and its REST API, no OpenID Connect.
    GitHub,
}

/// A client secret: shown by nothing, sent only to the provider's token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    #[must_use]
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret, for the token request only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(redacted)")
    }
}

/// One configured provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// `google`, `microsoft`, or `custom_<id>`: Clerk's provider name less `oauth_`.
    pub key: String,
    /// What the button says after "Continue with".
    pub name: String,
    pub kind: Kind,
    /// The issuer: its discovery document is at `<issuer>/.well-known/openid-configuration`.
    /// For GitHub, the base URL of its `/login/oauth/…` endpoints.
    pub issuer: url::Url,
    /// GitHub's REST API (`https://api.github.com`); `None` for the others.
    pub api_url: Option<url::Url>,
    pub client_id: String,
    pub client_secret: ClientSecret,
}

impl ProviderSettings {
    /// Google at `issuer` (normally `https://accounts.google.com`).
    #[must_use]
    pub fn google(issuer: url::Url, client_id: String, client_secret: ClientSecret) -> Self {
        Self {
            key: "google".to_owned(),
            name: "Google".to_owned(),
            kind: Kind::Google,
            issuer,
            api_url: None,
            client_id,
            client_secret,
        }
    }

    /// Microsoft at `issuer` (normally `https://login.microsoftonline.com/common/v2.0`).
    #[must_use]
    pub fn microsoft(issuer: url::Url, client_id: String, client_secret: ClientSecret) -> Self {
        Self {
            key: "microsoft".to_owned(),
            name: "Microsoft".to_owned(),
            kind: Kind::Microsoft,
            issuer,
            api_url: None,
            client_id,
            client_secret,
        }
    }

    /// GitHub at `base` (normally `https://github.com`) with its API at `api`.
    #[must_use]
    pub fn github(
        base: url::Url,
        api: url::Url,
        client_id: String,
        client_secret: ClientSecret,
    ) -> Self {
        Self {
            key: "github".to_owned(),
            name: "GitHub".to_owned(),
            kind: Kind::GitHub,
            issuer: base,
            api_url: Some(api),
            client_id,
            client_secret,
        }
    }

    /// A generic OpenID Connect provider; Clerk names it `oauth_custom_<id>`.
    #[must_use]
    pub fn custom(
        id: &str,
        name: String,
        issuer: url::Url,
        client_id: String,
        client_secret: ClientSecret,
    ) -> Self {
        Self {
            key: format!("custom_{id}"),
            name,
            kind: Kind::Custom,
            issuer,
            api_url: None,
            client_id,
            client_secret,
        }
    }

    /// Clerk's name of the provider and of its verification strategy: `oauth_google`,
    /// `oauth_microsoft`, `oauth_custom_<id>`.
    #[must_use]
    pub fn clerk_provider(&self) -> String {
        format!("oauth_{}", self.key)
    }

    /// The scopes asked for.
    #[must_use]
    pub fn scopes(&self) -> &'static str {
        match self.kind {
            Kind::GitHub => "read:user user:email",
            Kind::Google | Kind::Microsoft | Kind::Custom => "openid email profile",
        }
    }
}

/// Whether `id` may name a custom provider: 1 to 32 lowercase letters and digits (so the
/// environment variable, the config key and Clerk's `oauth_custom_<id>` all spell it alike).
#[must_use]
pub fn valid_custom_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}
