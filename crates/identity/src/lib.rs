//! latchkey's identity part: the role Clerk plays.
//!
//! It owns accounts, credentials, sessions, signing keys and the events it emits about them.
//! It never reads or writes the app's tables and does not depend on the app part: what the app
//! learns about identities, it learns through the protocol (events, tokens, the management API).

pub mod account;
pub mod admin;
mod api;
pub mod auth;
pub mod background;
pub mod bapi;
pub mod context;
pub mod events;
pub mod flows;
pub mod keys;
pub mod mail;
mod pages;
pub mod passwords;
pub mod secrets;
pub mod sessions;
mod state;
pub mod throttle;
pub mod users;
pub mod verifications;
pub mod webhooks;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use latchkey_store::{Migration, MigrationSet};

pub use state::{Identity, IdentityConfig, SESSION_TOKEN_SECS};

/// The identity part's schema changes, versions 2000 to 2999.
pub const MIGRATIONS: MigrationSet = &[
    Migration {
        version: 2001,
        name: "identity users, emails, sessions, signing keys, throttles",
        sqlite: include_str!("../migrations/sqlite/2001_identity.sql"),
        postgres: include_str!("../migrations/postgres/2001_identity.sql"),
    },
    Migration {
        version: 2002,
        name: "identity events outbox, webhook endpoints and deliveries, API keys",
        sqlite: include_str!("../migrations/sqlite/2002_outbox.sql"),
        postgres: include_str!("../migrations/postgres/2002_outbox.sql"),
    },
    Migration {
        version: 2003,
        name: "identity email codes, mail outbox, email verification details",
        sqlite: include_str!("../migrations/sqlite/2003_email.sql"),
        postgres: include_str!("../migrations/postgres/2003_email.sql"),
    },
];

/// The identity's routes: pages and the JWKS.
pub fn router(identity: Identity) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/me", get(api::me))
        .route(
            "/v1/client/session-token",
            axum::routing::post(api::session_token),
        )
        .with_state(identity.clone())
        .merge(bapi::router(identity.clone()))
        .merge(pages::router(identity))
}

async fn jwks(State(identity): State<Identity>) -> impl IntoResponse {
    (
        [(http::header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(identity.keys().jwks()),
    )
}
