//! One way to run background work: a [`Job`] says how to claim due items, run one and record
//! what came of it; a [`Worker`] drives any job the same way.
//!
//! * It claims a batch no larger than its free slots, with a [`Lease`] that outlives an attempt
//!   (the job writes it into its rows; Postgres claims use `FOR UPDATE SKIP LOCKED`, see
//!   [`crate::Backend::claim_rows_suffix`]), so instances never run one item at once and an
//!   instance that dies leaves its items to the next claim once the lease has run out.
//! * It runs each item on its own task, at most `concurrency` at a time, and records its
//!   outcome; retries are rows due again later ([`next_delay`] spaces them).
//! * It sleeps until [`Wake`] is rung or the fallback poll comes round. Work written in a
//!   transaction rings it through [`Tx::on_commit`], so the worker never looks before the rows
//!   are visible; the poll covers other instances' work and items coming due.
//! * On cancellation it claims nothing more and lets attempts in flight finish within the
//!   drain bound; what is still running then is abandoned, and its lease lets another instance
//!   (or the next start) take it: at least once, never lost.
//!
//! Periodic tasks (sweeps, reloads) are jobs too, through [`Periodic`]. This module knows no
//! table: each job owns its SQL.

mod periodic;
mod retry;
#[cfg(test)]
mod tests;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Tx;

pub use periodic::{Periodic, Task, Tick};
pub use retry::{next_delay, retry_at};

/// Background work a [`Worker`] runs.
pub trait Job: Send + Sync + 'static {
    /// What one claim hands out: a row's key, its attempt count and the lease it is held under.
    /// Its `Display` names it in logs (ids only, never content).
    type Item: Display + Send + Sync + 'static;
    /// What one attempt came to, for [`Job::record`].
    type Outcome: Send + 'static;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Names the job in logs.
    const NAME: &'static str;

    /// The time claims go by, in Unix milliseconds: the system clock unless the job's rows are
    /// stamped by another (a test's advanced clock).
    fn now_ms(&self) -> i64 {
        unix_ms()
    }

    /// Leases up to `max` due items until `lease.until`.
    fn claim(
        &self,
        lease: Lease,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Self::Item>, Self::Error>> + Send;

    /// Makes one attempt; `Ok(None)` when there is nothing to do or record any more (the item
    /// is gone).
    fn run(
        &self,
        item: &Self::Item,
    ) -> impl Future<Output = Result<Option<Self::Outcome>, Self::Error>> + Send;

    /// Records the attempt, and when the item is due again, if the lease is still this
    /// instance's.
    fn record(
        &self,
        item: &Self::Item,
        outcome: Self::Outcome,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A claim's time and the end of the lease it takes, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub now: i64,
    pub until: i64,
}

/// How a [`Worker`] paces a job.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Attempts in flight on this instance.
    pub concurrency: usize,
    /// Items one claim takes at most (also never more than the free slots).
    pub batch: usize,
    /// How long a claim holds an item: longer than the longest attempt.
    pub lease: Duration,
    /// How often to look for due items when not woken.
    pub poll_interval: Duration,
    /// How long a stop waits for attempts in flight.
    pub drain: Duration,
}

/// Rung when there is work for a worker. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Wake {
    notify: Arc<Notify>,
}

impl Wake {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the worker once `tx` has committed, so it never claims before the work is
    /// visible; not at all if `tx` rolls back.
    pub fn after_commit(&self, tx: &mut Tx) {
        let notify = self.notify.clone();
        tx.on_commit(move || notify.notify_one());
    }

    /// Wakes the worker now, for work already committed. A ring while the worker is busy is
    /// kept (one, not a count) and wakes its next wait at once.
    pub fn now(&self) {
        self.notify.notify_one();
    }

    async fn rung(&self) {
        self.notify.notified().await;
    }
}

/// Runs a [`Job`] until stopped.
pub struct Worker<J: Job> {
    job: Arc<J>,
    settings: WorkerSettings,
    wake: Option<Wake>,
}

impl<J: Job> std::fmt::Debug for Worker<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("job", &J::NAME)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<J: Job> Worker<J> {
    #[must_use]
    pub fn new(job: J, settings: WorkerSettings) -> Self {
        Self {
            job: Arc::new(job),
            settings,
            wake: None,
        }
    }

    /// Also looks for work whenever `wake` is rung, not only at each poll.
    #[must_use]
    pub fn woken_by(mut self, wake: Wake) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Claims and runs items until `stop` is cancelled, then drains (see the module's
    /// documentation).
    pub async fn run(self, stop: CancellationToken) {
        let concurrency = self.settings.concurrency.max(1);
        let mut running = JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            if stop.is_cancelled() {
                break;
            }
            let free = concurrency.saturating_sub(running.len());
            let claimed = if free == 0 {
                Vec::new()
            } else {
                self.claim(free.min(self.settings.batch.max(1))).await
            };
            let idle = claimed.is_empty();
            for item in claimed {
                let job = self.job.clone();
                running.spawn(async move { process(&*job, item).await });
            }
            let full = running.len() >= concurrency;
            if idle || full {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.rung() => {}
                    () = tokio::time::sleep(self.settings.poll_interval) => {}
                    Some(_) = running.join_next(), if full => {}
                }
            }
        }
        self.drain(running).await;
    }

    async fn rung(&self) {
        match &self.wake {
            Some(wake) => wake.rung().await,
            None => std::future::pending().await,
        }
    }

    async fn claim(&self, max: usize) -> Vec<J::Item> {
        let now = self.job.now_ms();
        let lease = Lease {
            now,
            until: now.saturating_add(millis(self.settings.lease)),
        };
        match self.job.claim(lease, max).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(job = J::NAME, error = %chain(&error), "could not claim work");
                Vec::new()
            }
        }
    }

    async fn drain(&self, mut running: JoinSet<()>) {
        let all_done = async { while running.join_next().await.is_some() {} };
        if tokio::time::timeout(self.settings.drain, all_done)
            .await
            .is_err()
        {
            tracing::warn!(
                job = J::NAME,
                abandoned = running.len(),
                "stopped with attempts still running; their leases run out and they are tried again"
            );
            running.shutdown().await;
        }
    }
}

/// One item: attempt, then record. Failures are logged; the item's lease runs out and a later
/// claim takes it again.
async fn process<J: Job>(job: &J, item: J::Item) {
    let outcome = match job.run(&item).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(job = J::NAME, item = %item, error = %chain(&error), "could not prepare an attempt");
            return;
        }
    };
    if let Err(error) = job.record(&item, outcome).await {
        tracing::warn!(job = J::NAME, item = %item, error = %chain(&error), "could not record an attempt");
    }
}

/// The current time in Unix milliseconds, as every table stores it.
fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// An error and its sources, for one log line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
