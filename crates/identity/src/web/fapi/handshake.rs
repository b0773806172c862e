//! `GET /v1/client/handshake`: where `clerkMiddleware` (`@clerk/backend`'s `handshake.ts`)
//! sends a page load whose `__session` and `__client_uat` disagree. latchkey reads its
//! `__client`, and answers 307 back to `redirect_url` with `__clerk_handshake`: an RS256 JWT
//! (the session keys, verified by the backend through the JWKS) whose `handshake` claim lists
//! the `Set-Cookie` values the app's middleware then sets: a fresh `__session` and
//! `__client_uat` when signed in, `__client_uat=0` and no `__session` when not, each plain and
//! with the publishable key's suffix.
//!
//! Only a `redirect_url` on one of the app's allowed origins (or latchkey's own) is followed;
//! any other gets Clerk's error envelope and no redirect.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use latchkey_web::cookies;
use serde_json::json;

use super::client::{cookie_suffix, current};
use super::{FapiError, Input};
use crate::sessions::token;
use crate::state::Identity;
use crate::web::session_cookies::{CLIENT_UAT_COOKIE, SESSION_COOKIE};

/// The `Set-Cookie` directives of a handshake answer.
fn directives(identity: &Identity, session_token: Option<&str>, client_uat: i64) -> Vec<String> {
    let secure = identity.config().secure_cookies();
    let year = Some(365 * 24 * 60 * 60);
    let mut suffixes = vec![String::new()];
    if let Some(key) = identity.config().publishable_key() {
        suffixes.push(format!("_{}", cookie_suffix(&key)));
    }
    let mut set = Vec::new();
    for suffix in &suffixes {
        let session = format!("{SESSION_COOKIE}{suffix}");
        set.push(match session_token {
            Some(jwt) => cookies::build(&session, jwt, secure, false, None),
            None => cookies::clear(&session, secure, false),
        });
        set.push(cookies::build(
            &format!("{CLIENT_UAT_COOKIE}{suffix}"),
            &client_uat.to_string(),
            secure,
            false,
            year,
        ));
    }
    set
}

/// `GET /v1/client/handshake?redirect_url=…`.
pub(crate) async fn handshake(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let raw = input
        .query
        .get("redirect_url")
        .ok_or_else(|| FapiError::param_missing("redirect_url"))?;
    let mut target = url::Url::parse(raw).map_err(|_| FapiError::redirect_not_allowed())?;
    let origin = target.origin().ascii_serialization();
    if !matches!(target.scheme(), "http" | "https")
        || !identity.config().fapi_origin_allowed(&origin)
    {
        tracing::info!("handshake refused: redirect off the allowed origins");
        return Err(FapiError::redirect_not_allowed());
    }
    let set = match current(&identity, &input).await? {
        Some((session, _)) => {
            let jwt = token::mint_session_token_for(&identity, &session, &origin).await;
            directives(&identity, Some(&jwt), session.created_at.div_euclid(1000))
        }
        None => directives(&identity, None, 0),
    };
    let payload = json!({ "handshake": set });
    let header = json!({ "alg": "RS256", "kid": identity.keys().current().kid(), "typ": "JWT" });
    let key = identity.keys().current();
    let jwt = match tokio::task::spawn_blocking(move || key.sign_json(&header, &payload)).await {
        Ok(jwt) => jwt,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    target
        .query_pairs_mut()
        .append_pair("__clerk_handshake", &jwt);
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    let location =
        HeaderValue::from_str(target.as_str()).map_err(|_| FapiError::redirect_not_allowed())?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}
