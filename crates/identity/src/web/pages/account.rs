//! `/user`: the account page, and the forms on it.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use latchkey_web::csrf::{CsrfForm, ProtectedForm};
use serde::Deserialize;

use super::{format_utc, html, see_other, unavailable};
use crate::flows::account;
use crate::flows::account::ChangeError;
use crate::passwords::Password;
use crate::sessions::lifecycle;
use crate::sessions::{self, SessionRecord};
use crate::state::Identity;
use crate::users::{ProfileChange, UserRecord, validate};
use crate::verifications;
use crate::web::session_cookies;

struct EmailRow {
    id: String,
    address: String,
    primary: bool,
    verified: bool,
}

struct PendingRow {
    id: String,
    address: String,
    expired: bool,
    attempts_left: i64,
}

struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

struct SessionRow {
    id: String,
    browser: String,
    ip: String,
    last_active: String,
    last_active_iso: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    title: &'a str,
    csrf_token: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    username: &'a str,
    image_url: &'a str,
    emails: Vec<EmailRow>,
    pending: Vec<PendingRow>,
    can_add: bool,
    /// `false` for an account that signs in by code: it sets a password without the current.
    has_password: bool,
    sessions: Vec<SessionRow>,
    totp_enabled: bool,
    backup_codes_left: i64,
    passkeys: Vec<PasskeyRow>,
    /// A factor was proved within the step-up window: sensitive changes need no re-check.
    recent: bool,
    connections: Vec<super::social::Connection>,
    connectable: Vec<super::social::Button>,
    /// The operator acting as this person (impersonation), if any.
    impersonator: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Notice {
    #[serde(default)]
    notice: String,
}

/// The signed-in account, or a redirect to sign in (and back here).
pub(crate) async fn require(
    identity: &Identity,
    headers: &HeaderMap,
) -> Result<(SessionRecord, UserRecord), Response> {
    match session_cookies::current(identity, headers).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(see_other(
            "/sign-in?redirect_url=%2Fuser",
            &session_cookies::sign_out_cookies(identity),
        )),
        Err(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not look up a session");
            Err(unavailable("/user"))
        }
    }
}

pub(crate) async fn render(
    identity: &Identity,
    headers: &HeaderMap,
    session: &SessionRecord,
    user: &UserRecord,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let now = identity.now_ms();
    let listed = async {
        let mut tx = identity.db().begin_read().await?;
        let listed = sessions::list_active(&mut tx, &user.id, now).await?;
        let pending =
            verifications::list_open(&mut tx, &user.id, verifications::Purpose::AddEmail).await?;
        tx.commit().await?;
        Ok::<_, latchkey_store::StoreError>((listed, pending))
    }
    .await;
    let Ok((listed, pending)) = listed else {
        return unavailable("/user");
    };
    // An added address waiting for its code is shown from its verification, the same way
    // whether the address was free or a stand-in took its place.
    let waiting: Vec<&str> = pending
        .iter()
        .filter_map(|v| v.email_address_id.as_deref())
        .collect();
    let emails = user
        .emails
        .iter()
        .filter(|e| !waiting.contains(&e.id.as_str()))
        .map(|e| EmailRow {
            id: e.id.clone(),
            address: e.email_address.clone(),
            primary: user.primary_email_address_id.as_deref() == Some(e.id.as_str()),
            verified: e.verification_status == "verified",
        })
        .collect();
    let can_add = pending.len() < crate::flows::MAX_PENDING;
    let pending = pending
        .into_iter()
        .map(|v| PendingRow {
            expired: v.expire_at <= now,
            attempts_left: v.attempts_left(),
            id: v.id,
            address: v.email_address,
        })
        .collect();
    let rows = listed
        .iter()
        .map(|s| {
            let (human, iso) = format_utc(s.last_active_at);
            let agent = s.user_agent.as_deref().map(sessions::describe_agent);
            SessionRow {
                id: s.id.clone(),
                browser: agent.map_or_else(
                    || "Unknown browser".to_owned(),
                    |a| format!("{} on {}", a.browser, a.os),
                ),
                ip: s.ip_address.clone().unwrap_or_else(|| "unknown".to_owned()),
                last_active: human,
                last_active_iso: iso,
                current: s.id == session.id,
            }
        })
        .collect();
    let passkeys = user
        .passkeys
        .iter()
        .map(|p| PasskeyRow {
            id: p.id.clone(),
            name: p.name.clone(),
            created: format_utc(p.created_at).0,
            last_used: p
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| format_utc(at).0),
        })
        .collect();
    let issued = identity.csrf().issue(headers);
    let (connections, connectable) = super::social::connections(identity, user);
    let page = AccountPage {
        title: "Your account",
        csrf_token: &issued.token,
        notice,
        error,
        email: user
            .primary_email()
            .map_or("", |e| e.email_address.as_str()),
        first_name: user.first_name.as_deref().unwrap_or_default(),
        last_name: user.last_name.as_deref().unwrap_or_default(),
        username: user.username.as_deref().unwrap_or_default(),
        image_url: user.image_url.as_deref().unwrap_or_default(),
        emails,
        pending,
        can_add,
        has_password: user.has_password,
        sessions: rows,
        totp_enabled: user.totp_enabled_at.is_some(),
        backup_codes_left: user.backup_codes_left,
        passkeys,
        recent: crate::flows::second_factor::recently_verified(identity, session),
        connections,
        connectable,
        impersonator: session.actor_id.as_deref(),
    };
    // The one page besides sign-in that runs the passkeys script; its connect buttons post to
    // a route that redirects to the providers.
    super::social::allow_providers(
        identity,
        latchkey_web::pages::allow_own_scripts(html(
            status,
            page.render(),
            issued.set_cookie.as_slice(),
        )),
    )
}

pub(crate) async fn page(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Query(query): Query<Notice>,
) -> Response {
    let (session, user) = match require(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let notice = match query.notice.as_str() {
        "profile_saved" => Some("Your profile was saved."),
        "password_changed" => {
            Some("Your password was changed; your other sessions were signed out.")
        }
        "session_revoked" => Some("The session was signed out."),
        "others_revoked" => Some("All your other sessions were signed out."),
        "email_added" => Some("We sent a code to the new address. Enter it below to add it."),
        "email_code_sent" => Some("A new code is on its way."),
        "email_verified" => Some("The address is verified and added to your account."),
        "email_cancelled" => Some("The address waiting for a code was withdrawn."),
        "primary_changed" => {
            Some("Your primary address was changed; the previous one was told by email.")
        }
        "email_removed" => Some("The address was removed from your account."),
        "mfa_removed" => Some("Two-step verification is off."),
        "passkey_added" => Some("The passkey was added: you can sign in with it."),
        "passkey_renamed" => Some("The passkey was renamed."),
        "passkey_removed" => Some("The passkey was removed."),
        "reverified" => Some("Thanks: for the next 10 minutes you can make sensitive changes."),
        "connected" => Some("The account was connected: you can sign in with it."),
        "disconnected" => Some("The account was disconnected."),
        _ => None,
    };
    render(
        &identity,
        &headers,
        &session,
        &user,
        StatusCode::OK,
        notice,
        None,
    )
    .await
}

async fn failed(
    identity: &Identity,
    headers: &HeaderMap,
    session: &SessionRecord,
    user: &UserRecord,
    error: &ChangeError,
) -> Response {
    let status = match error {
        ChangeError::Store(_) | ChangeError::Busy => return unavailable("/user"),
        ChangeError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ChangeError::NotFound => StatusCode::NOT_FOUND,
        ChangeError::UsernameTaken => StatusCode::CONFLICT,
        ChangeError::WrongPassword => StatusCode::UNAUTHORIZED,
        ChangeError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        ChangeError::Field(_) | ChangeError::Password(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let mut response = render(
        identity,
        headers,
        session,
        user,
        status,
        None,
        Some(&error.to_string()),
    )
    .await;
    if let ChangeError::TooManyAttempts { retry_after_secs } = error {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(*retry_after_secs),
        );
    }
    response
}

#[derive(Default, Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    image_url: String,
}

impl ProtectedForm for ProfileForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn save_profile(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> Response {
    let (session, user) = match require(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let change = (|| {
        Ok::<_, validate::FieldError>(ProfileChange {
            first_name: Some(validate::name("first_name", &form.first_name)?),
            last_name: Some(validate::name("last_name", &form.last_name)?),
            username: Some(validate::username(&form.username)?),
            image_url: Some(validate::image_url(&form.image_url)?),
            ..ProfileChange::default()
        })
    })();
    let result = match change {
        Ok(change) => account::update_profile(&identity, &user.id, change)
            .await
            .map(|_| ()),
        Err(field) => Err(ChangeError::Field(field)),
    };
    match result {
        Ok(()) => see_other("/user?notice=profile_saved", &[]),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

impl ProtectedForm for PasswordForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn change_password(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Response {
    let (session, user) = match require(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    // The current password proves a factor now; an account without one needs a recent
    // sign-in (step-up).
    if !user.has_password && !crate::flows::second_factor::recently_verified(&identity, &session) {
        return super::factors::step_up_required(&identity, &headers, &session, &user).await;
    }
    let result = account::change_password(
        &identity,
        &user,
        &session.id,
        Password::new(form.current_password),
        Password::new(form.new_password),
    )
    .await;
    match result {
        Ok(_) => see_other("/user?notice=password_changed", &[]),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    session_id: String,
}

impl ProtectedForm for RevokeForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn revoke_session(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Response {
    let (session, user) = match require(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if form.session_id == session.id {
        // Revoking the current session is signing out; the sign-out button does that.
        return failed(&identity, &headers, &session, &user, &ChangeError::NotFound).await;
    }
    match lifecycle::revoke_session(&identity, &user.id, &form.session_id).await {
        Ok(Some(_)) => see_other("/user?notice=session_revoked", &[]),
        Ok(None) => failed(&identity, &headers, &session, &user, &ChangeError::NotFound).await,
        Err(error) => failed(&identity, &headers, &session, &user, &error.into()).await,
    }
}

#[derive(Default, Deserialize)]
pub(crate) struct PlainForm {
    #[serde(default)]
    confirmation: String,
}

impl ProtectedForm for PlainForm {
    const PAGE: &'static str = "/user";
}

pub(crate) async fn revoke_others(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<PlainForm>,
) -> Response {
    let (session, user) = match require(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match lifecycle::revoke_other_sessions(&identity, &user.id, Some(&session.id)).await {
        Ok(_) => see_other("/user?notice=others_revoked", &[]),
        Err(error) => {
            failed(
                &identity,
                &headers,
                &session,
                &user,
                &ChangeError::Store(error),
            )
            .await
        }
    }
}

pub(crate) async fn delete(
    State(identity): State<Identity>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<PlainForm>,
) -> Response {
    let (session, user) = match super::factors::require_recent(&identity, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if form.confirmation.trim() != "DELETE" {
        let text = "Type DELETE (in capitals) to confirm.";
        return render(
            &identity,
            &headers,
            &session,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(text),
        )
        .await;
    }
    match account::delete_account(&identity, &user.id).await {
        Ok(()) => see_other(
            "/sign-in?notice=deleted",
            &session_cookies::sign_out_cookies(&identity),
        ),
        Err(error) => failed(&identity, &headers, &session, &user, &error).await,
    }
}
