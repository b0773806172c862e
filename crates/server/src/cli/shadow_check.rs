//! `latchkey sync check --issuer clerk --against identity`: before switching the issuer from
//! Clerk to latchkey, the identity's accounts (kept current by shadow mode and the import)
//! compared with Clerk's users, field by field as shadow mode keeps them; `--fix` makes them
//! match (Clerk is the source of truth until the switch).

use std::collections::{BTreeMap, HashMap};

use latchkey_app::session::UserSource;
use latchkey_app::sync::{DriftReport, PAGE, SyncError};
use latchkey_identity::Identity;
use latchkey_identity::flows::import::{ImportError, ImportedUser};
use latchkey_identity::flows::shadow;
use latchkey_protocol::clerk;
use serde::Serialize;

use crate::bridge::IdentityUsers;

/// What the comparison found.
#[derive(Debug, Default, Serialize)]
pub struct IdentityDrift {
    /// `missing`: Clerk users without an account here; `stale`: accounts that differ;
    /// `orphaned`: accounts Clerk does not have.
    #[serde(flatten)]
    pub drift: DriftReport,
    /// For each stale account, the fields that differ.
    pub differences: BTreeMap<String, Vec<&'static str>>,
    /// Accounts `--fix` could not bring in line, and why.
    pub refused: BTreeMap<String, String>,
}

async fn every_user(source: &dyn UserSource) -> Result<HashMap<String, clerk::User>, SyncError> {
    let mut users = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = source.list_users(PAGE, cursor.as_deref()).await?;
        let full = page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
        cursor = page.last().map(|u| u.id.clone());
        users.extend(page.into_iter().map(|u| (u.id.clone(), u)));
        if !full {
            return Ok(users);
        }
    }
}

/// Compares, and with `fix` repairs; see the module documentation.
///
/// # Errors
/// If Clerk or the database fails.
pub async fn check(
    identity: &Identity,
    clerk: &dyn UserSource,
    fix: bool,
) -> Result<IdentityDrift, SyncError> {
    let theirs = every_user(clerk).await?;
    let ours_source = IdentityUsers(identity.clone());
    let ours = every_user(&ours_source).await?;
    let mut found = IdentityDrift::default();
    found.drift.checked = u64::try_from(theirs.len()).unwrap_or(u64::MAX);
    for (id, user) in &theirs {
        match ours.get(id) {
            None => found.drift.missing.push(id.clone()),
            Some(account) => {
                let fields = shadow::differences(
                    &ImportedUser::from_clerk(user.clone()),
                    &ImportedUser::from_clerk(account.clone()),
                );
                if !fields.is_empty() {
                    found.drift.stale.push(id.clone());
                    found.differences.insert(id.clone(), fields);
                }
            }
        }
    }
    for id in ours.keys() {
        // Asked once more: a user created at Clerk while the listing ran is not an orphan.
        if !theirs.contains_key(id) && clerk.get_user(id).await?.is_none() {
            found.drift.orphaned.push(id.clone());
        }
    }
    found.drift.missing.sort();
    found.drift.stale.sort();
    found.drift.orphaned.sort();
    if fix && found.drift.has_drift() {
        for id in found.drift.missing.iter().chain(&found.drift.stale) {
            let Some(user) = theirs.get(id) else { continue };
            match shadow::mirror(identity, &ImportedUser::from_clerk(user.clone())).await {
                Ok(_) => {}
                Err(ImportError::Store(error)) => return Err(error.into()),
                Err(refused) => {
                    found.refused.insert(id.clone(), refused.to_string());
                }
            }
        }
        for id in &found.drift.orphaned {
            shadow::remove(identity, id).await?;
        }
        found.drift.fixed = true;
    }
    Ok(found)
}
