//! The audit log: who did what to whom, one entry per operator action, management API change,
//! command-line change and security event (lockout, password or factor change, key rotation,
//! secret keys made or revoked), written in the transaction of the change.
//!
//! Entries form a chain (see [`chain`]): each carries the hash of the one before it, and the
//! head row's lock serializes writers, so `seq` has no gaps and the chain has one order.
//!
//! Who acts comes from the request: the management API's key check runs the rest of the
//! request [`acting_as`] that key, the command line as [`Actor::Cli`], the console as the
//! operator. Changes made by the events they cause ([`crate::events::emit`]) are recorded for
//! those actors; a person's own security events are recorded where they happen, naming them.

pub mod chain;

use latchkey_store::{Row as _, StoreError, Tx};
use serde::Serialize;
use serde_json::Value;

use crate::context::RequestContext;
use crate::secrets::MasterKey;
use crate::state::Identity;

/// Prefix of entry ids.
pub const PREFIX: &str = "aud";

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator in the console (their user id).
    Operator(String),
    /// A management API call (the secret key's id).
    ApiKey(String),
    /// The person the account belongs to.
    User(String),
    /// Someone at the command line, with access to the database and the master secret.
    Cli,
    /// latchkey itself (sweeps, retries, the lockout rule).
    System,
}

impl Actor {
    /// The `actor_type` column.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Operator(_) => "operator",
            Self::ApiKey(_) => "api_key",
            Self::User(_) => "user",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }

    /// The `actor_id` column.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Operator(id) | Self::ApiKey(id) | Self::User(id) => Some(id),
            Self::Cli | Self::System => None,
        }
    }

    /// Whether changes this actor makes are recorded as they happen (every event they cause),
    /// not only the security events.
    fn is_privileged(&self) -> bool {
        matches!(self, Self::Operator(_) | Self::ApiKey(_) | Self::Cli)
    }
}

/// Who is acting, and on what errand (the console's button, say), for this task.
#[derive(Debug, Clone)]
struct Acting {
    actor: Actor,
    operation: Option<&'static str>,
}

tokio::task_local! {
    static ACTING: Acting;
}

/// Runs `work` with `actor` as the one acting, for the entries written meanwhile.
pub async fn acting_as<F: std::future::Future>(actor: Actor, work: F) -> F::Output {
    ACTING
        .scope(
            Acting {
                actor,
                operation: None,
            },
            work,
        )
        .await
}

/// [`acting_as`], naming the operation (`ban`, `delete`, …) in the entries' particulars.
pub async fn acting_for<F: std::future::Future>(
    actor: Actor,
    operation: &'static str,
    work: F,
) -> F::Output {
    ACTING
        .scope(
            Acting {
                actor,
                operation: Some(operation),
            },
            work,
        )
        .await
}

/// Who is acting in this task: [`Actor::System`] outside [`acting_as`].
#[must_use]
pub fn current_actor() -> Actor {
    ACTING
        .try_with(|acting| acting.actor.clone())
        .unwrap_or(Actor::System)
}

fn current_operation() -> Option<&'static str> {
    ACTING.try_with(|acting| acting.operation).ok().flatten()
}

/// One entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub action: &'a str,
    pub subject_id: Option<&'a str>,
    /// Particulars, never a secret.
    pub detail: Value,
    /// `None`: the task's [`current_actor`].
    pub actor: Option<Actor>,
    pub ip: Option<String>,
}

impl<'a> Entry<'a> {
    /// An entry about `subject_id` by the current actor, with no particulars.
    #[must_use]
    pub fn new(action: &'a str, subject_id: Option<&'a str>) -> Self {
        Self {
            action,
            subject_id,
            detail: Value::Object(serde_json::Map::new()),
            actor: None,
            ip: None,
        }
    }

    #[must_use]
    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    #[must_use]
    pub fn with(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Appends `entry` to the chain in `tx`.
///
/// # Errors
/// Database failures.
pub async fn record(identity: &Identity, tx: &mut Tx, entry: Entry<'_>) -> Result<(), StoreError> {
    record_under(identity.master(), identity.now_ms(), tx, entry).await
}

/// [`record`] for code that holds the master secret but no [`Identity`] (key rotation).
///
/// # Errors
/// Database failures.
pub async fn record_under(
    master: &MasterKey,
    now_ms: i64,
    tx: &mut Tx,
    entry: Entry<'_>,
) -> Result<(), StoreError> {
    let actor = entry.actor.clone().unwrap_or_else(current_actor);
    let q = tx.query(
        "UPDATE identity_audit_head SET last_seq = last_seq + 1 WHERE id = 1 \
         RETURNING last_seq, last_hash",
    );
    let head = tx.fetch_one(q).await?;
    let row = AuditRow {
        seq: head.try_get("last_seq")?,
        id: latchkey_protocol::id::new_id(PREFIX),
        occurred_at: now_ms,
        actor_type: actor.kind().to_owned(),
        actor_id: actor.id().map(str::to_owned),
        action: entry.action.to_owned(),
        subject_id: entry.subject_id.map(str::to_owned),
        detail: entry.detail.to_string(),
        ip: entry.ip,
        prev_hash: head.try_get("last_hash")?,
        hash: String::new(),
    };
    let hash = chain::hash(&chain::key(master), &row);
    let q = tx
        .query(
            "INSERT INTO identity_audit_log (seq, id, occurred_at, actor_type, actor_id, action, \
                 subject_id, detail, ip, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(row.seq)
        .bind(&row.id)
        .bind(row.occurred_at)
        .bind(&row.actor_type)
        .bind(&row.actor_id)
        .bind(&row.action)
        .bind(&row.subject_id)
        .bind(&row.detail)
        .bind(&row.ip)
        .bind(&row.prev_hash)
        .bind(&hash);
    tx.execute(q).await?;
    let q = tx
        .query("UPDATE identity_audit_head SET last_hash = $1 WHERE id = 1")
        .bind(&hash);
    tx.execute(q).await?;
    Ok(())
}

/// Records what an event says changed, when a privileged actor caused it (see the module
/// documentation); called by [`crate::events::emit`] in the event's transaction.
pub(crate) async fn record_event(
    identity: &Identity,
    tx: &mut Tx,
    event_type: &str,
    subject_id: Option<&str>,
    event_id: &str,
) -> Result<(), StoreError> {
    let actor = current_actor();
    if !actor.is_privileged() {
        return Ok(());
    }
    let mut detail = serde_json::json!({ "event_id": event_id });
    if let Some(operation) = current_operation() {
        detail["operation"] = Value::from(operation);
    }
    let entry = Entry::new(event_type, subject_id).by(actor).with(detail);
    record(identity, tx, entry).await
}

/// Records a security event about `user_id`'s account (a password or factor change): the
/// current actor's doing when that is an operator, a key or the command line, else the
/// person's own.
///
/// # Errors
/// Database failures.
pub async fn security(
    identity: &Identity,
    tx: &mut Tx,
    action: &str,
    user_id: &str,
    ctx: Option<&RequestContext>,
) -> Result<(), StoreError> {
    let actor = Some(current_actor())
        .filter(Actor::is_privileged)
        .unwrap_or_else(|| Actor::User(user_id.to_owned()));
    let mut entry = Entry::new(action, Some(user_id)).by(actor);
    entry.ip = ctx.and_then(RequestContext::ip_text);
    record(identity, tx, entry).await
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub occurred_at: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub subject_id: Option<String>,
    /// JSON text.
    pub detail: String,
    pub ip: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

pub(crate) const COLUMNS: &str = "seq, id, occurred_at, actor_type, actor_id, action, subject_id, \
     detail, ip, prev_hash, hash";

pub(crate) fn from_row(row: &latchkey_store::DbRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        occurred_at: row.try_get("occurred_at")?,
        actor_type: row.try_get("actor_type")?,
        actor_id: row.try_get("actor_id")?,
        action: row.try_get("action")?,
        subject_id: row.try_get("subject_id")?,
        detail: row.try_get("detail")?,
        ip: row.try_get("ip")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// A page of entries, newest first: those before `before_seq` (all, without it), about
/// `subject_id` if given.
///
/// # Errors
/// Database failures.
pub async fn page(
    identity: &Identity,
    before_seq: Option<i64>,
    subject_id: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_audit_log \
             WHERE seq < $1 AND (CAST($2 AS TEXT) IS NULL OR subject_id = $2) \
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(subject_id)
        .bind(i64::from(limit));
    let rows = tx.fetch_all(q).await?;
    tx.commit().await?;
    rows.iter().map(from_row).collect()
}
