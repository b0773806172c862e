//! The threads that run argon2 and the bounded queue in front of them.
//!
//! It owns its own worker threads, one per core, rather than using tokio's blocking pool: that
//! pool grows to hundreds of threads and also serves file and DNS work, so a burst of sign-ins
//! would oversubscribe the CPU and queue without bound. Here at most one job per worker runs,
//! at most [`QUEUE_PER_WORKER`] per worker wait, and anything beyond that is refused at once
//! with [`HashError::Busy`]. It must never block the async caller.

use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::Password;
use super::hash::{self, HashError, PasswordHash};

/// Jobs allowed to wait per worker before callers are told [`HashError::Busy`]. At 20 to 50 ms
/// a hash, a full queue is one to three seconds of work: longer than that, the client is better
/// off retrying than holding a connection open.
pub const QUEUE_PER_WORKER: usize = 64;

/// Nice value of the workers: request-serving threads win the CPU when both want it, and
/// hashing still gets all of it when the server is otherwise idle.
#[cfg(any(target_os = "linux", target_os = "android"))]
const WORKER_NICENESS: i32 = 19;

/// How long a worker waits for a job before giving its argon2 memory (19 MiB) back. A burst
/// of sign-ins keeps it; a quiet server holds none.
pub(super) const IDLE_RELEASE: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on dedicated threads. Cheap to clone: clones share the
/// threads and the queue. The threads stop once the last clone is dropped and the jobs already
/// queued have run.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: SyncSender<Job>,
    /// Jobs queued and not yet started.
    waiting: Arc<AtomicUsize>,
    /// Jobs refused because the queue was full.
    refused: AtomicU64,
    /// Hash of a random password nobody knows, made with the current parameters, checked
    /// against when the account does not exist.
    dummy: Arc<str>,
    workers: usize,
}

impl PasswordHasher {
    /// One worker per core this process may use.
    ///
    /// # Errors
    /// As [`PasswordHasher::new`].
    pub fn default_for_machine() -> Result<Self, HashError> {
        let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self::new(workers)
    }

    /// Starts `workers` threads (at least one) with room for [`QUEUE_PER_WORKER`] waiting jobs
    /// each. Computes the dummy hash on the calling thread first, which takes one hash's time:
    /// call it at start-up, not per request.
    ///
    /// # Errors
    /// [`HashError::Start`] if a thread cannot be spawned, [`HashError::Internal`] if the
    /// dummy hash cannot be computed (no randomness).
    pub fn new(workers: usize) -> Result<Self, HashError> {
        let workers = workers.max(1);
        Self::with_queue(workers, workers.saturating_mul(QUEUE_PER_WORKER))
    }

    /// [`PasswordHasher::new`] with an explicit queue length, so tests can fill the queue.
    pub(super) fn with_queue(workers: usize, queue: usize) -> Result<Self, HashError> {
        let workers = workers.max(1);
        let dummy = hash::hash_password(&random_bytes()?)?.into_string().into();
        // The calling thread hashes nothing else: it must not keep the memory.
        hash::release_memory();
        let (jobs, receiver) = mpsc::sync_channel(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            // Linux keeps 15 bytes of a thread's name: keep it short enough to show whole in
            // `top -H`. If spawning fails, returning drops `jobs`, which stops those started.
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || run_worker(&receiver))
                .map_err(HashError::Start)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                waiting: Arc::new(AtomicUsize::new(0)),
                refused: AtomicU64::new(0),
                dummy,
                workers,
            }),
        })
    }

    /// Jobs waiting in the queue for a worker.
    #[must_use]
    pub fn queue_depth(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Jobs refused since start because the queue was full (the callers were told `Busy`).
    #[must_use]
    pub fn refusals(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// How many worker threads run hashes.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Hashes a new password with the current parameters and a fresh salt.
    ///
    /// # Errors
    /// [`HashError::Busy`] when the queue is full (answer 503), [`HashError::Stopped`] or
    /// [`HashError::Internal`] on failures that are bugs or a broken machine.
    pub async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        self.run(move || hash::hash_password(password.expose().as_bytes()))
            .await
    }

    /// Whether `password` matches the stored PHC string. With `None` (no such account, or an
    /// account without a password) it checks the password against the dummy hash and answers
    /// `false`, so that an unknown account takes as long as a wrong password.
    ///
    /// # Errors
    /// [`HashError::Busy`] when the queue is full (answer 503), [`HashError::InvalidHash`] if
    /// `stored` is not an argon2 PHC string, [`HashError::Stopped`] if the workers are gone.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<&str>,
    ) -> Result<bool, HashError> {
        let Some(stored) = stored else {
            let dummy = Arc::clone(&self.inner.dummy);
            return self
                .run(move || {
                    // The outcome is thrown away: the point is to spend the same time.
                    let _ = hash::verify_password(password.expose().as_bytes(), &dummy);
                    Ok(false)
                })
                .await;
        };
        let stored = stored.to_owned();
        self.run(move || hash::verify_password(password.expose().as_bytes(), &stored))
            .await
    }

    /// Queues `work` if there is room, and waits for its answer without blocking the runtime.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, HashError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let waiting = Arc::clone(&self.inner.waiting);
        let job: Job = Box::new(move || {
            waiting.fetch_sub(1, Ordering::Relaxed);
            // The caller went away (its request was cancelled): skipping the work frees the
            // worker for callers still waiting, which matters most during a burst.
            if reply.is_closed() {
                return;
            }
            // Sending fails only if the caller left meanwhile; nobody is left to tell.
            let _ = reply.send(work());
        });
        self.inner.waiting.fetch_add(1, Ordering::Relaxed);
        self.inner.jobs.try_send(job).map_err(|error| {
            self.inner.waiting.fetch_sub(1, Ordering::Relaxed);
            match error {
                TrySendError::Full(_) => {
                    self.inner.refused.fetch_add(1, Ordering::Relaxed);
                    HashError::Busy
                }
                TrySendError::Disconnected(_) => HashError::Stopped,
            }
        })?;
        // The sender is dropped without an answer only if the job panicked.
        answer.await.map_err(|_| HashError::Stopped)?
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("workers", &self.inner.workers)
            .finish_non_exhaustive()
    }
}

fn run_worker(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting: one idle worker waits in `recv_timeout`, the
        // others for the lock, and jobs run with it released. A worker that waited
        // [`IDLE_RELEASE`] for a job gives its argon2 memory back and lets the next one wait,
        // so after a burst every worker's memory is returned within a few of those periods.
        // `recv_timeout` cannot panic, so a poisoned lock still guards a sound receiver.
        let next = queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(IDLE_RELEASE);
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                hash::release_memory();
                continue;
            }
            // Every PasswordHasher clone is gone.
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // A panicking job must not take the worker with it: the pool would shrink for good.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a password hashing job panicked");
        }
    }
}

/// Gives the calling hashing thread the lowest nice value. Linux's `SCHED_IDLE` policy was
/// measured against it (`latchkey-bench signins`, 2-vCPU VMs, kernel 6.18): the cheap requests'
/// p99 during a sign-in flood was 1.8 to 2.2 ms under `SCHED_IDLE` against 1.3 ms at nice 19,
/// and a traced request thread still waited a whole 4 ms tick behind a `SCHED_IDLE` hashing
/// thread (README, Benchmarks).
fn lower_priority() {
    // On Linux, PRIO_PROCESS with a thread id changes that one thread, not the whole process.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(error) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), WORKER_NICENESS)
    {
        tracing::debug!(%error, "could not lower the password hashing thread's priority");
    }
}

fn random_bytes() -> Result<[u8; 32], HashError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|_| HashError::Internal(argon2::password_hash::Error::RngFailure))?;
    Ok(bytes)
}
