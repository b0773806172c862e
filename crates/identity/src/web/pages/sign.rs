//! `/sign-in`, `/sign-up` and `/sign-out`.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::{html, message, redirect_query, see_other, unavailable};
use crate::context::Peer;
use crate::flows::sign_in;
use crate::flows::sign_in::{SignInError, SignInOutcome};
use crate::flows::sign_up;
use crate::flows::sign_up::{SignUp, SignUpError};
use crate::passwords::Password;
use crate::sessions::lifecycle;
use crate::state::Identity;
use crate::web::pages;
use crate::web::pages::verify;
use crate::web::session_cookies;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RedirectParams {
    #[serde(default)]
    redirect_url: String,
}

#[derive(Default, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    email_address: String,
    #[serde(default)]
    password: String,
}

impl SignInForm {
    /// An empty form that still returns to `redirect_url`.
    pub(crate) fn returning_to(redirect_url: String) -> Self {
        Self {
            redirect_url,
            ..Self::default()
        }
    }
}

impl ProtectedForm for SignInForm {
    const PAGE: &'static str = "/sign-in";
}

#[derive(Default, Deserialize)]
pub(crate) struct SignUpForm {
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    email_address: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

impl ProtectedForm for SignUpForm {
    const PAGE: &'static str = "/sign-up";
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    redirect_url: &'a str,
    redirect_query: &'a str,
    providers: &'a [super::social::Button],
    email_address: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    redirect_url: &'a str,
    redirect_query: &'a str,
    providers: &'a [super::social::Button],
    email_address: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    error: Option<&'a str>,
}

/// Where to send the browser after signing in: `redirect_url` if it stays on this site.
pub(crate) fn landing(identity: &Identity, redirect_url: &str) -> String {
    latchkey_web::redirect::same_origin_path(redirect_url, &identity.config().public_url)
        .unwrap_or_else(|| identity.config().after_sign_in_path.clone())
}

/// `redirect_url` if safe, else empty: what forms carry along.
pub(crate) fn safe_redirect(identity: &Identity, redirect_url: &str) -> String {
    latchkey_web::redirect::same_origin_path(redirect_url, &identity.config().public_url)
        .unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignInParams {
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    notice: String,
}

pub(crate) async fn sign_in_page(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Query(params): Query<SignInParams>,
) -> Response {
    if let Ok(Some(_)) = session_cookies::current(&identity, &headers).await {
        return see_other(&landing(&identity, &params.redirect_url), &[]);
    }
    let notice = match params.notice.as_str() {
        "signed_out" => Some("You are signed out."),
        "deleted" => Some("Your account was deleted."),
        "password_changed" => Some("Your password was changed. Sign in again."),
        "password_reset" => Some(
            "Your password was reset and every session was signed out. Sign in with the new password.",
        ),
        _ => None,
    };
    let form = SignInForm::returning_to(params.redirect_url);
    sign_in_form(&identity, &headers, &form, StatusCode::OK, notice, None)
}

/// The sign-in page (with passkeys: the only page besides `/user` allowed its script),
/// keeping what `form` carried.
pub(crate) fn sign_in_form(
    identity: &Identity,
    headers: &HeaderMap,
    form: &SignInForm,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let issued = identity.csrf().issue(headers);
    let redirect = safe_redirect(identity, &form.redirect_url);
    let page = SignInPage {
        title: "Sign in",
        csrf_token: &issued.token,
        redirect_url: &redirect,
        redirect_query: &redirect_query(&redirect),
        providers: &super::social::buttons(identity),
        email_address: form.email_address.trim(),
        notice,
        error,
    };
    super::social::allow_providers(
        identity,
        latchkey_web::pages::allow_own_scripts(html(
            status,
            page.render(),
            issued.set_cookie.as_slice(),
        )),
    )
}

pub(crate) async fn sign_in(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(mut form): CsrfForm<SignInForm>,
) -> Response {
    let ctx = pages::request_context(&identity, &headers, peer);
    let previous = session_cookies::client_token(&headers);
    let redirect = safe_redirect(&identity, &form.redirect_url);
    let result = sign_in::sign_in(
        &identity,
        &form.email_address,
        Password::new(std::mem::take(&mut form.password)),
        previous.as_ref(),
        &redirect,
        &ctx,
    )
    .await;
    match result {
        Ok(SignInOutcome::SignedIn(signed)) => see_other(
            &landing(&identity, &form.redirect_url),
            &session_cookies::sign_in_cookies(&identity, &signed),
        ),
        Ok(SignInOutcome::VerifyEmail(pending)) => verify::after_request(&identity, &pending),
        Ok(SignInOutcome::SecondFactor(token)) => {
            pages::factors::after_first_factor(&identity, &token, Vec::new())
        }
        Err(SignInError::Store(error)) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "sign-in failed on the database");
            unavailable("/sign-in")
        }
        Err(error) => {
            let (status, retry_after) = match &error {
                SignInError::Throttled { retry_after_secs }
                | SignInError::TooManyMails { retry_after_secs }
                | SignInError::Locked { retry_after_secs } => {
                    (StatusCode::TOO_MANY_REQUESTS, Some(*retry_after_secs))
                }
                SignInError::Banned => (StatusCode::FORBIDDEN, None),
                SignInError::Busy => (StatusCode::SERVICE_UNAVAILABLE, Some(2)),
                SignInError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, None),
                SignInError::InvalidCredentials | SignInError::Store(_) => {
                    (StatusCode::UNAUTHORIZED, None)
                }
            };
            let text = error.to_string();
            let mut response = sign_in_form(&identity, &headers, &form, status, None, Some(&text));
            if let Some(seconds) = retry_after
                && let Ok(value) = http::HeaderValue::from_str(&seconds.to_string())
            {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, value);
            }
            response
        }
    }
}

pub(crate) async fn sign_up_page(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Query(params): Query<RedirectParams>,
) -> Response {
    if let Ok(Some(_)) = session_cookies::current(&identity, &headers).await {
        return see_other(&landing(&identity, &params.redirect_url), &[]);
    }
    let issued = identity.csrf().issue(&headers);
    let redirect = safe_redirect(&identity, &params.redirect_url);
    let page = SignUpPage {
        title: "Create your account",
        csrf_token: &issued.token,
        redirect_url: &redirect,
        redirect_query: &redirect_query(&redirect),
        providers: &super::social::buttons(&identity),
        email_address: "",
        first_name: "",
        last_name: "",
        error: None,
    };
    super::social::allow_providers(
        &identity,
        html(StatusCode::OK, page.render(), issued.set_cookie.as_slice()),
    )
}

pub(crate) async fn sign_up(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<SignUpForm>,
) -> Response {
    let ctx = pages::request_context(&identity, &headers, peer);
    let request = SignUp {
        email_address: form.email_address.clone(),
        password: Password::new(form.password),
        first_name: form.first_name.clone(),
        last_name: form.last_name.clone(),
        redirect_url: safe_redirect(&identity, &form.redirect_url),
    };
    match sign_up::sign_up(&identity, request, &ctx).await {
        Ok(pending) => verify::after_request(&identity, &pending),
        Err(SignUpError::Store(error)) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "sign-up failed on the database");
            unavailable("/sign-up")
        }
        Err(
            error @ (SignUpError::Throttled { retry_after_secs }
            | SignUpError::TooManyMails { retry_after_secs }),
        ) => message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ups",
            &error.to_string(),
            "/sign-up",
            Some(retry_after_secs),
        ),
        Err(error) => {
            let status = match error {
                SignUpError::Busy => StatusCode::SERVICE_UNAVAILABLE,
                SignUpError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let issued = identity.csrf().issue(&headers);
            let redirect = safe_redirect(&identity, &form.redirect_url);
            let text = error.to_string();
            let page = SignUpPage {
                title: "Create your account",
                csrf_token: &issued.token,
                redirect_url: &redirect,
                redirect_query: &redirect_query(&redirect),
                providers: &super::social::buttons(&identity),
                email_address: form.email_address.trim(),
                first_name: form.first_name.trim(),
                last_name: form.last_name.trim(),
                error: Some(&text),
            };
            super::social::allow_providers(
                &identity,
                html(status, page.render(), issued.set_cookie.as_slice()),
            )
        }
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct SignOutForm {
    #[serde(default)]
    redirect_url: String,
}

impl ProtectedForm for SignOutForm {
    const PAGE: &'static str = "/";
}

pub(crate) async fn sign_out(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<SignOutForm>,
) -> Response {
    if let Some(token) = session_cookies::client_token(&headers)
        && let Err(error) = lifecycle::sign_out(&identity, &token).await
    {
        tracing::warn!(error = %latchkey_web::ErrorChain(&error), "sign-out failed on the database");
        return unavailable("/");
    }
    let target =
        latchkey_web::redirect::same_origin_path(&form.redirect_url, &identity.config().public_url)
            .unwrap_or_else(|| "/sign-in?notice=signed_out".to_owned());
    see_other(&target, &session_cookies::sign_out_cookies(&identity))
}
