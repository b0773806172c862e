//! Talking to providers: their discovery document and JWKS (cached; the key set is fetched
//! again when a token names a key it does not hold), and the authorization code exchange.
//! Every request has a timeout and follows no redirect; nothing a provider sends is logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_protocol::jwt::{
    IdTokenClaims, IdTokenError, IdTokenExpectations, ProviderKeys, verify_id_token,
};
use serde::Deserialize;

use super::{Kind, ProviderSettings};

/// How long one request to a provider may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a discovery document and key set are used before being fetched again.
const CACHE_MS: i64 = 60 * 60 * 1000;
/// A key set is fetched again for an unknown kid at most this often.
const REFETCH_MS: i64 = 30 * 1000;
/// Larger answers are refused.
const MAX_BODY: usize = 256 * 1024;

/// Why a provider could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider could not be reached or did not answer in time")]
    Unreachable,
    #[error("the provider answered {0}")]
    Status(u16),
    #[error("the provider's answer is not what OpenID Connect describes: {0}")]
    Invalid(&'static str),
    #[error("the provider refused the authorization code")]
    CodeRefused,
    #[error(transparent)]
    Token(#[from] IdTokenError),
}

/// The parts of a discovery document (OpenID Connect Discovery 1.0 §3) latchkey uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

#[derive(Clone)]
struct Cached {
    discovery: Discovery,
    keys: ProviderKeys,
    fetched_at: i64,
    keys_fetched_at: i64,
}

/// The HTTP client and what it learnt about each provider; shared by every request.
#[derive(Clone)]
pub struct Providers {
    client: reqwest::Client,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers").finish_non_exhaustive()
    }
}

/// What the token endpoint answers (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// A verified sign-in at a provider.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: IdTokenClaims,
    /// The scopes granted, space-separated (the ones asked for when the provider does not say).
    pub scopes: String,
}

impl Providers {
    /// A client with [`TIMEOUT`] and no redirects.
    ///
    /// # Errors
    /// If the TLS backend cannot be set up.
    pub fn new() -> Result<Self, reqwest::Error> {
        // reqwest is built without a TLS provider of its own; latchkey's is rustls with ring.
        // Installing it is idempotent, and a command that never starts the server (`latchkey
        // users …`) builds an identity too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn cached(&self, key: &str) -> Option<Cached> {
        self.cache.lock().ok()?.get(key).cloned()
    }

    fn store(&self, key: &str, cached: Cached) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key.to_owned(), cached);
        }
    }

    async fn get_json(&self, url: &str) -> Result<Vec<u8>, ProviderError> {
        let response = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| ProviderError::Unreachable)?;
        if !response.status().is_success() {
            return Err(ProviderError::Status(response.status().as_u16()));
        }
        read_body(response).await
    }

    /// The origin of the provider's authorization endpoint, as last discovered (the issuer's
    /// before the first discovery): what a page's `form-action` must allow for its button.
    #[must_use]
    pub fn authorization_origin(&self, provider: &ProviderSettings) -> String {
        let endpoint = if provider.kind == Kind::GitHub {
            Some(super::github::endpoints(provider).authorization_endpoint)
        } else {
            self.cached(&provider.key)
                .map(|c| c.discovery.authorization_endpoint)
        };
        endpoint
            .and_then(|e| url::Url::parse(&e).ok())
            .unwrap_or_else(|| provider.issuer.clone())
            .origin()
            .ascii_serialization()
    }

    /// The provider's discovery document and keys, from the cache when fresh.
    ///
    /// # Errors
    /// The provider is unreachable or its documents are not usable.
    pub async fn discover(
        &self,
        provider: &ProviderSettings,
        now: i64,
    ) -> Result<Discovery, ProviderError> {
        if provider.kind == Kind::GitHub {
            return Ok(super::github::endpoints(provider));
        }
        Ok(self.load(provider, now).await?.discovery)
    }

    async fn load(&self, provider: &ProviderSettings, now: i64) -> Result<Cached, ProviderError> {
        if let Some(cached) = self.cached(&provider.key)
            && now - cached.fetched_at < CACHE_MS
        {
            return Ok(cached);
        }
        let issuer = provider.issuer.as_str().trim_end_matches('/');
        let body = self
            .get_json(&format!("{issuer}/.well-known/openid-configuration"))
            .await?;
        let discovery: Discovery = serde_json::from_slice(&body)
            .map_err(|_| ProviderError::Invalid("the discovery document"))?;
        // Discovery §4.3: the document names the issuer it was fetched for. Microsoft's
        // multi-tenant document names `{tenantid}` instead, filled in from each token.
        let announced = discovery.issuer.trim_end_matches('/');
        if announced != issuer && !discovery.issuer.contains("{tenantid}") {
            return Err(ProviderError::Invalid("the discovery document's issuer"));
        }
        let keys = self.fetch_keys(&discovery.jwks_uri).await?;
        let cached = Cached {
            discovery,
            keys,
            fetched_at: now,
            keys_fetched_at: now,
        };
        self.store(&provider.key, cached.clone());
        Ok(cached)
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<ProviderKeys, ProviderError> {
        let body = self.get_json(jwks_uri).await?;
        ProviderKeys::from_json(&body).map_err(|_| ProviderError::Invalid("the key set"))
    }

    /// Exchanges `code` (with its PKCE verifier) at the token endpoint and verifies the ID
    /// token that comes back against `nonce` (GitHub: reads the user from its API instead).
    ///
    /// # Errors
    /// See [`ProviderError`].
    pub async fn exchange(
        &self,
        provider: &ProviderSettings,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Verified, ProviderError> {
        if provider.kind == Kind::GitHub {
            return super::github::exchange(
                &self.client,
                provider,
                code,
                code_verifier,
                redirect_uri,
            )
            .await;
        }
        let cached = self.load(provider, now).await?;
        // RFC 6749 §2.3.1: id and secret form-encoded, then HTTP Basic.
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = self
            .client
            .post(&cached.discovery.token_endpoint)
            .basic_auth(
                encode(&provider.client_id),
                Some(encode(provider.client_secret.expose())),
            )
            .header(http::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", code_verifier),
            ])
            .send()
            .await
            .map_err(|_| ProviderError::Unreachable)?;
        let status = response.status();
        if status.is_client_error() {
            return Err(ProviderError::CodeRefused);
        }
        if !status.is_success() {
            return Err(ProviderError::Status(status.as_u16()));
        }
        let body = read_body(response).await?;
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| ProviderError::Invalid("the token response"))?;
        let id_token = token
            .id_token
            .ok_or(ProviderError::Invalid("the token response has no id_token"))?;
        let expect = IdTokenExpectations {
            issuer: &cached.discovery.issuer,
            client_id: &provider.client_id,
            nonce,
            now_ms: now,
            clock_skew_ms: 60_000,
        };
        let claims = match verify_id_token(&id_token, &cached.keys, &expect) {
            Err(IdTokenError::UnknownKey) if now - cached.keys_fetched_at >= REFETCH_MS => {
                // The provider may have rotated its keys since they were cached.
                let keys = self.fetch_keys(&cached.discovery.jwks_uri).await?;
                let claims = verify_id_token(&id_token, &keys, &expect);
                self.store(
                    &provider.key,
                    Cached {
                        keys,
                        keys_fetched_at: now,
                        ..cached.clone()
                    },
                );
                claims?
            }
            other => other?,
        };
        Ok(Verified {
            claims,
            scopes: token.scope.unwrap_or_else(|| provider.scopes().to_owned()),
        })
    }
}

/// The body, refused past [`MAX_BODY`].
pub(super) async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| ProviderError::Unreachable)?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ProviderError::Invalid("the answer is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
