//! Connection pools and the transaction type every query runs in.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AssertSqlSafe, Connection as _};
use tokio::time::Instant;

use crate::connections::{ConnectionPool, Limits, PooledConn, bounded, timed_out};
use crate::single::Single;
use crate::{Backend, DatabaseUrl, StoreError};

/// How much longer than the server's statement timeout the client waits before it gives up on
/// a statement itself. A slow database reports its own cancellation within this margin; a
/// silent one does not, and then only the client's bound ends the wait.
const CLIENT_GRACE: Duration = Duration::from_secs(1);
/// The least time the opening `BEGIN` gets (or the acquire timeout, if shorter), even when
/// waiting for a slot used up the acquire timeout: a healthy connection is not thrown away for
/// a queue it did not cause (behind PgBouncer, `BEGIN` itself may queue for a server
/// connection).
const OPEN_AT_LEAST: Duration = Duration::from_secs(1);

/// Sizes and timeouts for the connection pools.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Upper bound on open connections (Postgres) or concurrent readers (SQLite; SQLite always
    /// has exactly one writer connection).
    pub max_connections: u32,
    /// How long a caller waits for a free connection, a working link and its `BEGIN` before the
    /// database counts as unavailable.
    pub acquire_timeout: Duration,
    /// The longest one statement may run. Postgres cancels it itself (`statement_timeout`);
    /// on both backends the client also gives up a second later and drops the connection, for a
    /// database that stopped answering and so cannot cancel anything.
    pub statement_timeout: Duration,
    /// The longest background cleanup may take (rolling back a dropped transaction, closing a
    /// connection) before the connection is dropped without it and its slot freed.
    pub cleanup_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            cleanup_timeout: Duration::from_secs(5),
        }
    }
}

/// The database: a cheap handle to share. Its only way in is a transaction.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where write transactions run. For SQLite this pool has one connection, so writers queue
    /// here in order instead of spinning in SQLite's busy handler.
    write: Arc<ConnectionPool>,
    /// Where read-only transactions run. For SQLite a separate read-only pool (WAL readers never
    /// block the writer); for Postgres the same pool as `write`.
    read: Arc<ConnectionPool>,
    backend: Backend,
    /// What opens a write and a read-only transaction; through a transaction pooler each also
    /// sets the statement timeout for that transaction.
    begin_write: Arc<str>,
    begin_read: Arc<str>,
    /// `false` through a transaction pooler: statements go out unnamed and are never cached.
    persistent: bool,
    url: DatabaseUrl,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Prepares pools for `url`. Pools connect lazily, so an unreachable database is reported
    /// by the first transaction (and recovers by itself once the database is back); for SQLite
    /// the file is created and switched to WAL here.
    ///
    /// The statement timeout reaches Postgres as a startup option on a direct connection (no
    /// round trip). Through a transaction pooler it goes out as `SET LOCAL` in the same message
    /// as each `BEGIN`: a session setting would stay on whichever server connection ran it,
    /// and PgBouncer refuses unknown startup options, but a `SET LOCAL` batched with the
    /// `BEGIN` costs no extra round trip and lasts exactly one transaction. SQLite has no
    /// server to enforce it (its busy timeout still bounds lock waits); there, as everywhere,
    /// the client-side bound applies.
    ///
    /// # Errors
    /// If the SQLite file cannot be created or opened.
    pub async fn connect(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = url.backend();
        let timeout = settings.acquire_timeout;
        // Postgres reads a bare number as milliseconds; 0 would mean "no limit".
        let statement_ms = u64::try_from(settings.statement_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, i32::MAX.unsigned_abs().into());
        let limits = Limits {
            statement: settings.statement_timeout.saturating_add(CLIENT_GRACE),
            cleanup: settings.cleanup_timeout,
            open_at_least: OPEN_AT_LEAST.min(settings.acquire_timeout),
        };
        let (write, read) = match backend {
            Backend::Sqlite => {
                prepare_sqlite_file(url).await?;
                (
                    ConnectionPool::new(url.pool_url(false, statement_ms), 1, timeout, limits),
                    ConnectionPool::new(
                        url.pool_url(true, statement_ms),
                        settings.max_connections,
                        timeout,
                        limits,
                    ),
                )
            }
            Backend::Postgres => {
                let pool = ConnectionPool::new(
                    url.pool_url(false, statement_ms),
                    settings.max_connections,
                    timeout,
                    limits,
                );
                (pool.clone(), pool)
            }
        };
        let opening = |statement: &str| -> Arc<str> {
            if url.is_pooler() {
                format!("{statement}; SET LOCAL statement_timeout = {statement_ms}").into()
            } else {
                statement.into()
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                write,
                read,
                backend,
                begin_write: opening(backend.begin_write()),
                begin_read: opening(backend.begin_read()),
                persistent: !url.is_pooler(),
                url: url.clone(),
            }),
        })
    }

    #[must_use]
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    #[must_use]
    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    /// Starts a transaction that may write.
    ///
    /// Keep write transactions short and free of slow work (hashing, HTTP): on SQLite they hold
    /// the single writer connection.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if no connection could be had in time.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Tx::begin(
            &self.inner.write,
            &self.inner.begin_write,
            self.inner.persistent,
        )
        .await
    }

    /// Starts a transaction that only reads; a write inside it fails.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if no connection could be had in time.
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        Tx::begin(
            &self.inner.read,
            &self.inner.begin_read,
            self.inner.persistent,
        )
        .await
    }

    /// A single read-only statement on its own. One statement is its own consistent snapshot on
    /// both backends, so outside a transaction pooler it runs without the `BEGIN` and `COMMIT`
    /// round trips a [`Tx`] costs; through a pooler it is still wrapped in an explicit
    /// transaction. For hot read paths; several statements that must agree need
    /// [`Db::begin_read`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if no connection could be had in time.
    pub async fn read_one(&self) -> Result<Single, StoreError> {
        let wrap = !self.inner.persistent;
        let deadline = self.inner.read.acquire_deadline();
        let mut conn = self.inner.read.acquire(deadline).await?;
        if wrap {
            conn = open(conn, &self.inner.begin_read, deadline).await?;
        }
        Ok(Single {
            conn,
            persistent: self.inner.persistent,
            wrap,
        })
    }

    /// A single statement that may write, on its own: one statement is its own transaction on
    /// both backends (all of it or nothing, CTEs included), so outside a transaction pooler it
    /// runs without the `BEGIN` and `COMMIT` round trips a [`Tx`] costs; through a pooler it is
    /// still wrapped in an explicit transaction. For hot write paths whose whole work is one
    /// statement.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if no connection could be had in time.
    pub async fn write_one(&self) -> Result<Single, StoreError> {
        let wrap = !self.inner.persistent;
        let deadline = self.inner.write.acquire_deadline();
        let mut conn = self.inner.write.acquire(deadline).await?;
        if wrap {
            conn = open(conn, &self.inner.begin_write, deadline).await?;
        }
        Ok(Single {
            conn,
            persistent: self.inner.persistent,
            wrap,
        })
    }

    /// Whether the database answers a trivial query now.
    ///
    /// # Errors
    /// Whatever stopped the query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_read().await?;
        let q = tx.query("SELECT 1");
        tx.fetch_one(q).await?;
        tx.commit().await
    }

    /// Closes every pooled connection; in-flight transactions finish first.
    pub async fn close(&self) {
        self.inner.write.close().await;
        self.inner.read.close().await;
    }

    /// Connections checked out now, counting those a background rollback still holds: 0 once
    /// every transaction has ended and its cleanup is done.
    #[must_use]
    pub fn connections_in_use(&self) -> usize {
        let write = self.inner.write.in_use();
        if Arc::ptr_eq(&self.inner.write, &self.inner.read) {
            write
        } else {
            write + self.inner.read.in_use()
        }
    }
}

/// Sends a transaction's opening statement on a fresh checkout. It counts as part of getting a
/// connection: a database that cannot start a transaction by the acquire deadline (or within
/// [`OPEN_AT_LEAST`] of the checkout, if later) is unavailable, and the caller hears so
/// within about the acquire timeout, not the statement timeout.
async fn open(
    mut conn: PooledConn,
    statement: &Arc<str>,
    deadline: Instant,
) -> Result<PooledConn, StoreError> {
    let now = Instant::now();
    let limits = conn.limits();
    let limit = deadline
        .max(now + limits.open_at_least)
        .min(now + limits.statement);
    let outcome = tokio::time::timeout_at(
        limit,
        sqlx::raw_sql(AssertSqlSafe(statement.clone())).execute(conn.conn()),
    )
    .await;
    match outcome {
        Ok(Ok(_)) => Ok(conn),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => {
            conn.discard();
            Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut))
        }
    }
}

/// Creates the SQLite file if needed and turns on write-ahead logging, which is a property of
/// the file and so needs setting only once.
pub(crate) async fn prepare_sqlite_file(url: &DatabaseUrl) -> Result<(), StoreError> {
    let path = url.sqlite_path();
    if let Some(parent) = path.as_deref().and_then(std::path::Path::parent)
        && !parent.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
    }
    if let Some(path) = &path {
        // Readable by this user only (password hashes, addresses); SQLite gives its `-wal` and
        // `-shm` files the database file's mode. An existing file keeps its own.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::Unavailable(sqlx::Error::Io(e))),
        }
    }
    let mut conn = sqlx::AnyConnection::connect(&url.driver_url(false)).await?;
    sqlx::raw_sql("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// A database transaction. Dropping it without [`Tx::commit`] or [`Tx::rollback`] rolls it
/// back in the background, within the cleanup timeout or not at all: past it the connection is
/// dropped, which ends the transaction on the server too.
pub struct Tx {
    /// `None` once the transaction ended, or once a statement outlived its bound and the
    /// connection was dropped.
    conn: Option<PooledConn>,
    persistent: bool,
    /// What [`Tx::on_commit`] registered, run in order once `COMMIT` succeeded.
    on_commit: Vec<Box<dyn FnOnce() + Send + Sync>>,
}

/// A statement with its arguments, ready to run in a [`Tx`].
pub type Query = sqlx::query::Query<'static, Any, AnyArguments>;

impl Tx {
    async fn begin(
        pool: &Arc<ConnectionPool>,
        statement: &Arc<str>,
        persistent: bool,
    ) -> Result<Self, StoreError> {
        let deadline = pool.acquire_deadline();
        let conn = pool.acquire(deadline).await?;
        let conn = open(conn, statement, deadline).await?;
        Ok(Self {
            conn: Some(conn),
            persistent,
            on_commit: Vec::new(),
        })
    }

    /// The connection, while the transaction still has one.
    fn live(&mut self) -> Result<&mut PooledConn, StoreError> {
        self.conn.as_mut().ok_or_else(lost_connection)
    }

    /// A statement's outcome; past its bound the connection is dropped at once (what the
    /// database did with the statement is unknown, and it may not be answering at all), which
    /// frees its slot and leaves nothing for a background rollback to wait on.
    fn settle<T>(&mut self, outcome: Option<Result<T, StoreError>>) -> Result<T, StoreError> {
        outcome.unwrap_or_else(|| {
            if let Some(conn) = self.conn.take() {
                conn.discard();
            }
            Err(timed_out())
        })
    }

    /// A statement to run in this transaction. Write it in the SQL both backends share;
    /// anything dialect-specific comes from [`crate::dialect`].
    pub fn query(&self, sql: &'static str) -> Query {
        sqlx::query(sql).persistent(self.persistent)
    }

    /// A statement assembled at run time from trusted fragments (never from input: values are
    /// always bound).
    pub fn query_owned(&self, sql: String) -> Query {
        sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(self.persistent)
    }

    /// Runs a statement, returning the number of rows it affected.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn execute(&mut self, query: Query) -> Result<u64, StoreError> {
        let conn = self.live()?;
        let outcome = bounded(conn.limits().statement, query.execute(conn.conn())).await;
        self.settle(outcome).map(|done| done.rows_affected())
    }

    /// Runs a statement that returns at most one row.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn fetch_optional(&mut self, query: Query) -> Result<Option<AnyRow>, StoreError> {
        let conn = self.live()?;
        let outcome = bounded(conn.limits().statement, query.fetch_optional(conn.conn())).await;
        self.settle(outcome)
    }

    /// Runs a statement that returns exactly one row.
    ///
    /// # Errors
    /// The classified database error, or `RowNotFound`.
    pub async fn fetch_one(&mut self, query: Query) -> Result<AnyRow, StoreError> {
        let conn = self.live()?;
        let outcome = bounded(conn.limits().statement, query.fetch_one(conn.conn())).await;
        self.settle(outcome)
    }

    /// Runs a statement and collects every row.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn fetch_all(&mut self, query: Query) -> Result<Vec<AnyRow>, StoreError> {
        let conn = self.live()?;
        let outcome = bounded(conn.limits().statement, query.fetch_all(conn.conn())).await;
        self.settle(outcome)
    }

    /// Runs `callback` once this transaction has committed, after `COMMIT` succeeded and
    /// before [`Tx::commit`] returns; never if it rolls back, is dropped or fails to commit.
    /// For telling others about work the transaction wrote (waking a worker), which they
    /// could not see any earlier. Keep it short: it runs on the committing task.
    pub fn on_commit(&mut self, callback: impl FnOnce() + Send + Sync + 'static) {
        self.on_commit.push(Box::new(callback));
    }

    /// Makes the transaction's writes permanent, then runs what [`Tx::on_commit`] registered.
    ///
    /// # Errors
    /// The classified database error; nothing was written and no callback runs.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.finish("COMMIT").await?;
        for callback in std::mem::take(&mut self.on_commit) {
            callback();
        }
        Ok(())
    }

    /// Abandons the transaction now.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn rollback(mut self) -> Result<(), StoreError> {
        self.finish("ROLLBACK").await
    }

    /// Sends `COMMIT` or `ROLLBACK`. The connection goes back to the pool only if that
    /// completed; after an error it is closed, after a timeout dropped.
    async fn finish(&mut self, statement: &'static str) -> Result<(), StoreError> {
        let mut conn = self.conn.take().ok_or_else(lost_connection)?;
        let limit = conn.limits().statement;
        let outcome = bounded(limit, sqlx::raw_sql(statement).execute(conn.conn())).await;
        match outcome {
            Some(Ok(_)) => {
                conn.set_clean(true);
                Ok(())
            }
            Some(Err(error)) => Err(error),
            None => {
                conn.discard();
                Err(timed_out())
            }
        }
    }
}

/// The error for a statement on a transaction whose connection was dropped when an earlier
/// statement timed out.
fn lost_connection() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "the transaction lost its connection when a statement timed out",
    )))
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // Unfinished: an error or a cancelled request. Roll back off the request path; the
        // driver first drains whatever an interrupted statement left unread. A connection that
        // cannot be rolled back is closed rather than reused, and one whose database does not
        // answer within the cleanup bound is dropped on the spot: the slot frees either way.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let limit = conn.limits().cleanup;
                let rollback = sqlx::raw_sql("ROLLBACK").execute(conn.conn());
                match tokio::time::timeout(limit, rollback).await {
                    Ok(Ok(_)) => conn.set_clean(true),
                    Ok(Err(_)) => {}
                    Err(_) => conn.discard(),
                }
            });
        }
    }
}
