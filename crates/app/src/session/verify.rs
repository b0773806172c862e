//! Finding and verifying the session token of a request.

use std::sync::Arc;

use base64::Engine as _;
use http::HeaderMap;
use latchkey_protocol::jwt::{
    SessionClaims, TokenError, VerifyOptions, decode_unverified_claims, verify_session_token,
};
use latchkey_web::cookies;

use super::cache::TokenCache;
use super::keys::KeyProvider;

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

/// Why a request counts as signed out. Only the reason code is ever logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedOut {
    #[error("no session token")]
    NoToken,
    #[error("the session token is older than the client's last sign-in or sign-out")]
    Stale,
    #[error("the client has no signed-in session (__client_uat is 0)")]
    NoClient,
    #[error("{0}")]
    Invalid(#[from] TokenError),
    #[error("the issuer's keys could not be fetched")]
    KeysUnavailable,
    /// Clerk's `sts: "pending"`: the session has a task left (choosing an organization, a
    /// forced password reset); Clerk's SDKs treat it as signed out by default.
    #[error("the session has a pending task")]
    Pending,
}

impl SignedOut {
    /// A stable code for JSON answers.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoToken => "signed_out",
            Self::Stale => "session_token_stale",
            Self::NoClient => "signed_out",
            Self::Invalid(error) => error.code(),
            Self::KeysUnavailable => "keys_unavailable",
            Self::Pending => "session_pending",
        }
    }
}

/// Verifies request session tokens for one issuer.
pub struct SessionVerifier {
    pub config: IssuerConfig,
    keys: Arc<dyn KeyProvider>,
    cache: TokenCache,
}

impl std::fmt::Debug for SessionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionVerifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The bearer token of a request, by Clerk's rule: split at the first space; scheme exactly
/// `Bearer` gives the rest; no space gives the whole value; any other scheme gives nothing.
fn bearer(headers: &HeaderMap) -> Option<Option<&str>> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    Some(match value.split_once(' ') {
        Some(("Bearer", token)) => Some(token.trim()),
        Some(_) => None,
        None => Some(value.trim()),
    })
}

impl SessionVerifier {
    #[must_use]
    pub fn new(config: IssuerConfig, keys: Arc<dyn KeyProvider>) -> Self {
        Self {
            config,
            keys,
            cache: TokenCache::default(),
        }
    }

    fn cookie<'a>(&self, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        if let Some(suffix) = &self.config.cookie_suffix
            && let Some(value) = cookies::get(headers, &format!("{name}_{suffix}"))
        {
            return Some(value);
        }
        cookies::get(headers, name)
    }

    /// The verified claims of a request's session, or why it has none.
    ///
    /// # Errors
    /// [`SignedOut`] with the reason.
    pub async fn verify(&self, headers: &HeaderMap) -> Result<SessionClaims, SignedOut> {
        let claims = self.verify_token(headers).await?;
        if claims.sts.as_deref() == Some("pending") {
            return Err(SignedOut::Pending);
        }
        Ok(claims)
    }

    async fn verify_token(&self, headers: &HeaderMap) -> Result<SessionClaims, SignedOut> {
        let token = match bearer(headers) {
            // A header token is used exclusively, as Clerk's SDK does.
            Some(Some(token)) if !token.is_empty() => token,
            Some(_) => return Err(SignedOut::NoToken),
            None => {
                let token = self.cookie(headers, "__session").filter(|t| !t.is_empty());
                if self.config.kind == IssuerKind::Clerk {
                    let uat = self
                        .cookie(headers, "__client_uat")
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0);
                    match token {
                        None => return Err(SignedOut::NoToken),
                        Some(_) if uat == 0 => return Err(SignedOut::NoClient),
                        Some(token) => {
                            let iat = decode_unverified_claims(token)
                                .ok()
                                .and_then(|c| c.iat)
                                .unwrap_or(0);
                            if iat < uat {
                                return Err(SignedOut::Stale);
                            }
                        }
                    }
                }
                token.ok_or(SignedOut::NoToken)?
            }
        };
        let now = latchkey_protocol::time::now_ms();
        if let Some(claims) = self.cache.get(token, now) {
            return Ok(claims);
        }
        let mut options = VerifyOptions::new(now);
        if let Some(parties) = &self.config.authorized_parties {
            options = options.with_authorized_parties(parties.iter().cloned());
        }
        if let Some(issuer) = &self.config.issuer {
            options = options.with_issuer(issuer.clone());
        }
        let keys = self.keys.keys().await.ok_or(SignedOut::KeysUnavailable)?;
        let claims = match verify_session_token(token, &keys, &options) {
            Err(TokenError::UnknownKey { kid: Some(_) }) => {
                // Perhaps a rotation: fetch the keys again (rate-limited) and retry once.
                let keys = self
                    .keys
                    .refresh()
                    .await
                    .ok_or(SignedOut::KeysUnavailable)?;
                verify_session_token(token, &keys, &options)?
            }
            other => other?,
        };
        self.cache.put(token, &claims);
        Ok(claims)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn authorization_follows_clerks_parsing() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some(Some("abc")));
        headers.insert("authorization", "abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some(Some("abc")));
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some(None));
        headers.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(
            bearer(&headers),
            Some(None),
            "the scheme is case-sensitive in Clerk's SDK"
        );
    }
}
