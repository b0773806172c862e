//! How the app part reaches latchkey's own identity part inside one process: the app defines
//! what it needs (verification keys, a user source) as traits; these adapters implement them
//! with the identity's keys and accounts. The app never depends on the identity crate, and the
//! same traits are implemented over HTTP for real Clerk.

use std::sync::Arc;

use latchkey_app::session::{BoxFuture, KeyProvider, SourceError, UserSource};
use latchkey_app::webhooks::shadow::{Shadow, ShadowError};
use latchkey_identity::Identity;
use latchkey_identity::flows::import::{ImportError, ImportedUser};
use latchkey_identity::flows::{admin, shadow};
use latchkey_identity::users::{ListQuery, OrderBy};
use latchkey_protocol::clerk;
use latchkey_protocol::jwt::KeySource;
use latchkey_store::Tx;

/// The identity's published signing keys.
pub struct IdentityKeys(pub Identity);

impl KeyProvider for IdentityKeys {
    fn keys(&self) -> BoxFuture<'_, Option<Arc<KeySource>>> {
        Box::pin(async move { Some(self.0.keys().verifying()) })
    }

    fn refresh(&self) -> BoxFuture<'_, Option<Arc<KeySource>>> {
        Box::pin(async move {
            if let Err(error) = self.0.keys().reload_if_stale().await {
                tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not reload signing keys");
            }
            Some(self.0.keys().verifying())
        })
    }
}

/// The identity's accounts, as Clerk's Backend API would describe them.
pub struct IdentityUsers(pub Identity);

fn unavailable(error: &dyn std::error::Error) -> SourceError {
    SourceError::Unreachable(latchkey_web::ErrorChain(error).to_string())
}

impl UserSource for IdentityUsers {
    fn get_user<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<clerk::User>, SourceError>> {
        Box::pin(async move {
            let Some(user) = admin::find_user(&self.0, id)
                .await
                .map_err(|e| unavailable(&e))?
            else {
                return Ok(None);
            };
            admin::user_json(&self.0, &user)
                .await
                .map(Some)
                .map_err(|e| unavailable(&e))
        })
    }

    /// One page, newest first, in one read transaction (see
    /// [`admin::list_users_json`]).
    fn list_users<'a>(
        &'a self,
        limit: u32,
        starting_after: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<clerk::User>, SourceError>> {
        Box::pin(async move {
            let query = ListQuery {
                limit,
                order_by: OrderBy::CreatedDesc,
                starting_after: starting_after.map(str::to_owned),
                ..ListQuery::default()
            };
            admin::list_users_json(&self.0, &query)
                .await
                .map_err(|e| unavailable(&e))
        })
    }
}

/// Shadow mode's second copy of Clerk's accounts: the identity's own (see
/// [`latchkey_identity::flows::shadow`]).
#[derive(Clone)]
pub struct IdentityShadow(pub Identity);

impl std::fmt::Debug for IdentityShadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityShadow")
    }
}

impl Shadow for IdentityShadow {
    fn upsert<'a>(
        &'a self,
        tx: &'a mut Tx,
        user: &'a clerk::User,
    ) -> BoxFuture<'a, Result<(), ShadowError>> {
        Box::pin(async move {
            let imported = ImportedUser::from_clerk(user.clone());
            let now = self.0.now_ms();
            match shadow::mirror_in(&self.0, tx, &imported, now).await {
                Ok(_) => Ok(()),
                Err(ImportError::Store(error)) => Err(ShadowError::Store(error)),
                Err(refused) => Err(ShadowError::Refused(refused.to_string())),
            }
        })
    }

    fn remove<'a>(
        &'a self,
        tx: &'a mut Tx,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ShadowError>> {
        Box::pin(async move {
            shadow::remove_in(tx, user_id).await?;
            Ok(())
        })
    }
}
