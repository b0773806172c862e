//! Outgoing mail: codes and notices, queued in a transactional outbox and delivered by a worker
//! over SMTP (lettre), or kept in the database for the dev mailbox when no relay is set.
//!
//! A mail is written in the same transaction as the change that needs it, so it exists if and
//! only if the change committed. The worker leases due mails (`FOR UPDATE SKIP LOCKED` on
//! Postgres), sends each over its own connection, records the outcome and retries failures on a
//! schedule with jitter; a restart or a crash loses nothing, and a mail an SMTP server accepted
//! is never sent again. Bodies are sealed under the master secret while they wait (they hold
//! codes) and dropped once a relay took them. Nothing about a mail but its id is ever logged.

mod compose;
mod outbox;
pub mod smtp;
mod worker;

use std::time::Duration;

use latchkey_store::{StoreError, Tx};
use serde::{Deserialize, Serialize};

use crate::state::Identity;

pub(crate) use compose::MailKind;
pub(crate) use outbox::sweep;
pub use smtp::{Sender, SmtpUrl};
pub(crate) use worker::MailJob;

/// Purpose under which bodies are sealed.
const BODY_SEAL: &str = "mail body";

/// How mail leaves latchkey.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The relay; `None` keeps every mail in the dev mailbox (`/dev/mailbox`).
    pub smtp: Option<SmtpUrl>,
    /// The `From`; `None` for [`Sender::default_for`] the public URL.
    pub from: Option<Sender>,
    /// Delays before each retry of a failed delivery.
    pub retry_schedule: Vec<Duration>,
    /// The product's name in subjects and bodies.
    pub site_name: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp: None,
            from: None,
            retry_schedule: default_retry_schedule(),
            site_name: "latchkey".to_owned(),
        }
    }
}

/// 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h: ten attempts over about sixteen hours.
#[must_use]
pub fn default_retry_schedule() -> Vec<Duration> {
    [5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800]
        .map(Duration::from_secs)
        .to_vec()
}

#[derive(Serialize, Deserialize)]
struct Bodies {
    text: String,
    html: String,
}

/// A mail as the dev mailbox shows it.
#[derive(Debug, Clone)]
pub struct MailboxEntry {
    pub id: String,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// The `From` of every mail.
pub(crate) fn sender(identity: &Identity) -> Sender {
    let config = &identity.config();
    config
        .mail
        .from
        .clone()
        .unwrap_or_else(|| Sender::default_for(&config.mail.site_name, &config.public_url))
}

/// Whether mail stays in the database for `/dev/mailbox` (no SMTP relay is set).
#[must_use]
pub fn uses_dev_mailbox(identity: &Identity) -> bool {
    identity.config().mail.smtp.is_none()
}

/// Writes a mail to `to` into the outbox, in the caller's transaction.
///
/// # Errors
/// Database failures.
pub(crate) async fn queue_mail(
    identity: &Identity,
    tx: &mut Tx,
    to: &str,
    user_id: Option<&str>,
    kind: &MailKind<'_>,
) -> Result<(), StoreError> {
    write_mail(identity, tx, to, user_id, kind, false).await
}

/// Does all [`Self::queue_mail`] does (composing, sealing, the INSERT) but writes the row
/// `withheld`: it is never sent or shown. What a stand-in verification writes, so that its
/// request costs what a real one does.
///
/// # Errors
/// Database failures.
pub(crate) async fn withhold_mail(
    identity: &Identity,
    tx: &mut Tx,
    to: &str,
    kind: &MailKind<'_>,
) -> Result<(), StoreError> {
    write_mail(identity, tx, to, None, kind, true).await
}

async fn write_mail(
    identity: &Identity,
    tx: &mut Tx,
    to: &str,
    user_id: Option<&str>,
    kind: &MailKind<'_>,
    withheld: bool,
) -> Result<(), StoreError> {
    let config = &identity.config();
    let base_url = config.issuer();
    let composed = compose::compose(
        kind,
        compose::Context {
            site: &config.mail.site_name,
            base_url: &base_url,
            code_minutes: minutes(config.email_code_lifetime_ms),
            reset_minutes: minutes(config.reset_code_lifetime_ms),
        },
    )
    .expect("the mail templates render plain strings");
    let bodies = serde_json::to_vec(&Bodies {
        text: composed.text,
        html: composed.html,
    })
    .unwrap_or_default();
    let sealed = identity.master().seal(BODY_SEAL, &bodies);
    let id = latchkey_protocol::id::new_id(outbox::PREFIX);
    let now = identity.now_ms();
    outbox::insert(
        tx,
        &outbox::Queued {
            id: &id,
            kind: composed.slug,
            to,
            user_id,
            subject: &composed.subject,
            body_sealed: &sealed,
            withheld,
        },
        now,
    )
    .await?;
    if !withheld {
        // Woken once the mail is there to claim, not before.
        identity.mail_outbox().after_commit(tx);
    }
    Ok(())
}

fn open_bodies(identity: &Identity, sealed: &str) -> Bodies {
    identity
        .master()
        .open(BODY_SEAL, sealed)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Bodies {
            text: String::new(),
            html: String::new(),
        })
}

/// The newest mails, bodies opened, for the dev mailbox.
///
/// # Errors
/// Database failures.
pub async fn mailbox(identity: &Identity, limit: i64) -> Result<Vec<MailboxEntry>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let stored = outbox::recent(&mut tx, limit).await?;
    tx.commit().await?;
    Ok(stored
        .into_iter()
        .map(|mail| entry(identity, mail))
        .collect())
}

/// One mail, bodies opened, for the dev mailbox.
///
/// # Errors
/// Database failures.
pub async fn mailbox_entry(
    identity: &Identity,
    id: &str,
) -> Result<Option<MailboxEntry>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let stored = outbox::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(stored.map(|mail| entry(identity, mail)))
}

fn entry(identity: &Identity, mail: outbox::Stored) -> MailboxEntry {
    let bodies = open_bodies(identity, &mail.body_sealed);
    MailboxEntry {
        id: mail.id,
        kind: mail.kind,
        to: mail.to_address,
        subject: mail.subject,
        text: bodies.text,
        html: bodies.html,
        status: mail.status,
        attempts: mail.attempts,
        created_at: mail.created_at,
        sent_at: mail.sent_at,
    }
}

fn minutes(ms: i64) -> i64 {
    (ms / 60_000).max(1)
}
