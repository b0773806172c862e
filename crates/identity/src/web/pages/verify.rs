//! `/verify` (enter the mailed code of a sign-up or sign-in), `/verify/resend`, and
//! `/sign-in/code` (ask for a sign-in code). The browser holds its pending verification in an
//! `HttpOnly` cookie; the page never says whether the address has an account.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::{html, message, see_other, unavailable};
use crate::context::Peer;
use crate::flows::sign_in_code;
use crate::flows::sign_in_code::CodeOutcome;
use crate::flows::{CodeError, Pending, RequestError, VERIFICATION_COOKIE};
use crate::state::Identity;
use crate::verifications::{BrowserToken, Purpose, Verification};
use crate::web::pages;
use crate::web::pages::sign;
use crate::web::session_cookies;

/// The cookie lives an hour; the verification behind it decides what is still valid.
const COOKIE_SECS: i64 = 60 * 60;

#[derive(Template)]
#[template(path = "verify.html")]
pub(crate) struct VerifyPage<'a> {
    pub title: &'a str,
    pub lead: &'a str,
    pub email_address: &'a str,
    pub minutes: i64,
    pub action: &'a str,
    pub submit_label: &'a str,
    pub reset: bool,
    pub restart_href: &'a str,
    pub csrf_token: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// `Set-Cookie` for a new pending verification.
pub(crate) fn verification_cookie(identity: &Identity, pending: &Pending) -> String {
    latchkey_web::cookies::build(
        VERIFICATION_COOKIE,
        pending.token.expose(),
        identity.config().secure_cookies(),
        true,
        Some(COOKIE_SECS),
    )
}

/// `Set-Cookie` that forgets the pending verification.
pub(crate) fn clear_verification_cookie(identity: &Identity) -> String {
    latchkey_web::cookies::clear(
        VERIFICATION_COOKIE,
        identity.config().secure_cookies(),
        true,
    )
}

/// The pending verification's token from a request's cookie.
pub(crate) fn verification_token(headers: &HeaderMap) -> Option<BrowserToken> {
    latchkey_web::cookies::get(headers, VERIFICATION_COOKIE).and_then(BrowserToken::from_cookie)
}

/// Sends the browser to where its new pending verification is entered.
pub(crate) fn after_request(identity: &Identity, pending: &Pending) -> Response {
    see_other(
        page_of(pending.purpose),
        &[verification_cookie(identity, pending)],
    )
}

/// Renders the page where a code is entered.
pub(crate) fn code_page(
    identity: &Identity,
    headers: &HeaderMap,
    verification: &Verification,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let config = &identity.config();
    let (title, lead, action, submit, reset, restart, lifetime) = match verification.purpose {
        Purpose::SignUp => (
            "Verify your email address",
            "We sent a 6-digit code to",
            "/verify",
            "Verify and continue",
            false,
            "/sign-up",
            config.email_code_lifetime_ms,
        ),
        Purpose::ResetPassword => (
            "Choose a new password",
            "If this address has an account, we sent it a 6-digit code:",
            "/reset-password",
            "Set the new password",
            true,
            "/forgot-password",
            config.reset_code_lifetime_ms,
        ),
        Purpose::SignIn | Purpose::SignInWithPassword | Purpose::AddEmail => (
            "Check your email",
            "If this address has an account, we sent it a 6-digit code:",
            "/verify",
            "Sign in",
            false,
            "/sign-in",
            config.email_code_lifetime_ms,
        ),
    };
    let issued = identity.csrf().issue(headers);
    // Lowercased: a known address's verification holds the spelling the account stored, a
    // stand-in's the spelling typed, so showing either as is would tell them apart.
    let shown_address = verification.email_address.to_lowercase();
    let page = VerifyPage {
        title,
        lead,
        email_address: &shown_address,
        minutes: (lifetime / 60_000).max(1),
        action,
        submit_label: submit,
        reset,
        restart_href: restart,
        csrf_token: &issued.token,
        notice,
        error,
    };
    let mut response = html(status, page.render(), issued.set_cookie.as_slice());
    if matches!(status, StatusCode::TOO_MANY_REQUESTS) {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("60"),
        );
    }
    response
}

/// The pending verification of this browser for `purposes`, or the response that sends it
/// back to the start.
pub(crate) async fn pending_for(
    identity: &Identity,
    headers: &HeaderMap,
    purposes: &[Purpose],
    start: &str,
) -> Result<(BrowserToken, Verification), Response> {
    let Some(token) = verification_token(headers) else {
        return Err(see_other(start, &[]));
    };
    match sign_in_code::pending_verification(identity, &token).await {
        Ok(Some(v)) if purposes.contains(&v.purpose) => Ok((token, v)),
        // Pending, but entered elsewhere.
        Ok(Some(v)) => Err(see_other(page_of(v.purpose), &[])),
        Ok(None) => Err(see_other(start, &[clear_verification_cookie(identity)])),
        Err(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not look up a verification");
            Err(unavailable(start))
        }
    }
}

/// The verifications whose code `/verify` takes.
const SIGN_IN_PURPOSES: [Purpose; 3] = [
    Purpose::SignUp,
    Purpose::SignIn,
    Purpose::SignInWithPassword,
];

/// Where the code of a verification for `purpose` is entered.
fn page_of(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::ResetPassword => "/reset-password",
        Purpose::AddEmail => "/user",
        Purpose::SignUp | Purpose::SignIn | Purpose::SignInWithPassword => "/verify",
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoticeParams {
    #[serde(default)]
    pub(crate) notice: String,
}

pub(crate) fn notice_text(notice: &str) -> Option<&'static str> {
    match notice {
        "sent" => Some("A new code is on its way."),
        _ => None,
    }
}

pub(crate) async fn page(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Query(params): Query<NoticeParams>,
) -> Response {
    pending_code_page(&identity, &headers, &params, &SIGN_IN_PURPOSES, "/sign-in").await
}

/// The page where this browser's pending verification for `purposes` takes its code, or the
/// answer that sends the browser back to `start`.
pub(crate) async fn pending_code_page(
    identity: &Identity,
    headers: &HeaderMap,
    params: &NoticeParams,
    purposes: &[Purpose],
    start: &str,
) -> Response {
    match pending_for(identity, headers, purposes, start).await {
        Ok((_, verification)) => code_page(
            identity,
            headers,
            &verification,
            StatusCode::OK,
            notice_text(&params.notice),
            None,
        ),
        Err(response) => response,
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    code: String,
}

impl ProtectedForm for CodeForm {
    const PAGE: &'static str = "/verify";
}

/// How a refused code is answered on a code page.
pub(crate) fn code_status(error: &CodeError) -> StatusCode {
    match error {
        CodeError::TooManyAttempts | CodeError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        CodeError::Banned => StatusCode::FORBIDDEN,
        CodeError::Busy | CodeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        CodeError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        CodeError::Ended => StatusCode::GONE,
        CodeError::Malformed
        | CodeError::Wrong { .. }
        | CodeError::Expired
        | CodeError::Used
        | CodeError::Password(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

pub(crate) async fn submit(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Response {
    let Some(token) = verification_token(&headers) else {
        return see_other("/sign-in", &[]);
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    let previous = session_cookies::client_token(&headers);
    match sign_in_code::sign_in_with_code(&identity, &token, &form.code, previous.as_ref(), &ctx)
        .await
    {
        Ok(CodeOutcome::SignedIn(signed, redirect)) => {
            let mut cookies = session_cookies::sign_in_cookies(&identity, &signed);
            cookies.push(clear_verification_cookie(&identity));
            see_other(&sign::landing(&identity, &redirect), &cookies)
        }
        Ok(CodeOutcome::SecondFactor(token)) => pages::factors::after_first_factor(
            &identity,
            &token,
            vec![clear_verification_cookie(&identity)],
        ),
        Err(CodeError::Store(error)) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "a code sign-in failed on the database");
            unavailable("/verify")
        }
        // Nothing to sign in with here (none pending, or a reset's code): start again.
        Err(CodeError::Ended) => see_other("/sign-in", &[]),
        Err(error) => code_refused(&identity, &headers, &token, &error).await,
    }
}

/// A code page showing why `error` refused the code, or, when the verification is used up
/// (a reused code), a page that only says so.
pub(crate) async fn code_refused(
    identity: &Identity,
    headers: &HeaderMap,
    token: &BrowserToken,
    error: &CodeError,
) -> Response {
    match sign_in_code::pending_verification(identity, token).await {
        Ok(Some(verification)) => code_page(
            identity,
            headers,
            &verification,
            code_status(error),
            None,
            Some(&error.to_string()),
        ),
        Ok(None) => message(
            code_status(error),
            "Code refused",
            &error.to_string(),
            "/sign-in",
            None,
        ),
        Err(store) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&store), "could not look up a verification");
            unavailable("/sign-in")
        }
    }
}

/// A form with nothing but its token (the resend button).
#[derive(Default, Deserialize)]
pub(crate) struct PlainForm {}

impl ProtectedForm for PlainForm {
    const PAGE: &'static str = "/sign-in";
}

pub(crate) async fn resend(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<PlainForm>,
) -> Response {
    let all = [
        Purpose::SignUp,
        Purpose::SignIn,
        Purpose::SignInWithPassword,
        Purpose::ResetPassword,
    ];
    let (token, verification) = match pending_for(&identity, &headers, &all, "/sign-in").await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match sign_in_code::resend_code(&identity, &token).await {
        Ok(Purpose::ResetPassword) => see_other("/reset-password?notice=sent", &[]),
        Ok(_) => see_other("/verify?notice=sent", &[]),
        Err(RequestError::Store(error)) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "sending a code again failed on the database");
            unavailable("/sign-in")
        }
        Err(error) => {
            let status = match error {
                RequestError::Ended => StatusCode::GONE,
                _ => StatusCode::TOO_MANY_REQUESTS,
            };
            code_page(
                &identity,
                &headers,
                &verification,
                status,
                None,
                Some(&error.to_string()),
            )
        }
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct CodeRequestForm {
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    email_address: String,
}

impl ProtectedForm for CodeRequestForm {
    const PAGE: &'static str = "/sign-in";
}

pub(crate) async fn request_sign_in_code(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<CodeRequestForm>,
) -> Response {
    let ctx = pages::request_context(&identity, &headers, peer);
    let redirect = sign::safe_redirect(&identity, &form.redirect_url);
    match sign_in_code::request_sign_in_code(&identity, &form.email_address, &redirect, &ctx).await
    {
        Ok(pending) => after_request(&identity, &pending),
        Err(error) => request_refused(&error, "/sign-in"),
    }
}

/// The answer when asking for a code was refused.
pub(crate) fn request_refused(error: &RequestError, back_href: &str) -> Response {
    match error {
        RequestError::Store(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(error), "a code request failed on the database");
            unavailable(back_href)
        }
        RequestError::Field(_) => message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Check the address",
            &error.to_string(),
            back_href,
            None,
        ),
        RequestError::TooManyMails { retry_after_secs }
        | RequestError::Throttled { retry_after_secs } => message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &error.to_string(),
            back_href,
            Some(*retry_after_secs),
        ),
        RequestError::Ended => message(
            StatusCode::GONE,
            "Start again",
            &error.to_string(),
            back_href,
            None,
        ),
    }
}
