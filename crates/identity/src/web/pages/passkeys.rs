//! Passkeys on the pages: on `/sign-in`, signing in with one (`/sign-in/passkey/options` for the
//! script, `/sign-in/passkey` for the answer); on `/user`, registering (`/user/passkeys/options`,
//! `/user/passkeys`), renaming and removing them, each after a step-up. The options are JSON for
//! the script (`/assets/passkeys.js`); answers come back as ordinary form posts. Ceremonies are
//! tied to the browser by the `HttpOnly` cookie `latchkey_webauthn`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::account::render;
use super::factors::{PlainForm, require_recent};
use super::sign::{SignInForm, landing, sign_in_form};
use super::{see_other, unavailable};
use crate::context::Peer;
use crate::flows::passkeys::{self as flow, PasskeyError};
use crate::flows::second_factor;
use crate::passkeys::ceremony::{self, BrowserToken};
use crate::sessions::SessionRecord;
use crate::state::Identity;
use crate::users::UserRecord;
use crate::web::pages;
use crate::web::session_cookies;

const COOKIE_SECS: i64 = ceremony::LIFETIME_MS / 1000;

/// The browser's ceremony token: the one it holds, or a new one.
fn browser_token(headers: &HeaderMap) -> BrowserToken {
    latchkey_web::cookies::get(headers, ceremony::COOKIE)
        .and_then(BrowserToken::from_cookie)
        .unwrap_or_else(BrowserToken::generate)
}

fn browser_cookie(identity: &Identity, token: &BrowserToken) -> String {
    latchkey_web::cookies::build(
        ceremony::COOKIE,
        token.expose(),
        identity.config().secure_cookies(),
        true,
        Some(COOKIE_SECS),
    )
}

fn status_of(error: &PasskeyError) -> StatusCode {
    match error {
        PasskeyError::Malformed | PasskeyError::BadName => StatusCode::UNPROCESSABLE_ENTITY,
        PasskeyError::Refused => StatusCode::UNAUTHORIZED,
        PasskeyError::Ended => StatusCode::GONE,
        PasskeyError::Duplicate | PasskeyError::TooMany => StatusCode::CONFLICT,
        PasskeyError::NotFound => StatusCode::NOT_FOUND,
        PasskeyError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        PasskeyError::Banned => StatusCode::FORBIDDEN,
        PasskeyError::NoRelyingParty => StatusCode::NOT_IMPLEMENTED,
        PasskeyError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        PasskeyError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn retry_after(mut response: Response, error: &PasskeyError) -> Response {
    if let PasskeyError::Throttled { retry_after_secs } = error {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(*retry_after_secs),
        );
    }
    response
}

fn log_store(error: &PasskeyError) {
    if let PasskeyError::Store(error) = error {
        tracing::warn!(error = %latchkey_web::ErrorChain(error), "a passkey request failed on the database");
    }
}

/// Options for the script, with the ceremony cookie; or `{"error": …}`.
fn options_response(
    identity: &Identity,
    token: &BrowserToken,
    result: Result<serde_json::Value, PasskeyError>,
) -> Response {
    let mut response = match result {
        Ok(options) => {
            let mut response = Json(options).into_response();
            latchkey_web::pages::append_cookie(&mut response, &browser_cookie(identity, token));
            response
        }
        Err(error) => {
            log_store(&error);
            let body = Json(serde_json::json!({ "error": error.to_string() }));
            retry_after((status_of(&error), body).into_response(), &error)
        }
    };
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[derive(Default, Deserialize)]
pub(crate) struct SignInOptionsForm {}

impl ProtectedForm for SignInOptionsForm {
    const PAGE: &'static str = "/sign-in";
}

pub(crate) async fn sign_in_options(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<SignInOptionsForm>,
) -> Response {
    let ctx = pages::request_context(&identity, &headers, peer);
    let token = browser_token(&headers);
    let result = flow::begin_sign_in(&identity, &token, &ctx).await;
    options_response(&identity, &token, result)
}

#[derive(Default, Deserialize)]
pub(crate) struct SignInAnswerForm {
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    credential: String,
}

impl ProtectedForm for SignInAnswerForm {
    const PAGE: &'static str = "/sign-in";
}

pub(crate) async fn sign_in(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<SignInAnswerForm>,
) -> Response {
    let ctx = pages::request_context(&identity, &headers, peer);
    let token = browser_token(&headers);
    let previous = session_cookies::client_token(&headers);
    match flow::finish_sign_in(&identity, &token, &form.credential, previous.as_ref(), &ctx).await {
        Ok(signed) => see_other(
            &landing(&identity, &form.redirect_url),
            &session_cookies::sign_in_cookies(&identity, &signed),
        ),
        Err(PasskeyError::Store(_)) => unavailable("/sign-in"),
        Err(error) => {
            let back = SignInForm::returning_to(form.redirect_url);
            let text = error.to_string();
            let page = sign_in_form(
                &identity,
                &headers,
                &back,
                status_of(&error),
                None,
                Some(&text),
            );
            retry_after(page, &error)
        }
    }
}

pub(crate) async fn register_options(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<PlainForm>,
) -> Response {
    let token = browser_token(&headers);
    let user = match session_cookies::current(&identity, &headers).await {
        Ok(Some((session, user))) if second_factor::recently_verified(&identity, &session) => user,
        Ok(Some(_)) => {
            let text = "For your security, confirm it's you first (on this page): adding a passkey needs a sign-in within the last 10 minutes.";
            let body = Json(serde_json::json!({ "error": text }));
            return (StatusCode::FORBIDDEN, body).into_response();
        }
        Ok(None) => {
            let body = Json(serde_json::json!({ "error": "Sign in again." }));
            return (StatusCode::UNAUTHORIZED, body).into_response();
        }
        Err(error) => return options_response(&identity, &token, Err(error.into())),
    };
    let result = flow::begin_registration(&identity, &user, &token).await;
    options_response(&identity, &token, result)
}

async fn failed(
    identity: &Identity,
    headers: &HeaderMap,
    session: &SessionRecord,
    user: &UserRecord,
    error: &PasskeyError,
) -> Response {
    if matches!(error, PasskeyError::Store(_)) {
        log_store(error);
        return unavailable("/user");
    }
    let text = error.to_string();
    render(
        identity,
        headers,
        session,
        user,
        status_of(error),
        None,
        Some(&text),
    )
    .await
}

#[derive(Default, Deserialize)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    credential: String,
}

impl ProtectedForm for RegisterForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn register(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Response {
    let (session, user) = match require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    let token = browser_token(&headers);
    match flow::finish_registration(
        &identity,
        &user.id,
        &token,
        &form.name,
        &form.credential,
        &ctx,
    )
    .await
    {
        Ok(_) => see_other("/user?notice=passkey_added", &[]),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct ChangeForm {
    #[serde(default)]
    passkey_id: String,
    #[serde(default)]
    name: String,
}

impl ProtectedForm for ChangeForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn rename(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ChangeForm>,
) -> Response {
    let (session, user) = match require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    match flow::rename(&identity, &user.id, &form.passkey_id, &form.name, &ctx).await {
        Ok(()) => see_other("/user?notice=passkey_renamed", &[]),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}

pub(crate) async fn remove(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ChangeForm>,
) -> Response {
    let (session, user) = match require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    match flow::remove(&identity, &user.id, &form.passkey_id, &ctx).await {
        Ok(()) => see_other("/user?notice=passkey_removed", &[]),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}
