//! Second factors on the pages: `/sign-in/factor` (the second step of a sign-in, its pending
//! state in the `HttpOnly` cookie `latchkey_mfa`), and on `/user` the authenticator app's
//! enrolment (`/user/mfa/totp`, its QR code as inline SVG), backup codes, turning it off, and
//! step-up (`/user/reverify`), which sensitive changes require within the last 10 minutes.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::account::{render, require};
use super::{html, message, see_other, unavailable};
use crate::context::Peer;
use crate::flows::factor_enrolment;
use crate::flows::second_factor::{self, FactorError};
use crate::mfa::challenge::{self, ChallengeToken};
use crate::mfa::totp;
use crate::passwords::Password;
use crate::sessions::SessionRecord;
use crate::state::Identity;
use crate::users::UserRecord;
use crate::web::pages;
use crate::web::pages::sign;
use crate::web::session_cookies;

/// The cookie lives as long as the pending second step.
const COOKIE_SECS: i64 = challenge::LIFETIME_MS / 1000;

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "totp_enrol.html")]
struct EnrolPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    qr_svg: &'a str,
    secret: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "backup_codes.html")]
struct BackupCodesPage<'a> {
    title: &'a str,
    notice: Option<&'a str>,
    codes: &'a [String],
    replaced: bool,
}

/// Sends the browser to the second step of its sign-in, holding `token` in its cookie;
/// `extra` cookies (clearing a verification's) go along.
pub(crate) fn after_first_factor(
    identity: &Identity,
    token: &ChallengeToken,
    extra: Vec<String>,
) -> Response {
    let mut cookies = vec![latchkey_web::cookies::build(
        challenge::COOKIE,
        token.expose(),
        identity.config().secure_cookies(),
        true,
        Some(COOKIE_SECS),
    )];
    cookies.extend(extra);
    see_other("/sign-in/factor", &cookies)
}

fn clear_cookie(identity: &Identity) -> String {
    latchkey_web::cookies::clear(challenge::COOKIE, identity.config().secure_cookies(), true)
}

fn challenge_token(headers: &HeaderMap) -> Option<ChallengeToken> {
    latchkey_web::cookies::get(headers, challenge::COOKIE).and_then(ChallengeToken::from_cookie)
}

fn second_step_page(
    identity: &Identity,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let issued = identity.csrf().issue(headers);
    let page = SecondFactorPage {
        title: "Two-step verification",
        csrf_token: &issued.token,
        error,
    };
    html(status, page.render(), issued.set_cookie.as_slice())
}

fn status_of(error: &FactorError) -> StatusCode {
    match error {
        FactorError::Malformed
        | FactorError::Wrong { .. }
        | FactorError::Replayed
        | FactorError::NotEnrolled => StatusCode::UNPROCESSABLE_ENTITY,
        FactorError::WrongPassword => StatusCode::UNAUTHORIZED,
        FactorError::TooManyAttempts
        | FactorError::Locked { .. }
        | FactorError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        FactorError::Ended => StatusCode::GONE,
        FactorError::Banned => StatusCode::FORBIDDEN,
        FactorError::AlreadyEnrolled => StatusCode::CONFLICT,
        FactorError::Busy | FactorError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        FactorError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn with_retry_after(mut response: Response, error: &FactorError) -> Response {
    if let FactorError::Locked { retry_after_secs } | FactorError::Throttled { retry_after_secs } =
        error
    {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(*retry_after_secs),
        );
    }
    response
}

pub(crate) async fn sign_in_page(State(identity): State<Identity>, headers: HeaderMap) -> Response {
    let Some(token) = challenge_token(&headers) else {
        return see_other("/sign-in", &[]);
    };
    match second_factor::pending_sign_in(&identity, &token).await {
        Ok(Some(_)) => second_step_page(&identity, &headers, StatusCode::OK, None),
        Ok(None) => see_other("/sign-in", &[clear_cookie(&identity)]),
        Err(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not look up a second step");
            unavailable("/sign-in")
        }
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    code: String,
}

impl ProtectedForm for CodeForm {
    const PAGE: &'static str = "/sign-in/factor";
}

pub(crate) async fn sign_in_submit(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Response {
    let Some(token) = challenge_token(&headers) else {
        return see_other("/sign-in", &[]);
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    let previous = session_cookies::client_token(&headers);
    match second_factor::complete_sign_in(&identity, &token, &form.code, previous.as_ref(), &ctx)
        .await
    {
        Ok((signed, redirect)) => {
            let mut cookies = session_cookies::sign_in_cookies(&identity, &signed);
            cookies.push(clear_cookie(&identity));
            see_other(&sign::landing(&identity, &redirect), &cookies)
        }
        Err(FactorError::Store(error)) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "a second step failed on the database");
            unavailable("/sign-in/factor")
        }
        Err(FactorError::Ended) => see_other("/sign-in", &[clear_cookie(&identity)]),
        Err(error @ (FactorError::TooManyAttempts | FactorError::Banned)) => {
            let mut response = message(
                status_of(&error),
                "Sign-in stopped",
                &error.to_string(),
                "/sign-in",
                None,
            );
            if let Ok(value) = http::HeaderValue::from_str(&clear_cookie(&identity)) {
                response
                    .headers_mut()
                    .append(http::header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => with_retry_after(
            second_step_page(
                &identity,
                &headers,
                status_of(&error),
                Some(&error.to_string()),
            ),
            &error,
        ),
    }
}

/// The answer to a sensitive change asked for without a recent sign-in: the account page,
/// 403, saying to confirm it's you first.
pub(crate) async fn step_up_required(
    identity: &Identity,
    headers: &HeaderMap,
    session: &SessionRecord,
    user: &UserRecord,
) -> Response {
    render(
        identity,
        headers,
        session,
        user,
        StatusCode::FORBIDDEN,
        None,
        Some("For your security, confirm it's you first (below): this change needs a sign-in within the last 10 minutes."),
    )
    .await
}

/// The signed-in account, if its session proved a factor within the last 10 minutes; else
/// the response asking for a step-up.
pub(crate) async fn require_recent(
    identity: &Identity,
    headers: &HeaderMap,
) -> Result<(SessionRecord, UserRecord), Response> {
    let (session, user) = require(identity, headers).await?;
    if second_factor::recently_verified(identity, &session) {
        Ok((session, user))
    } else {
        Err(step_up_required(identity, headers, &session, &user).await)
    }
}

async fn failed(
    identity: &Identity,
    headers: &HeaderMap,
    session: &SessionRecord,
    user: &UserRecord,
    error: &FactorError,
) -> Response {
    if matches!(error, FactorError::Store(_) | FactorError::Busy) {
        return unavailable("/user");
    }
    let response = render(
        identity,
        headers,
        session,
        user,
        status_of(error),
        None,
        Some(&error.to_string()),
    )
    .await;
    with_retry_after(response, error)
}

#[derive(Default, Deserialize)]
pub(crate) struct PlainForm {}

impl ProtectedForm for PlainForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn start_totp(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<PlainForm>,
) -> Response {
    let (session, user) = match require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match factor_enrolment::start_totp(&identity, &user.id).await {
        Ok(()) => see_other("/user/mfa/totp", &[]),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}

fn enrol_page(
    identity: &Identity,
    headers: &HeaderMap,
    user: &UserRecord,
    secret: &totp::TotpSecret,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let account = user
        .primary_email()
        .map_or_else(|| user.id.clone(), |e| e.email_address.clone());
    let issuer = identity
        .config()
        .public_url
        .host_str()
        .unwrap_or("latchkey")
        .to_owned();
    let svg = totp::qr_svg(&secret.uri(&issuer, &account)).unwrap_or_default();
    // Inline in the page: without the XML prolog.
    let svg = svg.find("<svg").map_or("", |at| &svg[at..]);
    let issued = identity.csrf().issue(headers);
    let page = EnrolPage {
        title: "Set up an authenticator app",
        csrf_token: &issued.token,
        qr_svg: svg,
        secret: &secret.base32(),
        error,
    };
    html(status, page.render(), issued.set_cookie.as_slice())
}

pub(crate) async fn totp_page(State(identity): State<Identity>, headers: HeaderMap) -> Response {
    let (_, user) = match require(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match factor_enrolment::pending_totp(&identity, &user.id).await {
        Ok(Some(secret)) => enrol_page(&identity, &headers, &user, &secret, StatusCode::OK, None),
        Ok(None) => see_other("/user", &[]),
        Err(FactorError::Store(_)) => unavailable("/user"),
        Err(_) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side; it has been logged.",
            "/user",
            None,
        ),
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    code: String,
}

impl ProtectedForm for ConfirmForm {
    const PAGE: &'static str = "/user/mfa/totp";
}

fn codes_page(codes: &[String], replaced: bool) -> Response {
    let page = BackupCodesPage {
        title: "Your backup codes",
        notice: Some(if replaced {
            "New backup codes were made."
        } else {
            "Two-step verification is on."
        }),
        codes,
        replaced,
    };
    html(StatusCode::OK, page.render(), &[])
}

pub(crate) async fn confirm_totp(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Response {
    let (session, user) = match require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    match factor_enrolment::confirm_totp(&identity, &user.id, &form.code, &ctx).await {
        Ok(codes) => codes_page(&codes, false),
        Err(
            error @ (FactorError::Wrong { .. }
            | FactorError::Malformed
            | FactorError::Locked { .. }),
        ) => match factor_enrolment::pending_totp(&identity, &user.id).await {
            Ok(Some(secret)) => with_retry_after(
                enrol_page(
                    &identity,
                    &headers,
                    &user,
                    &secret,
                    status_of(&error),
                    Some(&error.to_string()),
                ),
                &error,
            ),
            _ => failed(&identity, &headers, &session, &user, &error).await,
        },
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}

pub(crate) async fn regenerate(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<PlainForm>,
) -> Response {
    let (session, user) = match require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match factor_enrolment::regenerate_backup_codes(&identity, &user.id).await {
        Ok(codes) => codes_page(&codes, true),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}

pub(crate) async fn remove(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<PlainForm>,
) -> Response {
    let (session, user) = match require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    match factor_enrolment::remove_factors(&identity, &user.id, Some(&ctx)).await {
        Ok(_) => see_other("/user?notice=mfa_removed", &[]),
        Err(error) => failed(&identity, &headers, &session, &user, &error.into()).await,
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct ReverifyForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

impl ProtectedForm for ReverifyForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn reverify(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ReverifyForm>,
) -> Response {
    let (session, user) = match require(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let code = Some(form.code.trim()).filter(|c| !c.is_empty());
    let password = Some(form.password)
        .filter(|p| !p.is_empty())
        .map(Password::new);
    match second_factor::reverify(&identity, &session, password, code).await {
        Ok(_) => see_other("/user?notice=reverified", &[]),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}
