//! The management API: a Clerk Backend API compatible subset, authenticated with secret keys.

use axum::Router;

use crate::state::Identity;

/// The management API's routes (all under `/v1`).
pub fn router(identity: Identity) -> Router {
    Router::new().with_state(identity)
}
