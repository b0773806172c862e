//! The hook shadow mode hangs on the receiver: while real Clerk is the issuer, each user event
//! the app applies is handed on to whoever keeps a second copy of the accounts (latchkey's
//! identity, through the server's bridge), inside the same transaction, so the copy changes
//! exactly when the app's table does, in the same order, once.
//!
//! A copy that cannot take an account (its address belongs to another account there, a field
//! it refuses) must not stop the app: its writes are rolled back to a savepoint, the refusal is
//! kept in the message's record (`clerk_webhook_events.detail`) and `latchkey sync check
//! --issuer clerk --against identity` reports the account. A database failure fails the whole
//! delivery, so the sender retries.

use std::fmt;

use latchkey_protocol::clerk;
use latchkey_store::{StoreError, Tx};

use crate::session::BoxFuture;

/// Keeps a second copy of the issuer's accounts.
pub trait Shadow: Send + Sync + fmt::Debug {
    /// Creates or updates the account `user` describes.
    fn upsert<'a>(
        &'a self,
        tx: &'a mut Tx,
        user: &'a clerk::User,
    ) -> BoxFuture<'a, Result<(), ShadowError>>;

    /// Removes the account the issuer deleted.
    fn remove<'a>(
        &'a self,
        tx: &'a mut Tx,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ShadowError>>;
}

/// Why the copy did not take a change.
#[derive(Debug, thiserror::Error)]
pub enum ShadowError {
    /// The account cannot be held as it is (nothing of it written); the text says why.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One change to hand on.
pub(super) enum Change<'a> {
    Upsert(&'a clerk::User),
    Remove(&'a str),
}

/// Hands `change` to `shadow` between a savepoint and its release; answers the refusal, if
/// the copy refused (its writes rolled back, the transaction still good).
pub(super) async fn hand_on(
    tx: &mut Tx,
    shadow: &dyn Shadow,
    change: Change<'_>,
) -> Result<Option<String>, StoreError> {
    let q = tx.query("SAVEPOINT latchkey_shadow");
    tx.execute(q).await?;
    let result = match change {
        Change::Upsert(user) => shadow.upsert(tx, user).await,
        Change::Remove(id) => shadow.remove(tx, id).await,
    };
    match result {
        Ok(()) => {
            let q = tx.query("RELEASE SAVEPOINT latchkey_shadow");
            tx.execute(q).await?;
            Ok(None)
        }
        Err(ShadowError::Refused(reason)) => {
            let q = tx.query("ROLLBACK TO SAVEPOINT latchkey_shadow");
            tx.execute(q).await?;
            Ok(Some(reason))
        }
        Err(ShadowError::Store(error)) => Err(error),
    }
}
