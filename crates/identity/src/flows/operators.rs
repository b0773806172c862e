//! The operator role: who may use the console at `/admin`. It is granted and revoked only from
//! the command line (`latchkey users grant-operator|revoke-operator`), never from a page, and
//! each change is an audit entry.

use latchkey_store::{Row as _, StoreError, Tx};

use super::admin::{AdminError, find_user};
use crate::audit;
use crate::state::Identity;

/// Grants (`true`) or revokes the operator role; answers whether it changed.
///
/// # Errors
/// [`AdminError::NotFound`] or database failures.
pub async fn set_operator(
    identity: &Identity,
    user_id: &str,
    operator: bool,
) -> Result<bool, AdminError> {
    if find_user(identity, user_id).await?.is_none() {
        return Err(AdminError::NotFound);
    }
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let q = if operator {
        tx.query("UPDATE identity_users SET operator_at = $2 WHERE id = $1 AND operator_at IS NULL")
            .bind(user_id)
            .bind(now)
    } else {
        tx.query("UPDATE identity_users SET operator_at = NULL WHERE id = $1 AND operator_at IS NOT NULL")
            .bind(user_id)
    };
    let changed = tx.execute(q).await? == 1;
    if changed {
        let action = if operator {
            "operator.granted"
        } else {
            "operator.revoked"
        };
        audit::record(identity, &mut tx, audit::Entry::new(action, Some(user_id))).await?;
    }
    tx.commit().await?;
    if changed {
        tracing::info!(user.id = %user_id, operator, "operator role changed");
    }
    Ok(changed)
}

/// Whether `user_id` holds the operator role.
///
/// # Errors
/// Database failures.
pub async fn is_operator(tx: &mut Tx, user_id: &str) -> Result<bool, StoreError> {
    let q = tx
        .query("SELECT operator_at FROM identity_users WHERE id = $1")
        .bind(user_id);
    Ok(match tx.fetch_optional(q).await? {
        Some(row) => row.try_get::<Option<i64>, _>("operator_at")?.is_some(),
        None => false,
    })
}
