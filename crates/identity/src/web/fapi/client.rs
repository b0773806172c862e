//! `/v1/client`: the browser's client (get, create, touch, destroy), and what every handler
//! answers with: the `{response, client}` envelope and the cookies a change of session sets.
//!
//! Cookies: `__client` is the session handle the hosted pages use too (`HttpOnly`); in
//! production Clerk's Frontend API, not its script, sets `__client_uat`, plain and with the
//! publishable key's suffix, so the app's middleware knows the browser signed in or out.
//! `__session` is left to Clerk's script.

use axum::Json;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use latchkey_web::cookies;
use serde_json::{Value, json};
use sha1::Digest as _;

use super::attempt::ClientState;
use super::json::{self, Current};
use super::{FapiError, Input};
use crate::sessions::{SessionRecord, SignedIn, lifecycle};
use crate::state::Identity;
use crate::users;
use crate::web::session_cookies::{self, CLIENT_COOKIE, CLIENT_UAT_COOKIE};
use axum::extract::State;

/// `_<first 8 characters of base64url(SHA-1(publishable key))>`, Clerk's cookie suffix.
pub(crate) fn cookie_suffix(publishable_key: &str) -> String {
    let digest = sha1::Sha1::digest(publishable_key.as_bytes());
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(digest);
    encoded.chars().take(8).collect()
}

/// `__client_uat` (and its suffixed twin) set to `seconds`.
pub(crate) fn client_uat_cookies(identity: &Identity, seconds: i64) -> Vec<String> {
    let secure = identity.config().secure_cookies();
    let year = Some(365 * 24 * 60 * 60);
    let mut names = vec![CLIENT_UAT_COOKIE.to_owned()];
    if let Some(key) = identity.config().publishable_key() {
        names.push(format!("{CLIENT_UAT_COOKIE}_{}", cookie_suffix(&key)));
    }
    names
        .iter()
        .map(|name| cookies::build(name, &seconds.to_string(), secure, false, year))
        .collect()
}

/// The cookies of a session just opened.
pub(crate) fn signed_in_cookies(identity: &Identity, signed: &SignedIn) -> Vec<String> {
    let secure = identity.config().secure_cookies();
    let lifetime = Some(identity.config().session_lifetime_ms / 1000);
    let mut set = vec![cookies::build(
        CLIENT_COOKIE,
        signed.client_token.expose(),
        secure,
        true,
        lifetime,
    )];
    set.extend(client_uat_cookies(
        identity,
        signed.session.created_at.div_euclid(1000),
    ));
    set
}

/// The cookies of a browser just signed out.
pub(crate) fn signed_out_cookies(identity: &Identity) -> Vec<String> {
    let mut set = vec![cookies::clear(
        CLIENT_COOKIE,
        identity.config().secure_cookies(),
        true,
    )];
    set.extend(client_uat_cookies(identity, 0));
    set
}

/// The signed-in session behind the request's `__client`, if any.
pub(crate) async fn current(
    identity: &Identity,
    input: &Input,
) -> Result<Option<Current>, FapiError> {
    Ok(session_cookies::current(identity, &input.headers).await?)
}

/// The signed-in session, or the 401 that signs clerk-js out.
pub(crate) async fn require(identity: &Identity, input: &Input) -> Result<Current, FapiError> {
    current(identity, input)
        .await?
        .ok_or_else(FapiError::signed_out)
}

/// The session just opened, with its account.
pub(crate) async fn opened(identity: &Identity, signed: &SignedIn) -> Result<Current, FapiError> {
    let mut tx = identity.db().begin_read().await?;
    let user = users::get(&mut tx, &signed.user_id).await?;
    tx.commit().await?;
    let user = user.ok_or_else(FapiError::signed_out)?;
    Ok((signed.session.clone(), user))
}

/// `{response, client}`: `response` (the client itself when `None`), the whole client, the
/// client cookie and `cookies`.
pub(crate) async fn reply(
    identity: &Identity,
    input: &Input,
    state: &ClientState,
    current: Option<&Current>,
    response: Option<Value>,
    set_cookies: Vec<String>,
) -> Result<Response, FapiError> {
    let azp = input.origin(identity);
    let client = json::client(identity, state, current, &azp).await?;
    let body = json!({
        "response": response.unwrap_or_else(|| client.clone()),
        "client": client,
    });
    let mut answer = Json(body).into_response();
    session_cookies::append_cookie(&mut answer, &state.cookie(identity));
    for cookie in set_cookies {
        session_cookies::append_cookie(&mut answer, &cookie);
    }
    Ok(answer)
}

/// `{response, client}` after a step of a sign-in or sign-up: with the session `signed` just
/// opened and its cookies, or else with the browser's session as it was.
pub(crate) async fn reply_after_step(
    identity: &Identity,
    input: &Input,
    state: &ClientState,
    response: Value,
    signed: Option<&SignedIn>,
) -> Result<Response, FapiError> {
    match signed {
        Some(signed) => {
            let current = opened(identity, signed).await?;
            reply(
                identity,
                input,
                state,
                Some(&current),
                Some(response),
                signed_in_cookies(identity, signed),
            )
            .await
        }
        None => {
            let current = current(identity, input).await?;
            reply(
                identity,
                input,
                state,
                current.as_ref(),
                Some(response),
                Vec::new(),
            )
            .await
        }
    }
}

/// `{response, client}` for a browser just signed out (`response` the client itself when
/// `None`), with the cookies that tell the app so.
pub(crate) async fn reply_signed_out(
    identity: &Identity,
    input: &Input,
    response: Option<Value>,
) -> Result<Response, FapiError> {
    let state = ClientState::read(identity, &input.headers);
    reply(
        identity,
        input,
        &state,
        None,
        response,
        signed_out_cookies(identity),
    )
    .await
}

/// Ends the browser's session, if any; returns it as it was.
pub(crate) async fn sign_out(
    identity: &Identity,
    input: &Input,
) -> Result<Option<SessionRecord>, FapiError> {
    let Some(token) = session_cookies::client_token(&input.headers) else {
        return Ok(None);
    };
    let found = current(identity, input).await?;
    lifecycle::sign_out(identity, &token).await?;
    Ok(found.map(|(session, _)| session))
}

/// `GET /v1/client`.
pub(crate) async fn get(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let current = current(&identity, &input).await?;
    reply(
        &identity,
        &input,
        &state,
        current.as_ref(),
        None,
        Vec::new(),
    )
    .await
}

/// `POST /v1/client`: the browser's client (made when it had none).
pub(crate) async fn create(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    get(State(identity), input).await
}

/// `PATCH /v1/client` (touch).
pub(crate) async fn touch(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    get(State(identity), input).await
}

/// `DELETE /v1/client`: signs out and forgets the in-progress sign-in and sign-up.
pub(crate) async fn destroy(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    sign_out(&identity, &input).await?;
    let state = ClientState::new(identity.now_ms());
    reply(
        &identity,
        &input,
        &state,
        None,
        None,
        signed_out_cookies(&identity),
    )
    .await
}
