//! Where the app learns about a user it has not seen yet: the issuer's management API
//! (Clerk's Backend API, or latchkey's own, in process or over HTTP).

use std::time::Duration;

use latchkey_protocol::clerk;

use super::keys::BoxFuture;

/// Why the issuer could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the issuer's API could not be reached: {0}")]
    Unreachable(String),
    #[error("the issuer's API refused the request: HTTP {0}")]
    Refused(u16),
    #[error("the issuer's API answered something that is not a user: {0}")]
    Invalid(String),
    #[error("the issuer's API kept answering 429")]
    RateLimited,
}

/// A source of users by id, and of every user page by page.
pub trait UserSource: Send + Sync + 'static {
    /// The user, or `None` if the issuer has no such user.
    fn get_user<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<clerk::User>, SourceError>>;
    /// Up to `limit` users after `starting_after`, newest first (Clerk's default order).
    fn list_users<'a>(
        &'a self,
        limit: u32,
        starting_after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<clerk::User>, SourceError>>;
}

/// How many 429s in a row one call waits out before giving up.
const MAX_RATE_LIMITED_RETRIES: u32 = 10;

/// Clerk's Backend API (or anything that speaks it), with a secret key.
pub struct BackendApi {
    base_url: String,
    secret_key: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for BackendApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendApi")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl BackendApi {
    /// `base_url` without `/v1` (e.g. `https://api.clerk.com`).
    #[must_use]
    pub fn new(base_url: &str, secret_key: String, client: reqwest::Client) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret_key,
            client,
        }
    }

    /// GET `path` (with query), honouring 429 `Retry-After`; `None` on 404.
    async fn get_json(
        &self,
        path_and_query: &str,
    ) -> Result<Option<serde_json::Value>, SourceError> {
        let url = format!("{}/v1{path_and_query}", self.base_url);
        for _ in 0..=MAX_RATE_LIMITED_RETRIES {
            let response = self
                .client
                .get(&url)
                .bearer_auth(&self.secret_key)
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| SourceError::Unreachable(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            match status {
                200..=299 => {
                    let value = response
                        .json()
                        .await
                        .map_err(|e| SourceError::Invalid(e.without_url().to_string()))?;
                    return Ok(Some(value));
                }
                404 => return Ok(None),
                429 => {
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(1)
                        .min(60);
                    tracing::info!(
                        wait.secs = wait,
                        "the issuer's API is rate limiting; waiting"
                    );
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                other => return Err(SourceError::Refused(other)),
            }
        }
        Err(SourceError::RateLimited)
    }
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl UserSource for BackendApi {
    fn get_user<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<clerk::User>, SourceError>> {
        Box::pin(async move {
            match self.get_json(&format!("/users/{}", encode(id))).await? {
                Some(value) => serde_json::from_value(value)
                    .map(Some)
                    .map_err(|e| SourceError::Invalid(clerk::describe_json_error(&e))),
                None => Ok(None),
            }
        })
    }

    fn list_users<'a>(
        &'a self,
        limit: u32,
        starting_after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<clerk::User>, SourceError>> {
        Box::pin(async move {
            let mut query = format!("/users?limit={}&order_by=-created_at", limit.clamp(1, 500));
            if let Some(cursor) = starting_after {
                query.push_str(&format!("&starting_after={}", encode(cursor)));
            }
            match self.get_json(&query).await? {
                Some(value) => serde_json::from_value(value)
                    .map_err(|e| SourceError::Invalid(clerk::describe_json_error(&e))),
                None => Err(SourceError::Refused(404)),
            }
        })
    }
}
