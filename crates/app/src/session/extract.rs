//! The extractors, and provisioning on first sight.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use http::request::Parts;
use latchkey_protocol::jwt::SessionClaims;
use latchkey_store::{Db, StoreError};
use latchkey_web::ApiError;

use super::cache::UserCache;
use super::revocations::Revocations;
use super::source::{SourceError, UserSource};
use super::verify::{SessionVerifier, SignedOut};
use crate::users::{self, AppUser};

/// What the extractors need: the verifier, the revocations it is checked against, the app's
/// database, and the issuer's user API.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<AuthInner>,
}

struct AuthInner {
    verifier: SessionVerifier,
    revocations: Revocations,
    db: Db,
    source: Arc<dyn UserSource>,
    users: UserCache,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("verifier", &self.inner.verifier)
            .finish_non_exhaustive()
    }
}

/// The signed-in user of a request: the app's row and the verified token claims.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: AppUser,
    pub claims: SessionClaims,
}

/// The signed-in user, if any.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

/// Why a request did not get a [`CurrentUser`]: pages are sent to sign in, API routes answer
/// 401 JSON; an unavailable database or issuer answers 503.
#[derive(Debug)]
pub enum AuthRejection {
    SignIn { location: String },
    Unauthorized(SignedOut),
    Gone,
    Unavailable(ApiError),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { location } => Redirect::to(&location).into_response(),
            Self::Unauthorized(reason) => {
                ApiError::unauthorized(reason.code(), "Sign in to continue.").into_response()
            }
            Self::Gone => {
                ApiError::unauthorized("user_deleted", "This account was deleted.").into_response()
            }
            Self::Unavailable(error) => error.into_response(),
        }
    }
}

/// Why [`Auth::resolve`] found no user.
enum Missing {
    SignedOut(SignedOut),
    Deleted,
    Failed(ApiError),
}

impl Auth {
    /// Extractors over `verifier`, with an empty set of revocations going by its clock (load
    /// it with [`Revocations::load`] and keep it current with [`Revocations::refresher`]).
    #[must_use]
    pub fn new(verifier: SessionVerifier, db: Db, source: Arc<dyn UserSource>) -> Self {
        let revocations = Revocations::new(verifier.clock().clone());
        Self {
            inner: Arc::new(AuthInner {
                verifier,
                revocations,
                db,
                source,
                users: UserCache::default(),
            }),
        }
    }

    #[must_use]
    pub fn verifier(&self) -> &SessionVerifier {
        &self.inner.verifier
    }

    /// The sessions and users refused although their tokens verify.
    #[must_use]
    pub fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    /// Drops a cached row (the webhook receiver calls this when it changes a user).
    pub fn forget(&self, clerk_user_id: &str) {
        self.inner.users.forget(clerk_user_id);
    }

    async fn resolve(&self, parts: &Parts) -> Result<CurrentUser, Missing> {
        let resolved = self.resolve_uncounted(parts).await;
        latchkey_web::metrics::TOKEN_VERIFICATIONS.inc(match &resolved {
            Ok(_) => "verified",
            Err(Missing::SignedOut(why)) => why.code(),
            Err(Missing::Deleted) => "user_deleted",
            Err(Missing::Failed(_)) => "unavailable",
        });
        resolved
    }

    async fn resolve_uncounted(&self, parts: &Parts) -> Result<CurrentUser, Missing> {
        let claims = self
            .inner
            .verifier
            .verify(&parts.headers)
            .await
            .map_err(Missing::SignedOut)?;
        let revoked = self.inner.revocations.refuses(&claims);
        let user = match self.inner.users.get(&claims.sub) {
            Some(user) => user,
            // A revoked session never provisions; its row is looked up (and cached) only to
            // tell a deleted account, whose sessions all end, from a session that ended.
            None if revoked => match self.find(&claims.sub).await.map_err(store_failure)? {
                Some(user) => {
                    self.inner.users.put(&user);
                    user
                }
                None => return Err(Missing::SignedOut(SignedOut::Revoked)),
            },
            None => {
                let user = self.load_or_provision(&claims.sub).await?;
                self.inner.users.put(&user);
                user
            }
        };
        if user.deleted_at.is_some() {
            return Err(Missing::Deleted);
        }
        if revoked {
            return Err(Missing::SignedOut(SignedOut::Revoked));
        }
        Ok(CurrentUser { user, claims })
    }

    /// The app's row for `clerk_user_id`, provisioning it from the issuer if the app has none.
    async fn load_or_provision(&self, clerk_user_id: &str) -> Result<AppUser, Missing> {
        if let Some(user) = self.find(clerk_user_id).await.map_err(store_failure)? {
            return Ok(user);
        }
        let fetched = self
            .inner
            .source
            .get_user(clerk_user_id)
            .await
            .map_err(source_failure)?;
        let Some(source_user) = fetched else {
            // Verified token, but the issuer no longer has the user: signed out.
            return Err(Missing::Deleted);
        };
        let provision = async {
            let mut tx = self.inner.db.begin().await?;
            let outcome =
                users::upsert_from_source(&mut tx, &source_user, latchkey_protocol::time::now_ms())
                    .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(outcome)
        };
        let outcome = provision.await.map_err(store_failure)?;
        tracing::info!(user.id = %clerk_user_id, outcome = ?outcome, "provisioned a user on first request");
        self.find(clerk_user_id)
            .await
            .map_err(store_failure)?
            .ok_or(Missing::Deleted)
    }

    async fn find(&self, clerk_user_id: &str) -> Result<Option<AppUser>, StoreError> {
        let mut tx = self.inner.db.begin_read().await?;
        let user = users::find_by_clerk_id(&mut tx, clerk_user_id).await?;
        tx.commit().await?;
        Ok(user)
    }

    fn rejection(&self, parts: &Parts, missing: Missing) -> AuthRejection {
        let api = parts.uri.path().starts_with("/api/");
        match missing {
            Missing::Failed(error) => AuthRejection::Unavailable(error),
            // Not signed out: nobody can be told either way until the keys come back, and a
            // redirect to sign in could loop with an issuer that sees a valid session.
            Missing::SignedOut(SignedOut::KeysUnavailable) => {
                AuthRejection::Unavailable(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "keys_unavailable",
                    "The sign-in service's keys could not be fetched; try again shortly.",
                ))
            }
            Missing::Deleted if api => AuthRejection::Gone,
            Missing::SignedOut(reason) if api => AuthRejection::Unauthorized(reason),
            Missing::SignedOut(_) | Missing::Deleted => {
                let here = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
                let target =
                    url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>();
                let sign_in = &self.inner.verifier.config.sign_in_url;
                let separator = if sign_in.contains('?') { '&' } else { '?' };
                AuthRejection::SignIn {
                    location: format!("{sign_in}{separator}redirect_url={target}"),
                }
            }
        }
    }
}

fn store_failure(error: StoreError) -> Missing {
    Missing::Failed(error.into())
}

fn source_failure(error: SourceError) -> Missing {
    tracing::warn!(error = %error, "could not fetch a user from the issuer");
    Missing::Failed(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "issuer_unavailable",
        "The sign-in service could not be reached; try again shortly.",
    ))
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        auth.resolve(parts)
            .await
            .map_err(|missing| auth.rejection(parts, missing))
    }
}

impl<S> FromRequestParts<S> for MaybeUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        match auth.resolve(parts).await {
            Ok(current) => Ok(Self(Some(current))),
            Err(Missing::SignedOut(_) | Missing::Deleted) => Ok(Self(None)),
            Err(Missing::Failed(error)) => Err(AuthRejection::Unavailable(error)),
        }
    }
}

impl<S> OptionalFromRequestParts<S> for CurrentUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        <MaybeUser as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(|m| m.0)
    }
}
