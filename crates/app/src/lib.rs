//! latchkey's app part: the role Next.js + Prisma play.
//!
//! It owns the app's own tables (`users` and what hangs off it) and keeps them in step with an
//! identity provider, latchkey's own or real Clerk, which it only knows through the protocol.
//! It does not depend on the identity part.

pub mod data;
mod pages;
pub mod session;
pub mod sync;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use latchkey_protocol::webhook::{SigningSecret, Verifier};
use latchkey_store::{Db, Migration, MigrationSet};
use latchkey_web::csrf::Csrf;
use session::Auth;

/// The app part's schema changes, versions 1000 to 1999.
pub const MIGRATIONS: MigrationSet = &[
    Migration::shared(
        1001,
        "users and processed webhook events",
        include_str!("../migrations/1001_users.sql"),
    ),
    Migration::shared(
        1002,
        "app preferences and notes",
        include_str!("../migrations/1002_app_data.sql"),
    ),
    Migration::shared(
        1003,
        "whether the user's primary email is verified",
        include_str!("../migrations/1003_email_verified.sql"),
    ),
    Migration::shared(
        1004,
        "revoked sessions and banned users, until their tokens expire",
        include_str!("../migrations/1004_revocations.sql"),
    ),
];

/// What the app part needs to run.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Secrets that may sign incoming Clerk webhooks (several during a rotation). Empty means
    /// the receiver is not configured and answers 503.
    pub clerk_webhook_secrets: Vec<SigningSecret>,
    /// Session verification against the issuer (latchkey's identity or Clerk).
    pub auth: Auth,
    /// CSRF tokens for the app's forms (the same key as the identity's pages, so either part's
    /// token serves the other's forms).
    pub csrf: Csrf,
    /// Shown in the header.
    pub app_name: String,
    /// Shadow mode's second copy of the accounts (see [`webhooks::shadow`]), if on.
    pub shadow: Option<Arc<dyn webhooks::shadow::Shadow>>,
}

/// Shared state of the app's routes.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub(crate) verifier: Option<Arc<Verifier>>,
    pub(crate) auth: Auth,
    pub(crate) csrf: Csrf,
    pub(crate) app_name: Arc<str>,
    pub(crate) shadow: Option<Arc<dyn webhooks::shadow::Shadow>>,
    /// The receiver's batching path (see [`webhooks::group`]).
    pub(crate) group: webhooks::group::GroupCommit,
}

impl AppState {
    /// Must be called inside a Tokio runtime: it starts the receiver's batching workers.
    #[must_use]
    pub fn new(db: Db, config: &AppConfig) -> Self {
        let verifier = (!config.clerk_webhook_secrets.is_empty())
            .then(|| Arc::new(Verifier::new(config.clerk_webhook_secrets.clone())));
        let group = webhooks::group::GroupCommit::start(db.clone(), config.auth.clone());
        Self {
            db,
            group,
            verifier,
            auth: config.auth.clone(),
            csrf: config.csrf.clone(),
            app_name: Arc::from(config.app_name.as_str()),
            shadow: config.shadow.clone(),
        }
    }
}

/// Lets form handlers take [`latchkey_web::csrf::CsrfForm`].
impl FromRef<AppState> for Csrf {
    fn from_ref(state: &AppState) -> Self {
        state.csrf.clone()
    }
}

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The app's routes: the webhook receiver, the pages and `/api/me`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/webhooks/clerk",
            axum::routing::post(webhooks::receive),
        )
        .merge(pages::router())
        .with_state(state)
}

#[cfg(test)]
mod migration_tests {
    /// Databases record these when they apply the migrations; a change here means an existing
    /// database would refuse to start.
    #[test]
    fn applied_checksums_never_change() {
        latchkey_store::assert_pinned_checksums(
            super::MIGRATIONS,
            &[
                (
                    1001,
                    "ed8b1522260fb263f91dcf7a0127e527067393bb0214049f057cf1158bb730d9",
                ),
                (
                    1002,
                    "d41ff7ece2de27aad85606d38ba04608afb47f158b0ca226b59cbcaea054b4bc",
                ),
                (
                    1003,
                    "784f362b391cc458a3b8c3cf54b130d81be35f78f1d6271187c1b3b07b6daa1e",
                ),
                (
                    1004,
                    "c5e81cea9d8cc02b06e29cb2c86d50537d38d1293ff9aea247309c94f868023f",
                ),
            ],
        );
    }
}
