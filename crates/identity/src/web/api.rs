//! JSON routes for a signed-in user's own client: who am I, and a fresh session token.
//! `Authorization: Bearer <session token>` is accepted, or the browser's cookies.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use latchkey_protocol::jwt::{VerifyOptions, verify_session_token};
use latchkey_web::ApiError;
use serde_json::json;

use crate::flows::admin;
use crate::sessions::token;
use crate::state::Identity;
use crate::users::{self, InSession};
use crate::web::session_cookies;

/// The bearer token of a request: Clerk's rule, scheme `Bearer` exactly, else the whole value.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    match value.split_once(' ') {
        Some(("Bearer", token)) => Some(token.trim()),
        Some(_) => None,
        None => Some(value),
    }
}

/// Who a request is authenticated as.
enum Caller {
    /// A verified bearer token: its user, and its session, which must still be active.
    Token { user_id: String, session_id: String },
    /// The browser session behind `__client`, already found active.
    Browser { user_id: String },
}

/// Who a request is authenticated as: a verified bearer token when one is sent (used
/// exclusively, as Clerk's SDK does), else the browser session.
async fn caller(identity: &Identity, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if let Some(token) = bearer(headers) {
        let options =
            VerifyOptions::new(identity.now_ms()).with_issuer(identity.config().token_issuer());
        let claims = verify_session_token(token, &identity.keys().verifying(), &options)
            .map_err(|error| ApiError::unauthorized(error.code(), error.to_string()))?;
        // Every token this identity mints names its session; one that does not cannot be
        // checked against it.
        let session_id = claims.sid.ok_or_else(ended)?;
        return Ok(Caller::Token {
            user_id: claims.sub,
            session_id,
        });
    }
    match session_cookies::current(identity, headers).await? {
        Some((_, user)) => Ok(Caller::Browser { user_id: user.id }),
        None => Err(ApiError::unauthorized(
            "signed_out",
            "Sign in, or send a session token as a bearer token.",
        )),
    }
}

fn ended() -> ApiError {
    ApiError::unauthorized(
        "session_revoked",
        "The session of this token has ended; sign in again.",
    )
}

/// `GET /v1/me`: the authenticated user, as Clerk's User JSON. A bearer token's session is
/// looked up in the same statement as the user, so a token of a session that ended (signed out,
/// revoked, expired, removed) is refused at once, not when the token expires.
pub(crate) async fn me(
    State(identity): State<Identity>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&identity, &headers).await?;
    let mut tx = identity.db().begin_read().await?;
    let user = match caller {
        Caller::Token {
            user_id,
            session_id,
        } => {
            match users::get_in_session(&mut tx, &user_id, &session_id, identity.now_ms()).await? {
                InSession::Active(user) => Some(*user),
                InSession::NoUser => None,
                InSession::Ended => {
                    tx.commit().await?;
                    return Err(ended());
                }
            }
        }
        Caller::Browser { user_id } => users::get(&mut tx, &user_id).await?,
    };
    tx.commit().await?;
    let Some(user) = user.filter(|u| u.banned_at.is_none()) else {
        return Err(ApiError::unauthorized(
            "signed_out",
            "This account no longer exists or is banned.",
        ));
    };
    Ok(Json(admin::user_json(&identity, &user).await?).into_response())
}

/// `POST /v1/client/session-token`: a fresh session token for the browser's live session (what
/// a script calls before its 60-second token runs out).
pub(crate) async fn session_token(
    State(identity): State<Identity>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match session_cookies::current(&identity, &headers).await? {
        Some((session, _)) => {
            let jwt = token::mint_session_token(&identity, &session).await;
            Ok((StatusCode::OK, Json(json!({"object": "token", "jwt": jwt}))).into_response())
        }
        None => Err(ApiError::unauthorized(
            "signed_out",
            "There is no active session for this browser.",
        )),
    }
}
