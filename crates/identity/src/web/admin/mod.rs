//! `/admin`: the operators' console. Server-rendered like the other pages, usable without
//! JavaScript, every form protected against CSRF. Only an account holding the operator role
//! (granted at the command line) sees it: to anyone else, signed in or not, every `/admin`
//! path answers 404, as if it did not exist. Destructive actions (ban, revoking sessions,
//! deleting) also need a sign-in within the last 10 minutes, as sensitive changes on `/user`
//! do. Every action runs as the operator, so the audit log names them. An operator acting as
//! someone else (impersonation) sees no console until they sign out of that session.

mod audit_page;
mod chart;
mod overview;
mod users;
mod webhooks;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};

use crate::audit::{self, Actor};
use crate::flows::{operators, second_factor};
use crate::sessions::SessionRecord;
use crate::state::Identity;
use crate::users::UserRecord;
use crate::web::pages::{message, unavailable};
use crate::web::session_cookies;

/// The console's routes.
pub fn router(identity: Identity) -> Router {
    Router::new()
        .route("/admin", get(overview::page))
        .route("/admin/webhooks", get(webhooks::list))
        .route("/admin/webhooks/{endpoint_id}", get(webhooks::show))
        .route(
            "/admin/webhooks/{endpoint_id}/replay",
            post(webhooks::replay_failed),
        )
        .route(
            "/admin/webhooks/{endpoint_id}/resend",
            post(webhooks::resend),
        )
        .route(
            "/admin/webhooks/{endpoint_id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/admin/webhooks/{endpoint_id}/disable",
            post(webhooks::disable),
        )
        .route(
            "/admin/webhooks/{endpoint_id}/enable",
            post(webhooks::enable),
        )
        .route("/admin/users", get(users::list))
        .route("/admin/users/{user_id}", get(users::show))
        .route("/admin/users/{user_id}/ban", post(users::ban))
        .route("/admin/users/{user_id}/unban", post(users::unban))
        .route(
            "/admin/users/{user_id}/revoke-sessions",
            post(users::revoke_sessions),
        )
        .route(
            "/admin/users/{user_id}/verify-email",
            post(users::verify_email),
        )
        .route("/admin/users/{user_id}/metadata", post(users::metadata))
        .route("/admin/users/{user_id}/delete", post(users::delete))
        .route(
            "/admin/users/{user_id}/impersonate",
            post(users::impersonate),
        )
        .route("/admin/audit", get(audit_page::list))
        .route("/admin/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::from_fn_with_state(
            identity.clone(),
            operators_only,
        ))
        .with_state(identity)
}

/// The operator's session and account, for the console's handlers.
#[derive(Debug, Clone)]
pub(crate) struct Operator {
    pub session: SessionRecord,
    pub user: UserRecord,
}

/// In front of every console path, before any form is read: anyone but an operator gets 404;
/// an operator's request runs as theirs for the audit log.
async fn operators_only(
    State(identity): State<Identity>,
    mut request: Request,
    next: Next,
) -> Response {
    let (session, user) = match require_operator(&identity, request.headers()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let actor = Actor::Operator(user.id.clone());
    request.extensions_mut().insert(Operator { session, user });
    audit::acting_as(actor, next.run(request)).await
}

/// What everyone but an operator gets, on every console path.
async fn not_found() -> Response {
    not_found_page()
}

fn not_found_page() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
        "/",
        None,
    )
}

/// The operator behind the request, or the 404 everyone else gets.
async fn require_operator(
    identity: &Identity,
    headers: &HeaderMap,
) -> Result<(SessionRecord, UserRecord), Response> {
    let (session, user) = match session_cookies::current(identity, headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(not_found_page()),
        Err(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not look up a session");
            return Err(unavailable("/admin"));
        }
    };
    let operator = async {
        let mut tx = identity.db().begin_read().await?;
        let operator = operators::is_operator(&mut tx, &user.id).await?;
        tx.commit().await?;
        Ok::<_, latchkey_store::StoreError>(operator)
    }
    .await;
    match operator {
        // Not while acting as someone else: the console would be theirs to see.
        Ok(true) if session.actor_id.is_none() => Ok((session, user)),
        Ok(true) => Err(not_found_page()),
        Ok(false) => Err(not_found_page()),
        Err(_) => Err(unavailable("/admin")),
    }
}

/// For a destructive action: the answer when the operator's session has not proved a factor
/// within the last 10 minutes.
pub(crate) fn needs_step_up(identity: &Identity, operator: &Operator) -> Option<Response> {
    if second_factor::recently_verified(identity, &operator.session) {
        None
    } else {
        Some(message(
            StatusCode::FORBIDDEN,
            "Confirm it's you first",
            "This action needs a sign-in within the last 10 minutes. Confirm it's you on your account page, then try again.",
            "/user#reverify",
            None,
        ))
    }
}
