//! The `app_revocations` table (see `migrations/1004_revocations.sql`).

use latchkey_store::{Db, DbRow, Row as _, StoreError, Tx};

use super::{Entry, Revocation};

const SESSION: &str = "session";
const USER: &str = "user";

/// Adds `entry` under the next `seq`. The bump of `app_revocation_seq` holds that row's lock
/// until `tx` ends, so a concurrent writer takes the next number only after this one committed
/// (or rolled back, giving its number back).
pub(super) async fn insert(tx: &mut Tx, entry: &Entry, now: i64) -> Result<(), StoreError> {
    let q = tx.query("UPDATE app_revocation_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq");
    let seq: i64 = tx.fetch_one(q).await?.try_get("seq")?;
    let (kind, subject, not_after) = match &entry.revocation {
        Revocation::Session(id) => (SESSION, id.as_str(), None),
        Revocation::User { id, not_after_ms } => (USER, id.as_str(), Some(*not_after_ms)),
    };
    let q = tx
        .query(
            "INSERT INTO app_revocations (seq, kind, subject, not_after, recorded_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(seq)
        .bind(kind)
        .bind(subject)
        .bind(not_after)
        .bind(now)
        .bind(entry.expires_at);
    tx.execute(q).await?;
    Ok(())
}

fn entry(row: &DbRow) -> Result<Option<Entry>, StoreError> {
    let subject: String = row.try_get("subject")?;
    let kind: String = row.try_get("kind")?;
    let revocation = match kind.as_str() {
        SESSION => Revocation::Session(subject),
        USER => Revocation::User {
            id: subject,
            not_after_ms: row.try_get::<Option<i64>, _>("not_after")?.unwrap_or(0),
        },
        // Written by a newer version of the app: not ours to interpret.
        _ => return Ok(None),
    };
    Ok(Some(Entry {
        revocation,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Rows after `cursor` in `seq` order, at most `limit`, with their `seq` (`None` for a row
/// this version cannot read, which the cursor moves past all the same).
pub(super) async fn after(
    db: &Db,
    cursor: i64,
    limit: i64,
) -> Result<Vec<(i64, Option<Entry>)>, StoreError> {
    let read = db.read_one().await?;
    let q = read
        .query(
            "SELECT seq, kind, subject, not_after, expires_at FROM app_revocations \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(cursor)
        .bind(limit);
    let mut page = Vec::new();
    for row in read.fetch_all(q).await? {
        page.push((row.try_get("seq")?, entry(&row)?));
    }
    Ok(page)
}

/// The last `seq` handed out and every row not yet expired at `now` up to it. The number is
/// read first: rows up to it have all committed by then, and later ones are read by cursor.
pub(super) async fn live(db: &Db, now: i64) -> Result<(i64, Vec<Entry>), StoreError> {
    let mut tx = db.begin_read().await?;
    let q = tx.query("SELECT seq FROM app_revocation_seq WHERE id = 1");
    let cursor: i64 = tx.fetch_one(q).await?.try_get("seq")?;
    let q = tx
        .query(
            "SELECT seq, kind, subject, not_after, expires_at FROM app_revocations \
             WHERE expires_at > $1 AND seq <= $2",
        )
        .bind(now)
        .bind(cursor);
    let rows = tx.fetch_all(q).await?;
    tx.commit().await?;
    let mut live = Vec::with_capacity(rows.len());
    for row in &rows {
        live.extend(entry(row)?);
    }
    Ok((cursor, live))
}

/// Deletes rows that expired before `now`; how many.
pub(super) async fn delete_expired(db: &Db, now: i64) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let q = tx
        .query("DELETE FROM app_revocations WHERE expires_at <= $1")
        .bind(now);
    let deleted = tx.execute(q).await?;
    tx.commit().await?;
    Ok(deleted)
}
