//! Tasks that run on a period in every instance (sweeps, reloads), as [`Job`]s: the claim is
//! "is it time?", so they share the worker's pacing, logging and graceful stop.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{Job, Lease, WorkerSettings};

/// Work done every period; no rows, no lease.
pub trait Task: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Names the task in logs.
    const NAME: &'static str;

    /// One run. A failure is logged and the task runs again at the next period.
    fn run(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// One due run of a periodic task.
#[derive(Debug, Clone, Copy)]
pub struct Tick;

impl std::fmt::Display for Tick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tick")
    }
}

/// Runs a [`Task`] every `period`.
pub struct Periodic<T> {
    task: T,
    period: Duration,
    next: Mutex<Instant>,
}

impl<T: Task> Periodic<T> {
    /// Runs `task` every `period`, the first time at once if `at_start`, else after a period.
    pub fn new(task: T, period: Duration, at_start: bool) -> Self {
        let now = Instant::now();
        Self {
            task,
            period,
            next: Mutex::new(if at_start { now } else { now + period }),
        }
    }

    /// One run at a time, looked at once a period; a stop waits up to `drain` for a run in
    /// progress.
    #[must_use]
    pub fn settings(&self, drain: Duration) -> WorkerSettings {
        WorkerSettings {
            concurrency: 1,
            batch: 1,
            lease: self.period,
            poll_interval: self.period,
            drain,
        }
    }

    /// Whether a run is due now; if so, the next one is a period later.
    fn take_due(&self) -> bool {
        let now = Instant::now();
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now < *next {
            return false;
        }
        *next = now + self.period;
        true
    }
}

impl<T: Task> Job for Periodic<T> {
    type Item = Tick;
    type Outcome = ();
    type Error = T::Error;
    const NAME: &'static str = T::NAME;

    async fn claim(&self, _lease: Lease, _max: usize) -> Result<Vec<Tick>, T::Error> {
        Ok(if self.take_due() {
            vec![Tick]
        } else {
            Vec::new()
        })
    }

    async fn run(&self, _tick: &Tick) -> Result<Option<()>, T::Error> {
        self.task.run().await.map(|()| None)
    }

    async fn record(&self, _tick: &Tick, (): ()) -> Result<(), T::Error> {
        Ok(())
    }
}
