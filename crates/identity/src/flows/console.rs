//! What operators do in the console at `/admin`: find accounts, look at one (its addresses,
//! sessions and audit entries), and act on it. The actions are the same use cases the command
//! line and the management API run (banning, revoking sessions, deleting, metadata), run as
//! the operator so the audit log names them; verifying an address for someone is the one
//! action only the console has.

use latchkey_protocol::clerk::EventType;
use latchkey_store::StoreError;

use super::admin::AdminError;
use crate::audit::{self, Actor, AuditRow};
use crate::context::RequestContext;
use crate::events::{self, SessionEvent};
use crate::sessions::lifecycle::{self, SignedIn};
use crate::sessions::{self, EndReason, SessionRecord, token};
use crate::state::Identity;
use crate::users::{self, ConsoleFilters, ListQuery, OrderBy, UserRecord, address_rows};

/// Accounts per console page.
pub const PAGE: u32 = 50;

/// A page of accounts, newest first, and the cursor of the next page.
#[derive(Debug)]
pub struct Found {
    pub users: Vec<UserRecord>,
    /// The last account's id when more follow (`starting_after` of the next page).
    pub next: Option<String>,
}

/// Accounts matching `text` (id, address, names, username) and `filters`, after `cursor`:
/// keyset pages over `(created_at, id)`, so a late page costs what the first does.
///
/// # Errors
/// Database failures.
pub async fn find(
    identity: &Identity,
    text: Option<&str>,
    filters: ConsoleFilters,
    cursor: Option<&str>,
) -> Result<Found, StoreError> {
    let query = ListQuery {
        limit: PAGE + 1,
        order_by: OrderBy::CreatedDesc,
        starting_after: cursor.map(str::to_owned),
        text: text.map(str::to_owned),
        console: filters,
        ..ListQuery::default()
    };
    let mut tx = identity.db().begin_read().await?;
    let mut users = users::list(&mut tx, &query).await?;
    tx.commit().await?;
    let more = users.len() > PAGE as usize;
    users.truncate(PAGE as usize);
    let next = more.then(|| users.last().map(|u| u.id.clone())).flatten();
    Ok(Found { users, next })
}

/// One account as the console shows it.
#[derive(Debug)]
pub struct Detail {
    pub user: UserRecord,
    pub operator: bool,
    /// The 50 newest sessions still listed, active ones first.
    pub sessions: Vec<SessionRecord>,
    /// The newest audit entries about the account.
    pub audit: Vec<AuditRow>,
}

/// The account `user_id` with what the console shows beside it; `None` if there is none.
///
/// # Errors
/// Database failures.
pub async fn detail(identity: &Identity, user_id: &str) -> Result<Option<Detail>, StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin_read().await?;
    let Some(user) = users::get(&mut tx, user_id).await? else {
        tx.commit().await?;
        return Ok(None);
    };
    let operator = super::operators::is_operator(&mut tx, user_id).await?;
    let mut sessions = sessions::list_all(&mut tx, user_id, 50).await?;
    tx.commit().await?;
    sessions.sort_by_key(|s| (!s.is_active(now), std::cmp::Reverse(s.last_active_at)));
    let audit = audit::page(identity, None, Some(user_id), 20).await?;
    Ok(Some(Detail {
        user,
        operator,
        sessions,
        audit,
    }))
}

/// Marks an address of the account verified (the operator has checked it some other way);
/// emits `user.updated`. Answers whether it changed.
///
/// # Errors
/// [`AdminError::NotFound`] if the address is not the account's, or database failures.
pub async fn verify_address(
    identity: &Identity,
    user_id: &str,
    email_id: &str,
) -> Result<bool, AdminError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let user = users::get(&mut tx, user_id)
        .await?
        .ok_or(AdminError::NotFound)?;
    let Some(address) = user.emails.iter().find(|e| e.id == email_id) else {
        return Err(AdminError::NotFound);
    };
    if address.verification_status == "verified" {
        return Ok(false);
    }
    address_rows::mark_verified_by(&mut tx, email_id, "admin", now).await?;
    events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "address verified by an operator");
    Ok(true)
}

/// How long an operator may act as someone else.
pub const IMPERSONATION_MS: i64 = 60 * 60 * 1000;

/// Why an impersonation did not start.
#[derive(Debug, thiserror::Error)]
pub enum ImpersonateError {
    #[error("no such user")]
    NotFound,
    #[error("a banned account cannot be signed in to")]
    Banned,
    #[error("an operator cannot be impersonated")]
    Operator,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Signs the operator's browser in as `target_id` for an hour (no sliding), ending the
/// operator's own session there: the new session carries the operator as its actor (Clerk's
/// `act` claim in its tokens), and the audit log gets an entry now and when it is signed out.
/// Another operator's account cannot be taken over this way, and the console is closed to
/// impersonation sessions.
///
/// # Errors
/// See [`ImpersonateError`]; nothing is written on error.
pub async fn impersonate(
    identity: &Identity,
    operator: &SessionRecord,
    target_id: &str,
    ctx: &RequestContext,
) -> Result<SignedIn, ImpersonateError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let target = users::get(&mut tx, target_id)
        .await?
        .ok_or(ImpersonateError::NotFound)?;
    if target.banned_at.is_some() {
        return Err(ImpersonateError::Banned);
    }
    if super::operators::is_operator(&mut tx, target_id).await? {
        return Err(ImpersonateError::Operator);
    }
    lifecycle::end_session_in(identity, &mut tx, &operator.id, EndReason::Ended, now).await?;
    let (mut session, client_token) =
        lifecycle::start_session(identity, &mut tx, target_id, ctx, now).await?;
    let expire_at = now + IMPERSONATION_MS;
    let q = tx
        .query("UPDATE identity_sessions SET actor_id = $2, expire_at = $3 WHERE id = $1")
        .bind(&session.id)
        .bind(&operator.user_id)
        .bind(expire_at);
    tx.execute(q).await?;
    session.actor_id = Some(operator.user_id.clone());
    session.expire_at = expire_at;
    events::emit_sessions(
        identity,
        &mut tx,
        SessionEvent::Created,
        std::slice::from_ref(&session),
        None,
        Some(ctx),
    )
    .await?;
    let mut entry = audit::Entry::new("impersonation.started", Some(target_id))
        .by(Actor::Operator(operator.user_id.clone()))
        .with(serde_json::json!({ "session_id": session.id, "expire_at": expire_at }));
    entry.ip = ctx.ip_text();
    audit::record(identity, &mut tx, entry).await?;
    tx.commit().await?;
    tracing::info!(user.id = %target_id, operator.id = %operator.user_id, session.id = %session.id, "impersonation started");
    let session_token = token::mint_session_token(identity, &session).await;
    Ok(SignedIn {
        user_id: target_id.to_owned(),
        session,
        client_token,
        session_token,
    })
}
