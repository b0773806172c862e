//! The hosted pages: `/sign-up`, `/sign-in`, `/sign-out`, `/verify`, `/forgot-password`,
//! `/reset-password`, `/sign-in/factor`, `/sign-in/passkey`, `/sign-in/oauth` and
//! `/v1/oauth_callback` (social sign-in), `/user` (with its second factors, passkeys,
//! connected accounts and step-up), and `/dev/mailbox` when no SMTP relay is set. Server-rendered
//! with askama (escaping on), usable without JavaScript, every form protected against CSRF.

mod account;
mod addresses;
pub(crate) mod factors;
mod mailbox;
mod passkeys;
mod reset;
mod sign;
mod social;
mod verify;

use askama::Template;
use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};

use crate::state::Identity;

/// The identity's page routes.
pub fn router(identity: Identity) -> Router {
    let mut router = Router::new()
        .route("/sign-in", get(sign::sign_in_page).post(sign::sign_in))
        .route("/sign-in/code", post(verify::request_sign_in_code))
        .route(
            "/sign-in/factor",
            get(factors::sign_in_page).post(factors::sign_in_submit),
        )
        .route("/sign-in/oauth", post(social::start))
        .route("/v1/oauth_callback", get(social::callback))
        .route("/sign-in/passkey", post(passkeys::sign_in))
        .route("/sign-in/passkey/options", post(passkeys::sign_in_options))
        .route("/sign-up", get(sign::sign_up_page).post(sign::sign_up))
        .route("/sign-out", post(sign::sign_out))
        .route("/verify", get(verify::page).post(verify::submit))
        .route("/verify/resend", post(verify::resend))
        .route(
            "/forgot-password",
            get(reset::forgot_page).post(reset::forgot),
        )
        .route("/reset-password", get(reset::reset_page).post(reset::reset))
        .route("/user", get(account::page))
        .route("/user/emails", post(addresses::add))
        .route("/user/emails/verify", post(addresses::verify))
        .route("/user/emails/resend", post(addresses::resend))
        .route("/user/emails/cancel", post(addresses::cancel))
        .route("/user/emails/primary", post(addresses::primary))
        .route("/user/emails/remove", post(addresses::remove))
        .route("/user/profile", post(account::save_profile))
        .route("/user/password", post(account::change_password))
        .route("/user/sessions/revoke", post(account::revoke_session))
        .route("/user/sessions/revoke-others", post(account::revoke_others))
        .route("/user/delete", post(account::delete))
        .route("/user/connections", post(social::connect))
        .route("/user/connections/remove", post(social::disconnect))
        .route(
            "/user/mfa/totp",
            get(factors::totp_page).post(factors::start_totp),
        )
        .route("/user/mfa/totp/confirm", post(factors::confirm_totp))
        .route("/user/mfa/backup-codes", post(factors::regenerate))
        .route("/user/mfa/remove", post(factors::remove))
        .route("/user/reverify", post(factors::reverify))
        .route("/user/passkeys", post(passkeys::register))
        .route("/user/passkeys/options", post(passkeys::register_options))
        .route("/user/passkeys/rename", post(passkeys::rename))
        .route("/user/passkeys/remove", post(passkeys::remove));
    if mail::uses_dev_mailbox(&identity) {
        router = router
            .route("/dev/mailbox", get(mailbox::list))
            .route("/dev/mailbox/{id}", get(mailbox::show));
    }
    router.with_state(identity)
}

pub(crate) use latchkey_web::pages::{html, see_other};

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    back_href: &'a str,
    back_label: &'a str,
}

/// A page that only says what went wrong, with a way back.
pub(crate) fn message(
    status: StatusCode,
    title: &str,
    message: &str,
    back_href: &str,
    retry_after: Option<u64>,
) -> Response {
    let page = MessagePage {
        title,
        message,
        back_href,
        back_label: "Go back",
    };
    let mut response = html(status, page.render(), &[]);
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Who is asking, as this instance's proxy setting says to read it.
pub(crate) fn request_context(
    identity: &Identity,
    headers: &http::HeaderMap,
    peer: crate::context::Peer,
) -> crate::context::RequestContext {
    crate::context::RequestContext::read(headers, peer, identity.config().trust_forwarded_for)
}

/// The answer when the database or hasher is unavailable.
pub(crate) fn unavailable(back_href: &str) -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again in a moment",
        "The service is busy or its database is unreachable. Nothing was changed.",
        back_href,
        Some(2),
    )
}

/// `?redirect_url=…` for links between the sign-in and sign-up pages, if the target is safe.
pub(crate) fn redirect_query(target: &str) -> String {
    if target.is_empty() {
        String::new()
    } else {
        format!(
            "?redirect_url={}",
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        )
    }
}

use crate::mail;
pub(crate) use latchkey_web::time::format_utc;
