//! Where the keys that verify session tokens come from: a JWKS URL (Clerk's Frontend API or
//! Backend API, or any issuer's), a fixed PEM key (Clerk's networkless `CLERK_JWT_KEY`), or
//! whatever the binary wires in (latchkey's own identity, in process).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use latchkey_protocol::jwt::{Jwks, KeySet, KeySource};

/// A boxed future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of verification keys.
pub trait KeyProvider: Send + Sync + 'static {
    /// The keys to verify with now (fetching them first if none are known or they are stale);
    /// `None` while no key could be had.
    fn keys(&self) -> BoxFuture<'_, Option<Arc<KeySource>>>;
    /// A token named a key that is not known: fetch again if allowed (rate-limited so a stream
    /// of tokens with made-up `kid`s cannot flood the issuer), and return what is known after.
    fn refresh(&self) -> BoxFuture<'_, Option<Arc<KeySource>>>;
}

/// One fixed key or key set.
#[derive(Debug, Clone)]
pub struct StaticKeys(pub Arc<KeySource>);

impl KeyProvider for StaticKeys {
    fn keys(&self) -> BoxFuture<'_, Option<Arc<KeySource>>> {
        let keys = self.0.clone();
        Box::pin(async move { Some(keys) })
    }

    fn refresh(&self) -> BoxFuture<'_, Option<Arc<KeySource>>> {
        self.keys()
    }
}

/// Keys are trusted this long before being fetched again (Clerk's SDK: 5 minutes).
pub const JWKS_TTL: Duration = Duration::from_secs(300);
/// After a failed fetch, or a fetch for an unknown `kid`, no other fetch for this long.
pub const REFETCH_BACKOFF: Duration = Duration::from_secs(10);

struct Cached {
    keys: Option<Arc<KeySource>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// Keys from a JWKS URL, cached.
pub struct RemoteJwks {
    url: String,
    /// `Authorization` for the Backend API's `/v1/jwks` (a secret key); none for a public
    /// `/.well-known/jwks.json`.
    authorization: Option<String>,
    client: reqwest::Client,
    cached: RwLock<Cached>,
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    #[must_use]
    pub fn new(url: String, authorization: Option<String>, client: reqwest::Client) -> Self {
        Self {
            url,
            authorization,
            client,
            cached: RwLock::new(Cached {
                keys: None,
                fetched_at: None,
                last_attempt: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> (Option<Arc<KeySource>>, Option<Instant>, Option<Instant>) {
        let cached = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (cached.keys.clone(), cached.fetched_at, cached.last_attempt)
    }

    async fn fetch(&self, force: bool) -> Option<Arc<KeySource>> {
        let _one_at_a_time = self.fetching.lock().await;
        let (keys, fetched_at, last_attempt) = self.snapshot();
        let fresh = fetched_at.is_some_and(|at| at.elapsed() < JWKS_TTL);
        let backing_off = last_attempt.is_some_and(|at| at.elapsed() < REFETCH_BACKOFF);
        if (fresh && !force) || backing_off {
            return keys;
        }
        let result = self.download().await;
        let mut cached = self
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.last_attempt = Some(Instant::now());
        match result {
            Ok(set) => {
                cached.keys = Some(Arc::new(KeySource::Set(set)));
                cached.fetched_at = Some(Instant::now());
            }
            Err(error) => {
                tracing::warn!(jwks.url = %self.url, error = %error, "could not fetch session-token keys")
            }
        }
        cached.keys.clone()
    }

    async fn download(&self) -> Result<KeySet, String> {
        let mut request = self.client.get(&self.url);
        if let Some(value) = &self.authorization {
            request = request.header("authorization", value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let jwks: Jwks = response
            .json()
            .await
            .map_err(|e| e.without_url().to_string())?;
        KeySet::from_jwks(&jwks).map_err(|e| e.to_string())
    }
}

impl KeyProvider for RemoteJwks {
    fn keys(&self) -> BoxFuture<'_, Option<Arc<KeySource>>> {
        Box::pin(async move {
            let (keys, fetched_at, _) = self.snapshot();
            if keys.is_some() && fetched_at.is_some_and(|at| at.elapsed() < JWKS_TTL) {
                keys
            } else {
                self.fetch(false).await
            }
        })
    }

    fn refresh(&self) -> BoxFuture<'_, Option<Arc<KeySource>>> {
        Box::pin(self.fetch(true))
    }
}
