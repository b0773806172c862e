//! The address forms of `/user`: add, verify, send again, cancel, make primary, remove.

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::account::{render, require};
use super::see_other;
use super::verify::code_status;
use crate::flows::addresses;
use crate::flows::{CodeError, EmailError, RequestError};
use crate::sessions::SessionRecord;
use crate::state::Identity;
use crate::users::UserRecord;

#[derive(Default, Deserialize)]
pub(crate) struct EmailForm {
    #[serde(default)]
    email_address: String,
    #[serde(default)]
    email_id: String,
    #[serde(default)]
    verification_id: String,
    #[serde(default)]
    code: String,
}

impl ProtectedForm for EmailForm {
    const PAGE: &'static str = "/user";
}

fn status_of(error: &EmailError) -> StatusCode {
    match error {
        EmailError::Field(_) | EmailError::AlreadyYours | EmailError::Primary => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        EmailError::TooManyPending => StatusCode::CONFLICT,
        EmailError::NotFound => StatusCode::NOT_FOUND,
        EmailError::Request(RequestError::Ended) => StatusCode::GONE,
        EmailError::Request(_) => StatusCode::TOO_MANY_REQUESTS,
        EmailError::Code(code) => code_status(code),
        EmailError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Shows the account page again with what went wrong.
async fn refused(
    identity: &Identity,
    headers: &HeaderMap,
    session: &SessionRecord,
    user: &UserRecord,
    error: &EmailError,
) -> Response {
    if let EmailError::Store(store) | EmailError::Code(CodeError::Store(store)) = error {
        tracing::warn!(error = %latchkey_web::ErrorChain(store), "an address change failed on the database");
        return super::unavailable("/user");
    }
    render(
        identity,
        headers,
        session,
        user,
        status_of(error),
        None,
        Some(&error.to_string()),
    )
    .await
}

/// Runs one address form (its CSRF checks passed in [`CsrfForm`]): session first, then `act`; success goes back to `/user`
/// with `notice`.
async fn handle<F, Fut>(
    identity: Identity,
    headers: HeaderMap,
    form: EmailForm,
    notice: &str,
    act: F,
) -> Response
where
    F: FnOnce(Identity, UserRecord, EmailForm) -> Fut,
    Fut: Future<Output = Result<(), EmailError>>,
{
    let (session, user) = match require(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match act(identity.clone(), user.clone(), form).await {
        Ok(()) => see_other(&format!("/user?notice={notice}"), &[]),
        Err(error) => refused(&identity, &headers, &session, &user, &error).await,
    }
}

pub(crate) async fn add(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Response {
    handle(
        identity,
        headers,
        form,
        "email_added",
        |identity, user, form| async move {
            addresses::add_email(&identity, &user, &form.email_address).await
        },
    )
    .await
}

pub(crate) async fn verify(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Response {
    handle(
        identity,
        headers,
        form,
        "email_verified",
        |identity, user, form| async move {
            addresses::verify_added_email(&identity, &user.id, &form.verification_id, &form.code)
                .await
                .map_err(EmailError::from)
        },
    )
    .await
}

pub(crate) async fn resend(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Response {
    handle(
        identity,
        headers,
        form,
        "email_code_sent",
        |identity, user, form| async move {
            addresses::resend_added_email_code(&identity, &user.id, &form.verification_id)
                .await
                .map_err(EmailError::from)
        },
    )
    .await
}

pub(crate) async fn cancel(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Response {
    handle(
        identity,
        headers,
        form,
        "email_cancelled",
        |identity, user, form| async move {
            addresses::cancel_added_email(&identity, &user.id, &form.verification_id).await
        },
    )
    .await
}

pub(crate) async fn primary(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Response {
    // Changing the primary address needs a recent sign-in (step-up).
    if let Err(response) = super::factors::require_recent(&identity, &headers).await {
        return response;
    }
    handle(
        identity,
        headers,
        form,
        "primary_changed",
        |identity, user, form| async move {
            addresses::set_primary_email(&identity, &user.id, &form.email_id).await
        },
    )
    .await
}

pub(crate) async fn remove(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Response {
    handle(
        identity,
        headers,
        form,
        "email_removed",
        |identity, user, form| async move {
            addresses::remove_email(&identity, &user, &form.email_id).await
        },
    )
    .await
}
