//! Provider accounts linked to users (Clerk's external accounts, ids `idn_…` like every
//! identification). A provider identity belongs to one user at most: the table's
//! `UNIQUE (provider, provider_user_id)` decides a race.

use std::collections::HashMap;

use latchkey_store::{DbRow, Row as _, StoreError, Tx};

use crate::users::EMAIL_PREFIX;

/// One linked provider account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAccountRecord {
    pub id: String,
    pub user_id: String,
    pub profile: Profile,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a provider said about the person, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// `oauth_google`, `oauth_microsoft`, `oauth_custom_<id>`.
    pub provider: String,
    pub provider_user_id: String,
    pub email_address: Option<String>,
    /// Whether the provider vouched for the address; `None` without one.
    pub email_verified: Option<bool>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub approved_scopes: String,
}

const COLUMNS: &str = "id, user_id, provider, provider_user_id, email_address, email_verified, \
    first_name, last_name, username, image_url, approved_scopes, created_at, updated_at";

fn from_row(row: &DbRow) -> Result<ExternalAccountRecord, StoreError> {
    Ok(ExternalAccountRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        profile: Profile {
            provider: row.try_get("provider")?,
            provider_user_id: row.try_get("provider_user_id")?,
            email_address: row.try_get("email_address")?,
            email_verified: row
                .try_get::<Option<i64>, _>("email_verified")?
                .map(|v| v != 0),
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            username: row.try_get("username")?,
            image_url: row.try_get("image_url")?,
            approved_scopes: row.try_get("approved_scopes")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The linked account of a provider identity, whoever holds it.
///
/// # Errors
/// Database failures.
pub async fn find(
    tx: &mut Tx,
    provider: &str,
    provider_user_id: &str,
) -> Result<Option<ExternalAccountRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_external_accounts \
             WHERE provider = $1 AND provider_user_id = $2"
        ))
        .bind(provider)
        .bind(provider_user_id);
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Links `profile` to `user_id`; `None` if that provider identity is already linked (to
/// anyone).
///
/// # Errors
/// Database failures.
pub async fn link(
    tx: &mut Tx,
    user_id: &str,
    profile: &Profile,
    now: i64,
) -> Result<Option<ExternalAccountRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "INSERT INTO identity_external_accounts ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             ON CONFLICT (provider, provider_user_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(latchkey_protocol::id::new_id(EMAIL_PREFIX))
        .bind(user_id)
        .bind(&profile.provider)
        .bind(&profile.provider_user_id)
        .bind(profile.email_address.as_deref())
        .bind(profile.email_verified.map(i64::from))
        .bind(profile.first_name.as_deref())
        .bind(profile.last_name.as_deref())
        .bind(profile.username.as_deref())
        .bind(profile.image_url.as_deref())
        .bind(&profile.approved_scopes)
        .bind(now);
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Unlinks one of `user_id`'s provider accounts; whether it was there.
///
/// # Errors
/// Database failures.
pub async fn unlink(tx: &mut Tx, user_id: &str, id: &str) -> Result<bool, StoreError> {
    let q = tx
        .query("DELETE FROM identity_external_accounts WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id);
    Ok(tx.execute(q).await? == 1)
}

/// The linked accounts of several users, by user id, oldest first.
///
/// # Errors
/// Database failures.
pub async fn of_users(
    tx: &mut Tx,
    user_ids: &[&str],
) -> Result<HashMap<String, Vec<ExternalAccountRecord>>, StoreError> {
    let mut by_user: HashMap<String, Vec<ExternalAccountRecord>> = HashMap::new();
    for chunk in user_ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let mut q = tx.query_owned(format!(
            "SELECT {COLUMNS} FROM identity_external_accounts WHERE user_id IN ({}) \
             ORDER BY created_at, id",
            placeholders.join(", ")
        ));
        for id in chunk {
            q = q.bind(*id);
        }
        for row in tx.fetch_all(q).await? {
            let account = from_row(&row)?;
            by_user
                .entry(account.user_id.clone())
                .or_default()
                .push(account);
        }
    }
    Ok(by_user)
}
