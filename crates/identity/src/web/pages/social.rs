//! "Continue with …": `POST /sign-in/oauth` sends the browser to its provider, and
//! `GET /v1/oauth_callback` (the redirect URI to register with every provider) takes it back.
//! On `/user`, `POST /user/connections` connects another provider to the signed-in account and
//! `POST /user/connections/remove` disconnects one; both need a recent sign-in (step-up).

use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::sign::{landing, safe_redirect};
use super::{message, see_other, unavailable};
use crate::context::Peer;
use crate::flows::social::{self, Callback, Finished, SocialError};
use crate::oauth::states;
use crate::state::Identity;
use crate::web::pages;
use crate::web::session_cookies;

/// A provider's button, as the sign-in and sign-up pages show it.
pub(crate) struct Button {
    pub key: String,
    pub name: String,
}

/// The configured providers' buttons.
pub(crate) fn buttons(identity: &Identity) -> Vec<Button> {
    identity
        .config()
        .oauth
        .iter()
        .map(|p| Button {
            key: p.key.clone(),
            name: p.name.clone(),
        })
        .collect()
}

/// Lets a page with buttons post to a route that redirects to the providers.
pub(crate) fn allow_providers(identity: &Identity, mut response: Response) -> Response {
    let origins: Vec<String> = identity
        .config()
        .oauth
        .iter()
        .map(|p| identity.providers().authorization_origin(p))
        .collect();
    if !origins.is_empty() {
        latchkey_web::pages::allow_form_targets(&mut response, &origins);
    }
    response
}

#[derive(Default, Deserialize)]
pub(crate) struct StartForm {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    redirect_url: String,
}

impl ProtectedForm for StartForm {
    const PAGE: &'static str = "/sign-in";
}

fn cookie(identity: &Identity, value: Option<&str>) -> String {
    let secure = identity.config().secure_cookies();
    match value {
        Some(value) => latchkey_web::cookies::build(
            states::COOKIE,
            value,
            secure,
            true,
            Some(states::LIFETIME_MS / 1000),
        ),
        None => latchkey_web::cookies::clear(states::COOKIE, secure, true),
    }
}

pub(crate) async fn start(
    State(identity): State<Identity>,
    CsrfForm(form): CsrfForm<StartForm>,
) -> Response {
    let redirect = safe_redirect(&identity, &form.redirect_url);
    to_provider(
        &identity,
        social::start(&identity, &form.provider, &redirect, None).await,
    )
}

/// Off to the provider with the round trip's cookie, or the page saying why not.
fn to_provider(identity: &Identity, started: Result<social::Start, SocialError>) -> Response {
    match started {
        Ok(start) => allow_providers(
            identity,
            see_other(
                &start.authorize_url,
                &[cookie(identity, Some(start.browser.expose()))],
            ),
        ),
        Err(error) => refusal(&error),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CallbackParams {
    #[serde(default)]
    state: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    iss: String,
}

pub(crate) async fn callback(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let ctx = pages::request_context(&identity, &headers, peer);
    let browser = latchkey_web::cookies::get(&headers, states::COOKIE)
        .and_then(states::BrowserToken::from_cookie);
    let previous = session_cookies::client_token(&headers);
    let current = match session_cookies::current(&identity, &headers).await {
        Ok(current) => current.map(|(_, user)| user.id),
        Err(error) => return refusal(&SocialError::Store(error)),
    };
    let signed_in = previous.as_ref().zip(current.as_deref());
    let callback = Callback {
        state: params.state,
        code: params.code,
        error: params.error,
        iss: params.iss,
    };
    let result = social::finish(&identity, &callback, browser.as_ref(), signed_in, &ctx).await;
    let clear = cookie(&identity, None);
    match result {
        Ok(Finished::SignedIn(signed, redirect)) => {
            let mut cookies = session_cookies::sign_in_cookies(&identity, &signed);
            cookies.push(clear);
            see_other(&landing(&identity, &redirect), &cookies)
        }
        Ok(Finished::SecondFactor(token)) => {
            pages::factors::after_first_factor(&identity, &token, vec![clear])
        }
        Ok(Finished::Connected) => see_other("/user?notice=connected", &[clear]),
        Err(error) => {
            let mut response = refusal(&error);
            latchkey_web::pages::append_cookie(&mut response, &clear);
            response
        }
    }
}

/// The page for a social sign-in that stopped.
fn refusal(error: &SocialError) -> Response {
    let (status, retry_after) = match error {
        SocialError::Store(store) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(store), "social sign-in failed on the database");
            return unavailable("/sign-in");
        }
        SocialError::UnknownProvider => (StatusCode::NOT_FOUND, None),
        SocialError::ProviderDown => (StatusCode::BAD_GATEWAY, Some(5)),
        SocialError::Banned => (StatusCode::FORBIDDEN, None),
        SocialError::Throttled { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, Some(*retry_after_secs))
        }
        SocialError::EmailInUse { .. }
        | SocialError::LinkedElsewhere { .. }
        | SocialError::LastWayIn => (StatusCode::CONFLICT, None),
        SocialError::NotFound => (StatusCode::NOT_FOUND, None),
        SocialError::Cancelled
        | SocialError::UnknownState
        | SocialError::OtherBrowser
        | SocialError::Replayed
        | SocialError::Expired
        | SocialError::CodeRefused
        | SocialError::NotSignedIn
        | SocialError::Untrusted => (StatusCode::BAD_REQUEST, None),
    };
    message(
        status,
        "Sign-in did not complete",
        &error.to_string(),
        "/sign-in",
        retry_after,
    )
}

/// A connected provider account, as `/user` lists it.
pub(crate) struct Connection {
    pub id: String,
    pub name: String,
    pub email: String,
}

/// The user's connected accounts, and a button for each configured provider not among them.
pub(crate) fn connections(
    identity: &Identity,
    user: &crate::users::UserRecord,
) -> (Vec<Connection>, Vec<Button>) {
    let providers = &identity.config().oauth;
    let connected = user
        .external_accounts
        .iter()
        .map(|a| Connection {
            id: a.id.clone(),
            name: providers
                .iter()
                .find(|p| p.clerk_provider() == a.profile.provider)
                .map_or_else(|| a.profile.provider.clone(), |p| p.name.clone()),
            email: a.profile.email_address.clone().unwrap_or_default(),
        })
        .collect();
    let connectable = providers
        .iter()
        .filter(|p| {
            !user
                .external_accounts
                .iter()
                .any(|a| a.profile.provider == p.clerk_provider())
        })
        .map(|p| Button {
            key: p.key.clone(),
            name: p.name.clone(),
        })
        .collect();
    (connected, connectable)
}

#[derive(Default, Deserialize)]
pub(crate) struct ConnectForm {
    #[serde(default)]
    provider: String,
}

impl ProtectedForm for ConnectForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn connect(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ConnectForm>,
) -> Response {
    let (_, user) = match super::factors::require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    to_provider(
        &identity,
        social::start(&identity, &form.provider, "", Some(&user.id)).await,
    )
}

#[derive(Default, Deserialize)]
pub(crate) struct DisconnectForm {
    #[serde(default)]
    account_id: String,
}

impl ProtectedForm for DisconnectForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn disconnect(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<DisconnectForm>,
) -> Response {
    let (session, user) = match super::factors::require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    match social::disconnect(&identity, &user.id, &form.account_id, &ctx).await {
        Ok(()) => see_other("/user?notice=disconnected", &[]),
        Err(SocialError::Store(error)) => refusal(&SocialError::Store(error)),
        Err(error) => {
            let status = match error {
                SocialError::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            super::account::render(
                &identity,
                &headers,
                &session,
                &user,
                status,
                None,
                Some(&error.to_string()),
            )
            .await
        }
    }
}
