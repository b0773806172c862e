//! The mail worker: leases due mails, sends them, records each outcome and schedules retries.
//!
//! A lease outlives the longest attempt (every SMTP command has a timeout, and the whole send
//! another), so two instances never send one mail at once; an instance that dies mid-send
//! leaves its lease to run out and another sends the mail. A mail is marked sent in the
//! transaction right after the server's final `250`, and is never claimed again after that.

use std::sync::Arc;
use std::time::Duration;

use latchkey_store::StoreError;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::outbox::{self, Claimed, MailStatus, Outcome};
use crate::state::Identity;

/// Timeout of each SMTP command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of a whole attempt (connect, TLS, auth, envelope, data).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Mails in flight per instance.
const CONCURRENCY: usize = 4;
/// Sent and failed mails are kept this long (the dev mailbox shows them), then deleted; so are
/// finished sign-up, sign-in and reset verifications.
const KEEP_MS: i64 = 7 * DAY_MS;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

enum Transport {
    /// No relay: the outbox row is the delivery; the dev mailbox shows it.
    Mailbox,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// The worker of one instance.
pub struct MailWorker {
    identity: Identity,
    transport: Transport,
    sender: Mailbox,
    domain: String,
    poll_interval: Duration,
}

impl std::fmt::Debug for MailWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailWorker")
            .field("smtp", &matches!(self.transport, Transport::Smtp(_)))
            .finish_non_exhaustive()
    }
}

impl MailWorker {
    /// A worker for `identity`'s mail settings.
    ///
    /// # Errors
    /// If the SMTP transport cannot be built.
    pub fn new(identity: Identity) -> Result<Self, String> {
        let sender = identity.sender();
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
            poll_interval: Duration::from_secs(1),
        })
    }

    fn lease_ms() -> i64 {
        i64::try_from((ATTEMPT_TIMEOUT + Duration::from_secs(30)).as_millis()).unwrap_or(i64::MAX)
    }

    /// Sends until `stop` is cancelled, then lets attempts in flight finish.
    pub async fn run(self, stop: CancellationToken) {
        let worker = Arc::new(self);
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        let mut next_sweep = tokio::time::Instant::now();
        loop {
            if stop.is_cancelled() {
                break;
            }
            if tokio::time::Instant::now() >= next_sweep {
                next_sweep += SWEEP_EVERY;
                if let Err(error) = worker.sweep().await {
                    tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not sweep old mail");
                }
            }
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match worker.claim(free).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not claim mail");
                        Vec::new()
                    }
                }
            };
            let idle = claimed.is_empty();
            for mail in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let worker = worker.clone();
                tokio::spawn(async move {
                    worker.deliver(mail).await;
                    drop(permit);
                });
            }
            if idle || slots.available_permits() == 0 {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = worker.identity.inner.mail_outbox.notified() => {
                        // Let the transaction that wrote the mail commit.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    () = tokio::time::sleep(worker.poll_interval) => {}
                }
            }
        }
        let all = u32::try_from(CONCURRENCY).unwrap_or(u32::MAX);
        let _ = slots.acquire_many(all).await;
    }

    async fn claim(&self, max: usize) -> Result<Vec<Claimed>, StoreError> {
        let db = self.identity.db();
        let now = latchkey_protocol::time::now_ms();
        let mut tx = db.begin().await?;
        let claimed =
            outbox::claim(&mut tx, db.backend(), max, now, now + Self::lease_ms()).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn sweep(&self) -> Result<(), StoreError> {
        let before = latchkey_protocol::time::now_ms() - KEEP_MS;
        let mut tx = self.identity.db().begin().await?;
        outbox::sweep(&mut tx, before).await?;
        crate::verifications::sweep(&mut tx, before).await?;
        // Every limit's window is an hour at most; a day-old counter counts for nothing.
        crate::throttle::sweep(&mut tx, latchkey_protocol::time::now_ms() - DAY_MS).await?;
        crate::sessions::sweep(&mut tx, latchkey_protocol::time::now_ms() - 30 * DAY_MS).await?;
        tx.commit().await
    }

    async fn deliver(&self, mail: Claimed) {
        let (outcome, attempt) = match self.attempt(&mail).await {
            Ok(Some(sent)) => sent,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = %latchkey_web::ErrorChain(&error), mail.id = %mail.id, "could not prepare a mail");
                return;
            }
        };
        let now = latchkey_protocol::time::now_ms();
        let recorded = async {
            let mut tx = self.identity.db().begin().await?;
            let recorded = outbox::record(&mut tx, &mail, &outcome, now).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(recorded)
        }
        .await;
        match recorded {
            Ok(true) => tracing::info!(
                mail.id = %mail.id,
                attempt,
                outcome = outcome.status.as_str(),
                error = outcome.error.as_deref(),
                "mail attempt"
            ),
            Ok(false) => {
                tracing::warn!(mail.id = %mail.id, "a mail's lease ran out before its attempt was recorded")
            }
            // The lease runs out and the mail is tried again: at least once, never lost.
            Err(error) => {
                tracing::warn!(error = %latchkey_web::ErrorChain(&error), mail.id = %mail.id, "could not record a mail attempt");
            }
        }
    }

    /// Sends one attempt; `Ok(None)` when the mail is gone.
    async fn attempt(&self, mail: &Claimed) -> Result<Option<(Outcome, i64)>, StoreError> {
        let mut tx = self.identity.db().begin_read().await?;
        let stored = outbox::get(&mut tx, &mail.id).await?;
        tx.commit().await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let attempt = mail.attempts + 1;
        let now = latchkey_protocol::time::now_ms();
        let smtp = match &self.transport {
            Transport::Mailbox => {
                return Ok(Some((sent(false, now), attempt)));
            }
            Transport::Smtp(smtp) => smtp,
        };
        let Some(message) = self.message(&stored) else {
            // An address lettre cannot write into a header will never send.
            let outcome = Outcome {
                status: MailStatus::Failed,
                next_attempt_at: now,
                error: Some("unusable recipient address".to_owned()),
                clear_body: true,
            };
            return Ok(Some((outcome, attempt)));
        };
        let sent_or_not = tokio::time::timeout(ATTEMPT_TIMEOUT, smtp.send(message)).await;
        let now = latchkey_protocol::time::now_ms();
        let error = match sent_or_not {
            Ok(Ok(_)) => return Ok(Some((sent(true, now), attempt))),
            Ok(Err(error)) => describe(&error),
            Err(_) => "timeout".to_owned(),
        };
        let schedule = &self.identity.config().mail.retry_schedule;
        let outcome = match crate::webhooks::delivery::next_delay(schedule, attempt, None) {
            Some(delay) => Outcome {
                status: MailStatus::Pending,
                next_attempt_at: now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                error: Some(error),
                clear_body: false,
            },
            None => Outcome {
                status: MailStatus::Failed,
                next_attempt_at: now,
                error: Some(error),
                clear_body: true,
            },
        };
        Ok(Some((outcome, attempt)))
    }

    fn message(&self, stored: &outbox::Stored) -> Option<Message> {
        let to: Mailbox = stored.to_address.parse().ok()?;
        let bodies = self.identity.open_bodies(&stored.body_sealed);
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
