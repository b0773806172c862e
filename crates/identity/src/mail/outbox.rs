//! The mail outbox table: written in the caller's transaction, claimed with a lease by the
//! worker, its outcome recorded, old rows swept.
//!
//! Statuses: `pending`, `sent`, `failed`, and `withheld`: the row a stand-in verification writes
//! in place of a real code mail, so that asking for a code for an unknown address runs the same
//! statements as for a known one. Withheld rows are never sent or shown and are swept like sent
//! ones; their body is empty.

use latchkey_store::{Backend, DbRow, Row as _, StoreError, Tx};

pub const PREFIX: &str = "mail";

/// Where a mail stands, stored as the TEXT in the `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MailStatus {
    /// Waiting to be sent (again) at `next_attempt_at`.
    Pending,
    Sent,
    /// Given up on.
    Failed,
    /// Stands in for a code mail to an unknown address: see the module's documentation.
    Withheld,
}

impl MailStatus {
    /// The stored value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Withheld => "withheld",
        }
    }
}

/// A mail to write.
#[derive(Debug)]
pub(crate) struct Queued<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub to: &'a str,
    pub user_id: Option<&'a str>,
    pub subject: &'a str,
    pub body_sealed: &'a str,
    /// Written `withheld`, not `pending`: see the module's documentation.
    pub withheld: bool,
}

pub(crate) async fn insert(tx: &mut Tx, mail: &Queued<'_>, now: i64) -> Result<(), StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_mail_outbox (id, kind, to_address, user_id, subject, body_sealed, \
                 status, attempts, next_attempt_at, lease_until, last_error, created_at, updated_at, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $8, 0, $7, NULL, NULL, $7, $7, NULL)",
        )
        .bind(mail.id)
        .bind(mail.kind)
        .bind(mail.to)
        .bind(mail.user_id)
        .bind(mail.subject)
        .bind(if mail.withheld { "" } else { mail.body_sealed })
        .bind(now)
        .bind(if mail.withheld {
            MailStatus::Withheld
        } else {
            MailStatus::Pending
        }
        .as_str());
    tx.execute(q).await?;
    Ok(())
}

/// A mail this instance holds the lease of.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub id: String,
    pub attempts: i64,
    pub lease_until: i64,
}

/// Leases up to `max` due mails until `lease_until`.
pub(crate) async fn claim(
    tx: &mut Tx,
    backend: Backend,
    max: usize,
    now: i64,
    lease_until: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT id, attempts FROM identity_mail_outbox \
             WHERE status = $3 AND next_attempt_at <= $1 \
               AND (lease_until IS NULL OR lease_until < $1) \
             ORDER BY next_attempt_at, id LIMIT $2{}",
            backend.claim_rows_suffix()
        ))
        .bind(now)
        .bind(i64::try_from(max).unwrap_or(16))
        .bind(MailStatus::Pending.as_str());
    let rows = tx.fetch_all(q).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let mail = Claimed {
            id: row.try_get("id")?,
            attempts: row.try_get("attempts")?,
            lease_until,
        };
        let q = tx
            .query("UPDATE identity_mail_outbox SET lease_until = $2 WHERE id = $1")
            .bind(&mail.id)
            .bind(lease_until);
        tx.execute(q).await?;
        claimed.push(mail);
    }
    Ok(claimed)
}

/// A stored mail.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub id: String,
    pub kind: String,
    pub to_address: String,
    pub subject: String,
    pub body_sealed: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const COLUMNS: &str =
    "id, kind, to_address, subject, body_sealed, status, attempts, created_at, sent_at";

fn from_row(row: &DbRow) -> Result<Stored, StoreError> {
    Ok(Stored {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        to_address: row.try_get("to_address")?,
        subject: row.try_get("subject")?,
        body_sealed: row.try_get("body_sealed")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
    })
}

pub(crate) async fn get(tx: &mut Tx, id: &str) -> Result<Option<Stored>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_mail_outbox WHERE id = $1 AND status <> $2"
        ))
        .bind(id)
        .bind(MailStatus::Withheld.as_str());
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The newest mails first.
pub(crate) async fn recent(tx: &mut Tx, limit: i64) -> Result<Vec<Stored>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_mail_outbox WHERE status <> $2 \
             ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .bind(MailStatus::Withheld.as_str());
    tx.fetch_all(q).await?.iter().map(from_row).collect()
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// Sent, pending (retry at `next_attempt_at`) or failed.
    pub status: MailStatus,
    pub next_attempt_at: i64,
    pub error: Option<String>,
    /// Drop the body: an SMTP server has it now, and it holds a code.
    pub clear_body: bool,
}

/// Records an attempt, if this instance still holds the lease.
pub(crate) async fn record(
    tx: &mut Tx,
    mail: &Claimed,
    outcome: &Outcome,
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "UPDATE identity_mail_outbox SET status = $2, attempts = $3, next_attempt_at = $4, \
                 lease_until = NULL, last_error = $5, updated_at = $6, \
                 sent_at = CASE WHEN $2 = $9 THEN $6 ELSE sent_at END, \
                 body_sealed = CASE WHEN $7 = 1 THEN '' ELSE body_sealed END \
             WHERE id = $1 AND lease_until = $8",
        )
        .bind(&mail.id)
        .bind(outcome.status.as_str())
        .bind(mail.attempts + 1)
        .bind(outcome.next_attempt_at)
        .bind(outcome.error.as_deref())
        .bind(now)
        .bind(i64::from(outcome.clear_body))
        .bind(mail.lease_until)
        .bind(MailStatus::Sent.as_str());
    let recorded = tx.execute(q).await? == 1;
    if recorded {
        match outcome.status {
            MailStatus::Sent => crate::daily::bump(tx, crate::daily::Metric::MailSent, now).await?,
            MailStatus::Failed => {
                crate::daily::bump(tx, crate::daily::Metric::MailFailed, now).await?;
            }
            _ => {}
        }
    }
    Ok(recorded)
}

/// Deletes mails that were sent or given up on before `before`.
pub(crate) async fn sweep(tx: &mut Tx, before: i64) -> Result<u64, StoreError> {
    let q = tx
        .query("DELETE FROM identity_mail_outbox WHERE status <> $2 AND updated_at < $1")
        .bind(before)
        .bind(MailStatus::Pending.as_str());
    tx.execute(q).await
}
