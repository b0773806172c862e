//! Finding and verifying the session token of a request.

use std::sync::Arc;

use http::HeaderMap;
use latchkey_protocol::jwt::{
    SessionClaims, TokenError, VerifyOptions, decode_unverified_claims, verify_session_token,
};
use latchkey_protocol::time::Clock;
use latchkey_web::cookies;

use super::cache::TokenCache;
use super::issuer::{IssuerConfig, IssuerKind};
use super::keys::KeyProvider;

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
    /// The token verifies, but the issuer has since ended, revoked or removed its session, or
    /// banned its user (see [`super::revocations`]).
    #[error("the session has ended")]
    Revoked,
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
            Self::Revoked => "session_revoked",
        }
    }
}

/// Verifies request session tokens for one issuer.
pub struct SessionVerifier {
    pub config: IssuerConfig,
    keys: Arc<dyn KeyProvider>,
    cache: TokenCache,
    clock: Clock,
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
            clock: Clock::system(),
        }
    }

    /// Verifies token times by `clock` instead of the system clock: in one process with
    /// latchkey's identity part, the clock that part mints tokens by (tests move it).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock token times are checked by.
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
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
        let now = self.clock.now_ms();
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
        self.cache.put(token, &claims, now);
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
