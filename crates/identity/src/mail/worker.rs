//! The mail worker as a job: leases due mails, sends them, records each outcome and schedules
//! retries (the runner in `latchkey_store::jobs` claims, paces, wakes and stops it).
//!
//! A lease outlives the longest attempt (every SMTP command has a timeout, and the whole send
//! another), so two instances never send one mail at once; an instance that dies mid-send
//! leaves its lease to run out and another sends the mail. A mail is marked sent in the
//! transaction right after the server's final `250`, and is never claimed again after that.

use std::time::Duration;

use latchkey_store::StoreError;
use latchkey_store::jobs::{Job, Lease, WorkerSettings, next_delay, retry_at};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use super::outbox::{self, Claimed, MailStatus, Outcome};
use crate::mail;
use crate::state::Identity;

/// Timeout of each SMTP command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of a whole attempt (connect, TLS, auth, envelope, data).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Mails in flight per instance.
const CONCURRENCY: usize = 4;

enum Transport {
    /// No relay: the outbox row is the delivery; the dev mailbox shows it.
    Mailbox,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Sending mail, for one instance.
pub(crate) struct MailJob {
    identity: Identity,
    transport: Transport,
    sender: Mailbox,
    domain: String,
}

impl std::fmt::Debug for MailJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailJob")
            .field("smtp", &matches!(self.transport, Transport::Smtp(_)))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mail {}", self.id)
    }
}

impl MailJob {
    /// A job for `identity`'s mail settings.
    ///
    /// # Errors
    /// If the SMTP transport cannot be built.
    pub(crate) fn new(identity: Identity) -> Result<Self, String> {
        let sender = mail::sender(&identity);
        let domain = sender.domain().to_owned();
        let transport = match &identity.config().mail.smtp {
            Some(url) => Transport::Smtp(url.transport(COMMAND_TIMEOUT, Some(&domain))?),
            None => Transport::Mailbox,
        };
        Ok(Self {
            identity,
            transport,
            sender: sender.0,
            domain,
        })
    }

    /// A lease outlives an attempt by half a minute; a stop waits for attempts in flight.
    pub(crate) fn worker_settings() -> WorkerSettings {
        WorkerSettings {
            concurrency: CONCURRENCY,
            batch: CONCURRENCY,
            lease: ATTEMPT_TIMEOUT + Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            drain: ATTEMPT_TIMEOUT + Duration::from_secs(5),
        }
    }
}

impl Job for MailJob {
    type Item = Claimed;
    type Outcome = Outcome;
    type Error = StoreError;
    const NAME: &'static str = "mail";

    fn now_ms(&self) -> i64 {
        self.identity.now_ms()
    }

    async fn claim(&self, lease: Lease, max: usize) -> Result<Vec<Claimed>, StoreError> {
        let db = self.identity.db();
        let mut tx = db.begin().await?;
        let claimed = outbox::claim(&mut tx, db.backend(), max, lease.now, lease.until).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Sends one attempt; `Ok(None)` when the mail is gone.
    async fn run(&self, mail: &Claimed) -> Result<Option<Outcome>, StoreError> {
        self.attempt(mail).await
    }

    async fn record(&self, mail: &Claimed, outcome: Outcome) -> Result<(), StoreError> {
        let now = self.identity.now_ms();
        let mut tx = self.identity.db().begin().await?;
        // A failure leaves the lease to run out and the mail is tried again: at least once,
        // never lost.
        let recorded = outbox::record(&mut tx, mail, &outcome, now).await?;
        tx.commit().await?;
        if recorded {
            tracing::info!(
                mail.id = %mail.id,
                attempt = mail.attempts + 1,
                outcome = outcome.status.as_str(),
                error = outcome.error.as_deref(),
                "mail attempt"
            );
        } else {
            tracing::warn!(mail.id = %mail.id, "a mail's lease ran out before its attempt was recorded");
        }
        Ok(())
    }
}

impl MailJob {
    async fn attempt(&self, mail: &Claimed) -> Result<Option<Outcome>, StoreError> {
        let mut tx = self.identity.db().begin_read().await?;
        let stored = outbox::get(&mut tx, &mail.id).await?;
        tx.commit().await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let attempt = mail.attempts + 1;
        let now = self.identity.now_ms();
        let smtp = match &self.transport {
            Transport::Mailbox => return Ok(Some(sent(false, now))),
            Transport::Smtp(smtp) => smtp,
        };
        let Some(message) = self.message(&stored) else {
            // An address lettre cannot write into a header will never send.
            return Ok(Some(Outcome {
                status: MailStatus::Failed,
                next_attempt_at: now,
                error: Some("unusable recipient address".to_owned()),
                clear_body: true,
            }));
        };
        let sent_or_not = tokio::time::timeout(ATTEMPT_TIMEOUT, smtp.send(message)).await;
        let now = self.identity.now_ms();
        let error = match sent_or_not {
            Ok(Ok(_)) => return Ok(Some(sent(true, now))),
            Ok(Err(error)) => describe(&error),
            Err(_) => "timeout".to_owned(),
        };
        let schedule = &self.identity.config().mail.retry_schedule;
        Ok(Some(match next_delay(schedule, attempt, None) {
            Some(delay) => Outcome {
                status: MailStatus::Pending,
                next_attempt_at: retry_at(now, delay),
                error: Some(error),
                clear_body: false,
            },
            None => Outcome {
                status: MailStatus::Failed,
                next_attempt_at: now,
                error: Some(error),
                clear_body: true,
            },
        }))
    }

    fn message(&self, stored: &outbox::Stored) -> Option<Message> {
        let to: Mailbox = stored.to_address.parse().ok()?;
        let bodies = mail::open_bodies(&self.identity, &stored.body_sealed);
        Message::builder()
            .from(self.sender.clone())
            .to(to)
            .subject(stored.subject.clone())
            .message_id(Some(format!("<{}@{}>", stored.id, self.domain)))
            .date_now()
            .multipart(MultiPart::alternative_plain_html(bodies.text, bodies.html))
            .ok()
    }
}

fn sent(clear_body: bool, now: i64) -> Outcome {
    Outcome {
        status: MailStatus::Sent,
        next_attempt_at: now,
        error: None,
        clear_body,
    }
}

/// The class of a failure and the server's reply code, never the reply text (which often
/// repeats the recipient's address). A relay whose certificate was refused (an unknown CA, an
/// expired certificate, another name) is `certificate`, so an operator can tell it from a relay
/// that is down: lettre files the handshake under connection errors.
fn describe(error: &lettre::transport::smtp::Error) -> String {
    let class = if error.is_timeout() {
        "timeout"
    } else if let Some(tls) = rustls_error(error) {
        if matches!(tls, rustls::Error::InvalidCertificate(_)) {
            "certificate"
        } else {
            "tls"
        }
    } else if error.is_tls() {
        "tls"
    } else if error.is_permanent() {
        "permanent"
    } else if error.is_transient() {
        "transient"
    } else if error.is_client() {
        "client"
    } else {
        "connection"
    };
    match error.status() {
        Some(code) => format!("{class} ({code})"),
        None => class.to_owned(),
    }
}

/// The rustls error behind `error`, if TLS is what failed. tokio-rustls wraps it in an
/// `io::Error`, whose `source()` skips it, hence the `get_ref`.
fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_certificate_is_found_behind_tokio_rustls_io_error() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(matches!(
            rustls_error(&refused),
            Some(rustls::Error::InvalidCertificate(_))
        ));
        assert!(rustls_error(&std::io::Error::other("connection refused")).is_none());
    }
}
