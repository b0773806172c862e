//! `/v1/client/sessions`: the browser's session (one per browser: single-session mode), its
//! tokens, touching it, and ending it through `sessions::lifecycle`, events included.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::attempt::ClientState;
use super::client::{self, reply};
use super::{FapiError, Input, json};
use crate::sessions::token;
use crate::state::Identity;

/// The browser's session if it is `id`; anything else is "signed out" for clerk-js.
async fn this_session(
    identity: &Identity,
    input: &Input,
    id: &str,
) -> Result<json::Current, FapiError> {
    let current = client::require(identity, input).await?;
    if current.0.id != id {
        return Err(FapiError::signed_out());
    }
    Ok(current)
}

/// `GET /v1/client/sessions/{id}`.
pub(crate) async fn get(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = this_session(&identity, &input, &id).await?;
    let state = ClientState::read(&identity, &input.headers);
    let session = json::session(&identity, &current, &input.origin(&identity)).await?;
    reply(
        &identity,
        &input,
        &state,
        Some(&current),
        Some(session),
        Vec::new(),
    )
    .await
}

/// `POST /v1/client/sessions/{id}/touch`: what `setActive` calls; the session's activity was
/// recorded when it was found.
pub(crate) async fn touch(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    get(State(identity), Path(id), input).await
}

/// `POST /v1/client/sessions/{id}/tokens`: a fresh session token, bare `{object, jwt}`. An
/// ended session answers 401, which signs clerk-js out.
pub(crate) async fn tokens(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let (session, _) = this_session(&identity, &input, &id).await?;
    let jwt = token::mint_session_token_for(&identity, &session, &input.origin(&identity)).await;
    Ok(Json(json!({"object": "token", "jwt": jwt})).into_response())
}

/// `POST /v1/client/sessions/{id}/tokens/{template}`: JWT templates are not offered.
pub(crate) async fn template_token(
    State(identity): State<Identity>,
    Path((id, _template)): Path<(String, String)>,
    input: Input,
) -> Result<Response, FapiError> {
    this_session(&identity, &input, &id).await?;
    Err(FapiError::not_found())
}

/// `POST /v1/client/sessions/{id}/end` and `…/remove`: signs the browser out of it.
pub(crate) async fn end(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let (session, user) = this_session(&identity, &input, &id).await?;
    let azp = input.origin(&identity);
    let mut rendered = json::session(&identity, &(session, user), &azp).await?;
    client::sign_out(&identity, &input).await?;
    rendered["status"] = json!("ended");
    client::reply_signed_out(&identity, &input, Some(rendered)).await
}

/// `DELETE /v1/client/sessions`: signs the browser out.
pub(crate) async fn end_all(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    client::sign_out(&identity, &input).await?;
    client::reply_signed_out(&identity, &input, None).await
}
