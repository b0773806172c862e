//! `/forgot-password` (ask for a reset code) and `/reset-password` (enter it with a new
//! password). Both answer the same for addresses with and without an account.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::verify::{NoticeParams, request_refused};
use super::{html, see_other, unavailable};
use crate::context::Peer;
use crate::flows::CodeError;
use crate::flows::reset;
use crate::passwords::Password;
use crate::state::Identity;
use crate::verifications::Purpose;
use crate::web::pages;
use crate::web::pages::verify;
use crate::web::session_cookies;

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    email_address: &'a str,
    error: Option<&'a str>,
}

pub(crate) async fn forgot_page(State(identity): State<Identity>, headers: HeaderMap) -> Response {
    let issued = identity.csrf().issue(&headers);
    let page = ForgotPage {
        title: "Reset your password",
        csrf_token: &issued.token,
        email_address: "",
        error: None,
    };
    html(StatusCode::OK, page.render(), issued.set_cookie.as_slice())
}

#[derive(Default, Deserialize)]
pub(crate) struct ForgotForm {
    #[serde(default)]
    email_address: String,
}

impl ProtectedForm for ForgotForm {
    const PAGE: &'static str = "/forgot-password";
}

pub(crate) async fn forgot(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Response {
    let ctx = pages::request_context(&identity, &headers, peer);
    match reset::request_password_reset(&identity, &form.email_address, &ctx).await {
        Ok(pending) => verify::after_request(&identity, &pending),
        Err(crate::flows::RequestError::Field(field)) => {
            let issued = identity.csrf().issue(&headers);
            let text = field.to_string();
            let page = ForgotPage {
                title: "Reset your password",
                csrf_token: &issued.token,
                email_address: form.email_address.trim(),
                error: Some(&text),
            };
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                page.render(),
                issued.set_cookie.as_slice(),
            )
        }
        Err(error) => request_refused(&error, "/forgot-password"),
    }
}

pub(crate) async fn reset_page(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Query(params): Query<NoticeParams>,
) -> Response {
    verify::pending_code_page(
        &identity,
        &headers,
        &params,
        &[Purpose::ResetPassword],
        "/forgot-password",
    )
    .await
}

#[derive(Default, Deserialize)]
pub(crate) struct ResetForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

impl ProtectedForm for ResetForm {
    const PAGE: &'static str = "/reset-password";
}

pub(crate) async fn reset(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Response {
    let Some(token) = verify::verification_token(&headers) else {
        return see_other("/forgot-password", &[]);
    };
    let ctx = pages::request_context(&identity, &headers, peer);
    match reset::reset_password(
        &identity,
        &token,
        &form.code,
        Password::new(form.password),
        &ctx,
    )
    .await
    {
        Ok(_) => {
            // Every session ended, this browser's too.
            let mut cookies = session_cookies::sign_out_cookies(&identity);
            cookies.push(verify::clear_verification_cookie(&identity));
            see_other("/sign-in?notice=password_reset", &cookies)
        }
        Err(CodeError::Store(error)) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "a password reset failed on the database");
            unavailable("/reset-password")
        }
        Err(CodeError::Ended) => see_other(
            "/forgot-password",
            &[verify::clear_verification_cookie(&identity)],
        ),
        Err(error) => verify::code_refused(&identity, &headers, &token, &error).await,
    }
}
