//! Backfill and drift: bringing the app's users table in line with the issuer when webhooks
//! alone cannot (users that existed before the endpoint, events lost to an outage), through the
//! same guarded upsert the webhook and provisioning use.

use std::collections::HashMap;

use latchkey_protocol::clerk;
use latchkey_store::{Db, StoreError};
use serde::Serialize;

use crate::session::{SourceError, UserSource};
use crate::users::{self, Tombstoned, Upserted};

/// Users per page (the most Clerk's Backend API gives).
pub const PAGE: u32 = 500;

/// Why a sync could not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    pub pages: u64,
    pub users: u64,
    pub inserted: u64,
    pub updated: u64,
    /// Already as new as the issuer's (or newer), or tombstoned.
    pub unchanged: u64,
}

/// Pages through every user of the issuer (newest first, by cursor) and applies each; one
/// transaction per page. `progress` is told the running count after each page.
///
/// # Errors
/// If the issuer or the database fails; pages already applied stay applied (re-running is
/// safe: applying is idempotent).
pub async fn backfill(
    db: &Db,
    source: &dyn UserSource,
    mut progress: impl FnMut(&BackfillReport),
) -> Result<BackfillReport, SyncError> {
    let mut report = BackfillReport::default();
    let mut cursor: Option<String> = None;
    loop {
        let page = source.list_users(PAGE, cursor.as_deref()).await?;
        let now = latchkey_protocol::time::now_ms();
        let mut tx = db.begin().await?;
        for user in &page {
            match users::upsert_from_source(&mut tx, user, now).await? {
                Upserted::Inserted => report.inserted += 1,
                Upserted::Updated => report.updated += 1,
                Upserted::Stale | Upserted::Tombstoned => report.unchanged += 1,
            }
        }
        tx.commit().await?;
        report.pages += 1;
        report.users += u64::try_from(page.len()).unwrap_or(0);
        progress(&report);
        if page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
            return Ok(report);
        }
        cursor = page.last().map(|u| u.id.clone());
    }
}

/// Differences between the app's table and the issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// Issuer users the app has no row for.
    pub missing: Vec<String>,
    /// Rows older than the issuer's version.
    pub stale: Vec<String>,
    /// Live rows whose user the issuer no longer has.
    pub orphaned: Vec<String>,
    /// Issuer users checked.
    pub checked: u64,
    /// Whether the differences were repaired.
    pub fixed: bool,
}

impl DriftReport {
    #[must_use]
    pub fn has_drift(&self) -> bool {
        !(self.missing.is_empty() && self.stale.is_empty() && self.orphaned.is_empty())
    }
}

/// Compares the app's table with every issuer user; with `fix`, applies missing and stale
/// users and tombstones orphans. An apparent orphan is asked about once more before it counts
/// (a user created while the listing ran is not one).
///
/// # Errors
/// If the issuer or the database fails.
pub async fn check(db: &Db, source: &dyn UserSource, fix: bool) -> Result<DriftReport, SyncError> {
    let mut issuer: HashMap<String, clerk::User> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = source.list_users(PAGE, cursor.as_deref()).await?;
        let full = page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
        cursor = page.last().map(|u| u.id.clone());
        for user in page {
            issuer.insert(user.id.clone(), user);
        }
        if !full {
            break;
        }
    }
    let mut tx = db.begin_read().await?;
    let rows = users::list(&mut tx).await?;
    tx.commit().await?;
    let app: HashMap<&str, &users::AppUser> =
        rows.iter().map(|r| (r.clerk_user_id.as_str(), r)).collect();

    let mut report = DriftReport {
        checked: u64::try_from(issuer.len()).unwrap_or(0),
        ..DriftReport::default()
    };
    for (id, user) in &issuer {
        match app.get(id.as_str()) {
            None => report.missing.push(id.clone()),
            Some(row) if row.deleted_at.is_none() && row.source_updated_at < user.updated_at => {
                report.stale.push(id.clone())
            }
            Some(_) => {}
        }
    }
    for row in &rows {
        if row.deleted_at.is_none()
            && !issuer.contains_key(&row.clerk_user_id)
            && source.get_user(&row.clerk_user_id).await?.is_none()
        {
            report.orphaned.push(row.clerk_user_id.clone());
        }
    }
    report.missing.sort();
    report.stale.sort();
    report.orphaned.sort();

    if fix && report.has_drift() {
        let now = latchkey_protocol::time::now_ms();
        let mut tx = db.begin().await?;
        for id in report.missing.iter().chain(&report.stale) {
            if let Some(user) = issuer.get(id) {
                users::upsert_from_source(&mut tx, user, now).await?;
            }
        }
        for id in &report.orphaned {
            let _: Tombstoned = users::tombstone(&mut tx, id, now, now).await?;
        }
        tx.commit().await?;
        report.fixed = true;
    }
    Ok(report)
}
