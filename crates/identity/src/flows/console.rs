//! What operators do in the console at `/admin`: find accounts, look at one (its addresses,
//! sessions and audit entries), and act on it. The actions are the same use cases the command
//! line and the management API run (banning, revoking sessions, deleting, metadata), run as
//! the operator so the audit log names them; verifying an address for someone is the one
//! action only the console has.

use latchkey_protocol::clerk::EventType;
use latchkey_store::StoreError;

use super::admin::AdminError;
use crate::audit::{self, AuditRow};
use crate::events;
use crate::sessions::{self, SessionRecord};
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
