//! latchkey's own connection pool.
//!
//! sqlx's pool pings every connection as it is returned, a full round trip per transaction
//! that the database pays for as much as we do: measured here, the webhook transaction went
//! from 5 round trips to 4 and its throughput up by about a fifth once that ping was gone. This
//! pool hands out plain connections instead and knows when each one is clean:
//!
//! * a connection comes back clean only after its transaction's `COMMIT` or `ROLLBACK`
//!   completed, and goes straight back to the idle list with no further traffic;
//! * a transaction dropped unfinished (an error, a cancelled request) is rolled back by a
//!   spawned task, which first drains whatever the interrupted statement left on the wire; if
//!   that fails the connection is closed, never reused;
//! * nothing waits on the database without a limit: a statement that outlives its bound, a
//!   rollback or a graceful close that outlives the cleanup bound, has its connection dropped
//!   on the spot, so a database that stops answering cannot keep a slot for the TCP timeout
//!   (about 15 minutes on Linux);
//! * a connection idle for [`PING_IF_IDLE_FOR`] or more is pinged before reuse, so one broken
//!   by a database restart is replaced instead of failing a request;
//! * connections older than the maximum lifetime or idle past the idle timeout are closed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Connection as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::StoreError;

/// A pooled connection idle this long is checked before it is handed out.
pub(crate) const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);
/// Connections are replaced after this long, so server-side memory does not grow forever.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Idle connections beyond this are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A bounded set of connections to one database URL.
pub(crate) struct ConnectionPool {
    url: String,
    permits: Arc<Semaphore>,
    max_connections: usize,
    /// Most recently released last: reuse the warmest connection first.
    idle: Mutex<Vec<Idle>>,
    acquire_timeout: Duration,
    limits: Limits,
    closed: AtomicBool,
}

/// How long work on a checked-out connection may wait for the database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Client-side bound on one statement. Set a little above the server's own statement
    /// timeout, so that a database that is merely slow reports its cancellation first; this one
    /// fires only when the database stopped answering and so cannot enforce its own.
    pub(crate) statement: Duration,
    /// Bound on background cleanup: rolling back a dropped transaction, closing a connection.
    pub(crate) cleanup: Duration,
    /// The least time a transaction's opening statement gets, even when waiting for a slot
    /// used up the acquire timeout.
    pub(crate) open_at_least: Duration,
}

struct Idle {
    conn: AnyConnection,
    opened: Instant,
    released: Instant,
}

impl ConnectionPool {
    pub(crate) fn new(
        url: String,
        max_connections: u32,
        acquire_timeout: Duration,
        limits: Limits,
    ) -> Arc<Self> {
        let max_connections = usize::try_from(max_connections.max(1)).unwrap_or(1);
        Arc::new(Self {
            url,
            permits: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            idle: Mutex::new(Vec::new()),
            acquire_timeout,
            limits,
            closed: AtomicBool::new(false),
        })
    }

    /// When a caller starting now must have its connection by.
    pub(crate) fn acquire_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.acquire_timeout
    }

    /// A connection, waiting until `deadline` for a free slot and a working link.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        deadline: tokio::time::Instant,
    ) -> Result<PooledConn, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        }
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                POOL_STATS.waits.fetch_add(1, Ordering::Relaxed);
                tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| {
                        POOL_STATS.timeouts.fetch_add(1, Ordering::Relaxed);
                        StoreError::Unavailable(sqlx::Error::PoolTimedOut)
                    })?
                    .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?
            }
        };
        loop {
            let candidate = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(mut idle) = candidate else { break };
            if idle.opened.elapsed() >= MAX_LIFETIME || idle.released.elapsed() >= IDLE_TIMEOUT {
                self.close_in_background(idle.conn);
                continue;
            }
            if idle.released.elapsed() >= PING_IF_IDLE_FOR {
                match tokio::time::timeout_at(deadline, idle.conn.ping()).await {
                    Ok(Ok(())) => {}
                    // The link is gone (restart, firewall): drop it and try the next.
                    _ => continue,
                }
            }
            return Ok(PooledConn::new(
                idle.conn,
                idle.opened,
                self.clone(),
                permit,
            ));
        }
        let conn = tokio::time::timeout_at(deadline, AnyConnection::connect(&self.url))
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?
            // Whatever stops a new connection (refused, authentication, TLS), the database is
            // unavailable to us; callers answer 503 and retry.
            .map_err(StoreError::Unavailable)?;
        Ok(PooledConn::new(conn, Instant::now(), self.clone(), permit))
    }

    fn release(&self, conn: AnyConnection, opened: Instant) {
        if self.closed.load(Ordering::Acquire) || opened.elapsed() >= MAX_LIFETIME {
            self.close_in_background(conn);
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // The oldest idle connection sits at the bottom; retire it once it has idled too long.
        if idle
            .first()
            .is_some_and(|oldest| oldest.released.elapsed() >= IDLE_TIMEOUT)
        {
            let oldest = idle.remove(0);
            self.close_in_background(oldest.conn);
        }
        idle.push(Idle {
            conn,
            opened,
            released: Instant::now(),
        });
    }

    /// Refuses new work and closes idle connections; connections in use close when returned.
    /// Each close is bounded like any cleanup, so shutdown does not wait on a silent database.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for connection in idle {
            let _ = tokio::time::timeout(self.limits.cleanup, connection.conn.close()).await;
        }
    }

    /// Slots currently checked out (including those held by background rollbacks).
    pub(crate) fn in_use(&self) -> usize {
        self.max_connections
            .saturating_sub(self.permits.available_permits())
    }

    /// Says goodbye to the server off the request path. If the goodbye is not through within
    /// the cleanup bound the connection is dropped anyway, which closes its socket.
    fn close_in_background(&self, conn: AnyConnection) {
        let limit = self.limits.cleanup;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(limit, conn.close()).await;
            });
        }
    }
}

/// A connection checked out of a [`ConnectionPool`]. It returns to the pool only if marked
/// clean; otherwise it is closed.
pub(crate) struct PooledConn {
    conn: Option<AnyConnection>,
    opened: Instant,
    clean: bool,
    pool: Arc<ConnectionPool>,
    // Declared last: the slot frees only after the connection is back in the idle list.
    _permit: OwnedSemaphorePermit,
}

impl PooledConn {
    fn new(
        conn: AnyConnection,
        opened: Instant,
        pool: Arc<ConnectionPool>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            conn: Some(conn),
            opened,
            clean: false,
            pool,
            _permit: permit,
        }
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until dropped")
    }

    /// Marks the connection as between transactions, safe to reuse.
    pub(crate) fn set_clean(&mut self, clean: bool) {
        self.clean = clean;
    }

    /// The pool's time limits.
    pub(crate) fn limits(&self) -> Limits {
        self.pool.limits
    }

    /// Drops the connection without a goodbye: for a link that stopped answering, where a
    /// graceful close would only wait on the silent peer. Its socket closes now and its slot
    /// frees.
    pub(crate) fn discard(mut self) {
        drop(self.conn.take());
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.clean {
                self.pool.release(conn, self.opened);
            } else {
                self.pool.close_in_background(conn);
            }
        }
    }
}

/// Runs `work` (a statement on a checked-out connection) for at most `limit`; `None` when the
/// limit passed first, in which case the caller must discard the connection: whatever the
/// statement left on the wire is unknown.
pub(crate) async fn bounded<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Option<Result<T, StoreError>> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => Some(result.map_err(StoreError::from)),
        Err(_) => None,
    }
}

/// The error for a statement the database did not answer within its bound. An I/O timeout,
/// so it is classed as [`StoreError::Unavailable`] like any other lost link.
pub(crate) fn timed_out() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the database did not answer within the statement timeout",
    )))
}

/// How often a connection had to be waited for, and how often the wait ran out, since start
/// (every pool of the process together), for `/metrics`.
#[derive(Debug, Default)]
pub struct PoolStats {
    waits: AtomicU64,
    timeouts: AtomicU64,
}

impl PoolStats {
    /// Acquisitions that found every connection busy and waited.
    #[must_use]
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Waits that ran out (the request was answered 503).
    #[must_use]
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }
}

/// The process's pool statistics.
pub static POOL_STATS: PoolStats = PoolStats {
    waits: AtomicU64::new(0),
    timeouts: AtomicU64::new(0),
};
