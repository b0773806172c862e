//! A session's life: opened at sign-in (ending the browser's previous one), found and kept
//! alive from its `__client` handle, ended by signing out, revoked by its owner or an operator,
//! removed with its account. Every end records its event in the same transaction.

use latchkey_store::{StoreError, Tx};

use super::{ClientToken, EndReason, SessionRecord};
use crate::context::RequestContext;
use crate::events;
use crate::events::SessionEvent;
use crate::sessions::token;
use crate::state::Identity;
use crate::users::{self, UserRecord};

/// A fresh session and what the browser needs to hold it.
#[derive(Debug)]
pub struct SignedIn {
    pub user_id: String,
    pub session: SessionRecord,
    pub client_token: ClientToken,
    pub session_token: String,
}

fn session_event(reason: EndReason) -> SessionEvent {
    match reason {
        EndReason::Ended => SessionEvent::Ended,
        EndReason::Revoked => SessionEvent::Revoked,
        EndReason::Removed => SessionEvent::Removed,
    }
}

/// Ends the browser's previous session, starts one for `user_id` and records its event,
/// all in `tx`; commits it, then mints the first session token.
pub(crate) async fn open_session(
    identity: &Identity,
    tx: Tx,
    user_id: &str,
    previous: Option<&ClientToken>,
    ctx: &RequestContext,
    now: i64,
) -> Result<SignedIn, StoreError> {
    open_session_with_factors(identity, tx, user_id, previous, ctx, now, None).await
}

/// [`open_session`] after a second factor: `factors` holds when the first and the second
/// factor were proved (the token's `fva`, step-up).
pub(crate) async fn open_session_with_factors(
    identity: &Identity,
    mut tx: Tx,
    user_id: &str,
    previous: Option<&ClientToken>,
    ctx: &RequestContext,
    now: i64,
    factors: Option<(i64, i64)>,
) -> Result<SignedIn, StoreError> {
    if let Some(previous) = previous
        && let Some(old) = super::find_active(&mut tx, previous, now).await?
    {
        end_session_in(identity, &mut tx, &old.id, EndReason::Ended, now).await?;
    }
    let (mut session, client_token) = start_session(identity, &mut tx, user_id, ctx, now).await?;
    if let Some((first, second)) = factors {
        crate::mfa::mark_session(&mut tx, &session.id, crate::mfa::Proved::First, first).await?;
        crate::mfa::mark_session(&mut tx, &session.id, crate::mfa::Proved::Second, second).await?;
        session.first_factor_at = Some(first);
        session.second_factor_at = Some(second);
    }
    events::emit_sessions(
        identity,
        &mut tx,
        SessionEvent::Created,
        std::slice::from_ref(&session),
        None,
        Some(ctx),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, session.id = %session.id, "signed in");
    let session_token = token::mint_session_token(identity, &session).await;
    Ok(SignedIn {
        user_id: user_id.to_owned(),
        session,
        client_token,
        session_token,
    })
}

pub(crate) async fn start_session(
    identity: &Identity,
    tx: &mut Tx,
    user_id: &str,
    ctx: &RequestContext,
    now: i64,
) -> Result<(SessionRecord, ClientToken), StoreError> {
    let (session, token) = super::create(
        tx,
        user_id,
        ctx.user_agent.as_deref(),
        ctx.ip_text().as_deref(),
        now,
        identity.config().session_lifetime_ms,
    )
    .await?;
    users::record_sign_in(tx, user_id, now).await?;
    Ok((session, token))
}

/// Ends one session and records its event.
pub(crate) async fn end_session_in(
    identity: &Identity,
    tx: &mut Tx,
    session_id: &str,
    reason: EndReason,
    now: i64,
) -> Result<Option<SessionRecord>, StoreError> {
    let ended = super::end(tx, session_id, reason, now).await?;
    if let Some(session) = &ended {
        events::emit_sessions(
            identity,
            tx,
            session_event(reason),
            std::slice::from_ref(session),
            None,
            None,
        )
        .await?;
    }
    Ok(ended)
}

/// Ends every session of a user but `keep`, recording their events.
pub(crate) async fn end_all_sessions_in(
    identity: &Identity,
    tx: &mut Tx,
    user_id: &str,
    keep: Option<&str>,
    reason: EndReason,
    now: i64,
) -> Result<Vec<SessionRecord>, StoreError> {
    let ended = super::end_all(tx, user_id, keep, reason, now).await?;
    events::emit_sessions(identity, tx, session_event(reason), &ended, None, None).await?;
    Ok(ended)
}

/// The active session and account behind a `__client` cookie, recording activity.
///
/// # Errors
/// Database failures.
pub async fn authenticate(
    identity: &Identity,
    token: &ClientToken,
) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin_read().await?;
    let Some(session) = super::find_active(&mut tx, token, now).await? else {
        tx.commit().await?;
        return Ok(None);
    };
    let user = users::get(&mut tx, &session.user_id).await?;
    tx.commit().await?;
    let Some(user) = user.filter(|u| u.banned_at.is_none()) else {
        return Ok(None);
    };
    if super::needs_touch(&session, now) {
        let mut tx = identity.db().begin().await?;
        super::touch(
            &mut tx,
            &session.id,
            now,
            identity.config().session_lifetime_ms,
        )
        .await?;
        crate::daily::active(&mut tx, &session.user_id, now).await?;
        tx.commit().await?;
    }
    Ok(Some((session, user)))
}

/// Ends the session behind a `__client` cookie (signing out).
///
/// # Errors
/// Database failures.
pub async fn sign_out(identity: &Identity, token: &ClientToken) -> Result<(), StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if let Some(session) = super::find_active(&mut tx, token, now).await? {
        end_session_in(identity, &mut tx, &session.id, EndReason::Ended, now).await?;
        if let Some(operator) = &session.actor_id {
            let entry = crate::audit::Entry::new("impersonation.ended", Some(&session.user_id))
                .by(crate::audit::Actor::Operator(operator.clone()))
                .with(serde_json::json!({ "session_id": session.id }));
            crate::audit::record(identity, &mut tx, entry).await?;
        }
        tracing::info!(session.id = %session.id, "signed out");
    }
    tx.commit().await
}

/// Revokes one of the user's sessions.
///
/// # Errors
/// Database failures. `None` if it is not an active session of this user.
pub async fn revoke_session(
    identity: &Identity,
    user_id: &str,
    session_id: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    match super::get(&mut tx, session_id).await? {
        Some(session) if session.user_id == user_id => {}
        _ => return Ok(None),
    }
    let ended = end_session_in(identity, &mut tx, session_id, EndReason::Revoked, now).await?;
    tx.commit().await?;
    Ok(ended)
}

/// Revokes every session of the user except `keep`; returns how many.
///
/// # Errors
/// Database failures.
pub async fn revoke_other_sessions(
    identity: &Identity,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let ended =
        end_all_sessions_in(identity, &mut tx, user_id, keep, EndReason::Revoked, now).await?;
    tx.commit().await?;
    Ok(ended.len())
}
