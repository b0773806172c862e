//! Who may call the management API, and how often: the `Authorization: Bearer sk_…` check
//! and the per-key rate limit, as one middleware in front of every route but the OpenAPI
//! document. It never logs keys, and answers every bad key the same way.
//!
//! The limit is Clerk's production one, [`RATE_LIMIT`] (1000 requests per 10 s per key), kept
//! in memory per instance: fixed windows starting at a key's first request. `GET /v1/jwks` is
//! not limited, as at Clerk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::HeaderMap;

use super::Bapi;
use super::error::BapiError;

/// Requests allowed per key in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

/// Clerk's production limit for the Backend API.
pub const RATE_LIMIT: RateLimit = RateLimit {
    max: 1000,
    window: Duration::from_secs(10),
};

/// Routes that are never limited.
const UNLIMITED: &[&str] = &["/v1/jwks"];

/// Request counts per key id.
pub(crate) struct RateLimiter {
    limit: RateLimit,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request by `key_id` at `now`; refused with the seconds until the window ends.
    pub fn take(&self, key_id: &str, now: Instant) -> Result<(), u64> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= 1024 {
            let window = self.limit.window;
            windows.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
        }
        let entry = windows.entry(key_id.to_owned()).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= self.limit.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit.max {
            let left = self
                .limit
                .window
                .saturating_sub(now.saturating_duration_since(entry.0));
            return Err(left.as_secs() + u64::from(left.subsec_nanos() > 0));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The key in `Authorization: Bearer <key>` (scheme in any case, as RFC 9110 allows).
fn presented_key(headers: &HeaderMap) -> Result<&str, BapiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(BapiError::missing_authorization());
    };
    let value = value
        .to_str()
        .map_err(|_| BapiError::authorization_format())?;
    match value.trim().split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Ok(key.trim())
        }
        _ => Err(BapiError::authorization_format()),
    }
}

/// Lets a request through only with a valid, unrevoked secret key under the rate limit.
pub(crate) async fn require_secret_key(
    State(bapi): State<Bapi>,
    request: Request,
    next: Next,
) -> Response {
    let key = match presented_key(request.headers()) {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    let key_id = match bapi.keys.verify(bapi.identity.db(), key).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            tracing::info!("management API request refused: unknown or revoked secret key");
            return BapiError::invalid_key().into_response();
        }
        Err(error) => return BapiError::from(error).into_response(),
    };
    let unlimited = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| UNLIMITED.contains(&path.as_str()));
    if !unlimited && let Err(seconds) = bapi.limiter.take(&key_id, Instant::now()) {
        tracing::info!(key.id = %key_id, retry_after = seconds, "management API rate limit reached");
        return BapiError::rate_limited(seconds).into_response();
    }
    // What the request changes is recorded in the audit log as this key's doing.
    crate::audit::acting_as(crate::audit::Actor::ApiKey(key_id), next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_window() {
        let limiter = RateLimiter::new(RateLimit {
            max: 3,
            window: Duration::from_secs(10),
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("a", start), Ok(()));
        }
        assert_eq!(
            limiter.take("a", start + Duration::from_millis(2500)),
            Err(8)
        );
        assert_eq!(limiter.take("b", start), Ok(()));
        assert_eq!(limiter.take("a", start + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn only_bearer_keys_are_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented_key(&headers).unwrap_err().code,
            "authentication_invalid"
        );
        for (value, ok) in [
            ("Bearer sk_live_x", true),
            ("bearer  sk_live_x ", true),
            ("Basic abc", false),
            ("Bearer ", false),
            ("sk_live_x", false),
        ] {
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(presented_key(&headers).is_ok(), ok, "{value}");
        }
    }
}
