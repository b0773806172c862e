//! The app's `users` table: rows keyed by the app's own id, each mirroring one identity
//! provider user (`clerk_user_id`), written only through [`upsert_from_source`] and
//! [`tombstone`] so every path (webhook, provisioning, backfill) obeys the same rules:
//!
//! * a change applies only if it is strictly newer (`source_updated_at`) than the row;
//! * a tombstoned user is never changed again, whatever arrives later.

use latchkey_protocol::clerk;
use std::sync::LazyLock;

use latchkey_store::{DbRow, Query, Row as _, RowExt as _, StoreError, Tx};
use serde::Serialize;
use serde_json::Value;

/// Prefix of the app's own user ids.
pub const ID_PREFIX: &str = "usr";

/// A row of the app's `users` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppUser {
    pub id: String,
    pub clerk_user_id: String,
    pub email: Option<String>,
    /// Whether the provider says the primary address is verified.
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub public_metadata: Value,
    /// The provider's `updated_at` of the version stored (ms).
    pub source_updated_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set when the provider deleted the user; personal fields are then cleared.
    pub deleted_at: Option<i64>,
}

/// What [`upsert_from_source`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The user was new to the app.
    Inserted,
    /// The stored row was older and now matches the source.
    Updated,
    /// The stored row is as new or newer; nothing changed.
    Stale,
    /// The user was deleted; tombstones are never revived.
    Tombstoned,
}

/// What [`tombstone`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tombstoned {
    /// A stored user is now a tombstone.
    Deleted,
    /// The user was unknown; a tombstone now guards its id.
    Recorded,
    /// It already was a tombstone.
    AlreadyDeleted,
}

/// `text` with NUL replaced by U+FFFD: Postgres text refuses NUL (SQLite keeps it), and a
/// signed event must not fail to apply forever over one character. Ids are not touched: an id
/// with NUL fails, as it should. Metadata is stored as JSON text, where NUL is escaped.
fn storable(text: Option<&str>) -> Option<String> {
    text.map(|t| t.replace('\0', "\u{fffd}"))
}

/// The guarded upsert of `rows` users in one statement: 11 parameters per row, in the order
/// [`bind_upsert`] binds them. A row changes only if it is live and strictly older than the
/// source's version; the statement returns the rows it inserted or changed.
fn upsert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO users (id, clerk_user_id, email, first_name, last_name, username, image_url, \
             public_metadata, created_at, updated_at, source_updated_at, deleted_at, email_verified) VALUES ",
    );
    for row in 0..rows {
        let p = row * 11;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, NULL, ${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7,
            p + 8,
            p + 9,
            p + 9,
            p + 10,
            p + 11
        ));
    }
    sql.push_str(UPSERT_ON_CONFLICT);
    sql.push_str(" RETURNING id, clerk_user_id");
    sql
}

/// The order guard of every upsert into `users`: a row changes only if it is live and strictly
/// older than the source's version. Shared with the receiver's one-statement batch
/// (`webhooks::group`).
pub(crate) const UPSERT_ON_CONFLICT: &str = " ON CONFLICT (clerk_user_id) DO UPDATE SET \
     email = excluded.email, email_verified = excluded.email_verified, \
     first_name = excluded.first_name, \
     last_name = excluded.last_name, username = excluded.username, \
     image_url = excluded.image_url, public_metadata = excluded.public_metadata, \
     updated_at = excluded.updated_at, source_updated_at = excluded.source_updated_at \
     WHERE users.deleted_at IS NULL AND users.source_updated_at < excluded.source_updated_at";

/// Binds one row of [`upsert_sql`]: `user` under the new row id `new_id`.
fn bind_upsert(query: Query, new_id: &str, user: &clerk::User, now_ms: i64) -> Query {
    bind_user_fields(query.bind(new_id.to_owned()), user, Some(now_ms))
}

/// Binds what a `users` row takes from `user`, in column order: `clerk_user_id`, `email`,
/// `first_name`, `last_name`, `username`, `image_url`, `public_metadata`, then `now_ms` (if
/// given, for `created_at` and `updated_at`), `source_updated_at`, `email_verified`.
pub(crate) fn bind_user_fields(query: Query, user: &clerk::User, now_ms: Option<i64>) -> Query {
    let query = query
        .bind(user.id.clone())
        .bind(storable(
            user.primary_email().map(|e| e.email_address.as_str()),
        ))
        .bind(storable(user.first_name.as_deref()))
        .bind(storable(user.last_name.as_deref()))
        .bind(storable(user.username.as_deref()))
        .bind(storable(user.image_url.as_deref()))
        .bind(user.public_metadata.to_string());
    let query = match now_ms {
        Some(now_ms) => query.bind(now_ms),
        None => query,
    };
    query
        .bind(user.updated_at)
        .bind(i64::from(primary_email_verified(user)))
}

/// [`upsert_sql`] for one row, assembled once.
static UPSERT_ONE: LazyLock<String> = LazyLock::new(|| upsert_sql(1));

/// Inserts or updates the row for `user` if `user.updated_at` is newer than what is stored.
///
/// # Errors
/// Database failures.
pub async fn upsert_from_source(
    tx: &mut Tx,
    user: &clerk::User,
    now_ms: i64,
) -> Result<Upserted, StoreError> {
    let new_id = latchkey_protocol::id::new_id(ID_PREFIX);
    let q = bind_upsert(tx.query_owned(UPSERT_ONE.clone()), &new_id, user, now_ms);
    if let Some(row) = tx.fetch_optional(q).await? {
        let id: String = row.try_get("id")?;
        return Ok(if id == new_id {
            Upserted::Inserted
        } else {
            Upserted::Updated
        });
    }
    let q = tx
        .query("SELECT deleted_at FROM users WHERE clerk_user_id = $1")
        .bind(&user.id);
    let deleted_at: Option<i64> = tx.fetch_one(q).await?.try_get("deleted_at")?;
    Ok(if deleted_at.is_some() {
        Upserted::Tombstoned
    } else {
        Upserted::Stale
    })
}

/// [`upsert_from_source`] for several users in one statement: for each, in order, whether it
/// changed the app's data (`Inserted` or `Updated`) or not (`Stale`, which here also covers a
/// tombstone). The users must be distinct (one statement cannot change a row twice); callers
/// order them by id so concurrent batches take row locks in the same order.
///
/// # Errors
/// Database failures.
pub async fn upsert_many(
    tx: &mut Tx,
    users: &[&clerk::User],
    now_ms: i64,
) -> Result<Vec<Upserted>, StoreError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let new_ids: Vec<String> = users
        .iter()
        .map(|_| latchkey_protocol::id::new_id(ID_PREFIX))
        .collect();
    let mut q = tx.query_owned(upsert_sql(users.len()));
    for (user, new_id) in users.iter().zip(&new_ids) {
        q = bind_upsert(q, new_id, user, now_ms);
    }
    let mut changed = std::collections::HashMap::new();
    for row in tx.fetch_all(q).await? {
        let clerk_user_id: String = row.try_get("clerk_user_id")?;
        let id: String = row.try_get("id")?;
        changed.insert(clerk_user_id, id);
    }
    Ok(users
        .iter()
        .zip(&new_ids)
        .map(|(user, new_id)| match changed.get(&user.id) {
            Some(id) if id == new_id => Upserted::Inserted,
            Some(_) => Upserted::Updated,
            None => Upserted::Stale,
        })
        .collect())
}

/// Turns the row for `clerk_user_id` into a tombstone (or records one for an unknown user):
/// `deleted_at` set, personal fields cleared.
///
/// # Errors
/// Database failures.
pub async fn tombstone(
    tx: &mut Tx,
    clerk_user_id: &str,
    deleted_at_ms: i64,
    now_ms: i64,
) -> Result<Tombstoned, StoreError> {
    let new_id = latchkey_protocol::id::new_id(ID_PREFIX);
    let q = tx
        .query(
            "INSERT INTO users (id, clerk_user_id, public_metadata, created_at, updated_at, \
                 source_updated_at, deleted_at) \
             VALUES ($1, $2, '{}', $3, $3, $4, $4) \
             ON CONFLICT (clerk_user_id) DO UPDATE SET \
                 email = NULL, email_verified = 0, first_name = NULL, last_name = NULL, username = NULL, \
                 image_url = NULL, public_metadata = '{}', updated_at = excluded.updated_at, \
                 deleted_at = excluded.deleted_at \
             WHERE users.deleted_at IS NULL \
             RETURNING id",
        )
        .bind(&new_id)
        .bind(clerk_user_id)
        .bind(now_ms)
        .bind(deleted_at_ms);
    Ok(match tx.fetch_optional(q).await? {
        Some(row) if row.try_get::<String, _>("id")? == new_id => Tombstoned::Recorded,
        Some(row) => {
            // The app's data policy: a deleted user's data goes with the tombstone.
            let id: String = row.try_get("id")?;
            crate::data::delete_all_for(tx, &id).await?;
            Tombstoned::Deleted
        }
        None => Tombstoned::AlreadyDeleted,
    })
}

/// Every row, tombstones included, oldest first.
///
/// # Errors
/// Database failures.
pub async fn list(tx: &mut Tx) -> Result<Vec<AppUser>, StoreError> {
    let q = tx.query(
        "SELECT id, clerk_user_id, email, email_verified, first_name, last_name, username, image_url, \
             public_metadata, source_updated_at, created_at, updated_at, deleted_at \
         FROM users ORDER BY created_at, id",
    );
    tx.fetch_all(q).await?.iter().map(from_row).collect()
}

/// The row mirroring `clerk_user_id`, tombstone or not.
///
/// # Errors
/// Database failures.
pub async fn find_by_clerk_id(
    tx: &mut Tx,
    clerk_user_id: &str,
) -> Result<Option<AppUser>, StoreError> {
    let q = tx
        .query(
            "SELECT id, clerk_user_id, email, email_verified, first_name, last_name, username, image_url, \
                 public_metadata, source_updated_at, created_at, updated_at, deleted_at \
             FROM users WHERE clerk_user_id = $1",
        )
        .bind(clerk_user_id);
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Whether `user`'s primary address carries a `verified` verification.
fn primary_email_verified(user: &clerk::User) -> bool {
    user.primary_email()
        .and_then(|e| e.verification.as_ref())
        .is_some_and(|v| v.status == "verified")
}

/// A `users` row as stored: flags are integers (SQLite has no booleans) and metadata is text.
#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    clerk_user_id: String,
    email: Option<String>,
    email_verified: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    image_url: Option<String>,
    public_metadata: String,
    source_updated_at: i64,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
}

fn from_row(row: &DbRow) -> Result<AppUser, StoreError> {
    let row: UserRow = row.decode()?;
    Ok(AppUser {
        id: row.id,
        clerk_user_id: row.clerk_user_id,
        email: row.email,
        email_verified: row.email_verified != 0,
        first_name: row.first_name,
        last_name: row.last_name,
        username: row.username,
        image_url: row.image_url,
        // The column is only ever written from serialised JSON; fall back rather than fail a
        // listing if someone edited it by hand.
        public_metadata: serde_json::from_str(&row.public_metadata)
            .unwrap_or(Value::String(row.public_metadata)),
        source_updated_at: row.source_updated_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        deleted_at: row.deleted_at,
    })
}
