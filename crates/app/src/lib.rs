//! latchkey's app part: the role Next.js + Prisma play.
//!
//! It owns the app's own tables (`users` and what hangs off it) and keeps them in step with an
//! identity provider, latchkey's own or real Clerk, which it only knows through the protocol.
//! It does not depend on the identity part.

pub mod users;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use latchkey_protocol::webhook::{SigningSecret, Verifier};
use latchkey_store::{Db, Migration, MigrationSet};

/// The app part's schema changes, versions 1000 to 1999.
pub const MIGRATIONS: MigrationSet = &[Migration {
    version: 1001,
    name: "users and processed webhook events",
    sqlite: include_str!("../migrations/sqlite/1001_users.sql"),
    postgres: include_str!("../migrations/postgres/1001_users.sql"),
}];

/// What the app part needs to run.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Secrets that may sign incoming Clerk webhooks (several during a rotation). Empty means
    /// the receiver is not configured and answers 503.
    pub clerk_webhook_secrets: Vec<SigningSecret>,
}

/// Shared state of the app's routes.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub(crate) verifier: Option<Arc<Verifier>>,
}

impl AppState {
    #[must_use]
    pub fn new(db: Db, config: &AppConfig) -> Self {
        let verifier = (!config.clerk_webhook_secrets.is_empty())
            .then(|| Arc::new(Verifier::new(config.clerk_webhook_secrets.clone())));
        Self { db, verifier }
    }
}

/// The app's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/webhooks/clerk",
            axum::routing::post(webhooks::receive),
        )
        .with_state(state)
}
