//! The identity part's background work, every piece on the one runner in
//! `latchkey_store::jobs`: webhook delivery and mail (outbox jobs, woken when the transaction
//! that wrote their rows commits), and two periodic tasks, the sweeps of expired rows and the
//! signing keys' reload.

use std::time::Duration;

use latchkey_store::StoreError;
use latchkey_store::jobs::{Periodic, Task, Worker};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::keys::{KeysError, RELOAD_EVERY, SigningKeys};
use crate::mail::MailJob;
use crate::state::Identity;
use crate::webhooks::DeliverySettings;
use crate::webhooks::delivery::Delivery;

/// Sent and failed mails are kept this long (the dev mailbox shows them), then deleted; so are
/// finished sign-up, sign-in and reset verifications.
const KEEP_MS: i64 = 7 * DAY_MS;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Sweeps run at start, then this often.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);
/// How long a stop waits for a sweep or a reload in progress.
const PERIODIC_DRAIN: Duration = Duration::from_secs(10);

/// Why the background work could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum BackgroundError {
    #[error("cannot build an HTTP client for webhooks: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot prepare mail delivery: {0}")]
    Mail(String),
}

/// The identity's workers, built and ready to [`Background::spawn`].
#[derive(Debug)]
pub struct Background {
    delivery: Worker<Delivery>,
    mail: Worker<MailJob>,
    sweeps: Worker<Periodic<Sweeps>>,
    keys: Worker<Periodic<KeyReload>>,
}

impl Background {
    /// Workers for `identity`. `internal_base` is this instance's own loopback address, where
    /// deliveries to the app's receiver go in the all-in-one run.
    ///
    /// # Errors
    /// If the webhook HTTP clients or the SMTP transport cannot be built.
    pub fn new(
        identity: &Identity,
        delivery: DeliverySettings,
        internal_base: Option<String>,
    ) -> Result<Self, BackgroundError> {
        let delivery = Delivery::new(identity.clone(), delivery, internal_base)?;
        let delivery_settings = delivery.worker_settings();
        let mail = MailJob::new(identity.clone()).map_err(BackgroundError::Mail)?;
        let sweeps = Periodic::new(Sweeps(identity.clone()), SWEEP_EVERY, true);
        let sweep_settings = sweeps.settings(PERIODIC_DRAIN);
        let keys = Periodic::new(KeyReload(identity.keys().clone()), RELOAD_EVERY, false);
        let key_settings = keys.settings(PERIODIC_DRAIN);
        Ok(Self {
            delivery: Worker::new(delivery, delivery_settings).woken_by(identity.outbox().clone()),
            mail: Worker::new(mail, MailJob::worker_settings())
                .woken_by(identity.mail_outbox().clone()),
            sweeps: Worker::new(sweeps, sweep_settings),
            keys: Worker::new(keys, key_settings),
        })
    }

    /// Starts every worker; each ends once `stop` is cancelled and its work in flight drained.
    #[must_use]
    pub fn spawn(self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(self.delivery.run(stop.clone())),
            tokio::spawn(self.mail.run(stop.clone())),
            tokio::spawn(self.sweeps.run(stop.clone())),
            tokio::spawn(self.keys.run(stop.clone())),
        ]
    }
}

/// Deletes what has outlived its use: old mail and verifications, throttle counters, ended
/// sessions.
pub(crate) struct Sweeps(Identity);

impl Task for Sweeps {
    type Error = StoreError;
    const NAME: &'static str = "sweeps";

    async fn run(&self) -> Result<(), StoreError> {
        let now = self.0.now_ms();
        let before = now - KEEP_MS;
        let mut tx = self.0.db().begin().await?;
        crate::mail::sweep(&mut tx, before).await?;
        crate::verifications::sweep(&mut tx, before).await?;
        crate::mfa::challenge::sweep(&mut tx, before).await?;
        crate::oauth::states::sweep(&mut tx, before).await?;
        crate::passkeys::ceremony::sweep(&mut tx, before).await?;
        // Every limit's window is an hour at most; a day-old counter counts for nothing.
        crate::throttle::sweep(&mut tx, now - DAY_MS).await?;
        crate::sessions::sweep(&mut tx, now - 30 * DAY_MS).await?;
        // The overview shows 30 days; a year of per-day rows is kept.
        crate::daily::sweep(&mut tx, now.div_euclid(DAY_MS) - 366).await?;
        tx.commit().await?;
        let pruned =
            crate::audit::chain::prune(&self.0, now - self.0.config().audit_retention_ms).await?;
        if pruned > 0 {
            tracing::info!(
                entries = pruned,
                "pruned audit log entries past their retention"
            );
        }
        Ok(())
    }
}

/// Picks up keys other instances rotated in (see [`crate::keys`]).
pub(crate) struct KeyReload(SigningKeys);

impl Task for KeyReload {
    type Error = KeysError;
    const NAME: &'static str = "signing key reload";

    async fn run(&self) -> Result<(), KeysError> {
        self.0.reload().await
    }
}
