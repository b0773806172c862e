//! Connection pools and the transaction type every query runs in.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Connection as _};

use crate::connections::{ConnectionPool, PooledConn};
use crate::{Backend, DatabaseUrl, StoreError};

/// Sizes and timeouts for the connection pools.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Upper bound on open connections (Postgres) or concurrent readers (SQLite; SQLite always
    /// has exactly one writer connection).
    pub max_connections: u32,
    /// How long a caller waits for a free connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
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
    /// # Errors
    /// If the SQLite file cannot be created or opened.
    pub async fn connect(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = url.backend();
        let timeout = settings.acquire_timeout;
        let (write, read) = match backend {
            Backend::Sqlite => {
                prepare_sqlite_file(url).await?;
                (
                    ConnectionPool::new(url.driver_url(false), 1, timeout),
                    ConnectionPool::new(url.driver_url(true), settings.max_connections, timeout),
                )
            }
            Backend::Postgres => {
                let pool =
                    ConnectionPool::new(url.driver_url(false), settings.max_connections, timeout);
                (pool.clone(), pool)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                write,
                read,
                backend,
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
            self.inner.backend.begin_write(),
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
            self.inner.backend.begin_read(),
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
    pub async fn read_one(&self) -> Result<SingleRead, StoreError> {
        let wrap = !self.inner.persistent;
        let mut conn = self.inner.read.acquire().await?;
        if wrap {
            sqlx::raw_sql(self.inner.backend.begin_read())
                .execute(conn.conn())
                .await?;
        }
        Ok(SingleRead {
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
/// back in the background.
pub struct Tx {
    conn: Option<PooledConn>,
    persistent: bool,
}

/// One read-only statement from [`Db::read_one`]; running it consumes the value, so a second
/// statement cannot silently fall outside the first one's snapshot.
pub struct SingleRead {
    conn: PooledConn,
    persistent: bool,
    /// Whether `BEGIN` was sent (through a transaction pooler) and `COMMIT` must follow.
    wrap: bool,
}

impl SingleRead {
    /// The statement to run: a `SELECT`.
    pub fn query(&self, sql: &'static str) -> Query {
        sqlx::query(sql).persistent(self.persistent)
    }

    /// Runs the statement; at most one row.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn fetch_optional(mut self, query: Query) -> Result<Option<AnyRow>, StoreError> {
        let row = query.fetch_optional(self.conn.conn()).await?;
        self.finish().await?;
        Ok(row)
    }

    /// Runs the statement; exactly one row.
    ///
    /// # Errors
    /// The classified database error, or `RowNotFound`.
    pub async fn fetch_one(mut self, query: Query) -> Result<AnyRow, StoreError> {
        let row = query.fetch_one(self.conn.conn()).await?;
        self.finish().await?;
        Ok(row)
    }

    /// Runs the statement; every row.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn fetch_all(mut self, query: Query) -> Result<Vec<AnyRow>, StoreError> {
        let rows = query.fetch_all(self.conn.conn()).await?;
        self.finish().await?;
        Ok(rows)
    }

    async fn finish(&mut self) -> Result<(), StoreError> {
        if self.wrap {
            sqlx::raw_sql("COMMIT").execute(self.conn.conn()).await?;
        }
        // A statement that ran to completion leaves nothing on the wire; one that failed or
        // was cancelled leaves the connection unmarked, and so closed rather than reused.
        self.conn.set_clean(true);
        Ok(())
    }
}

/// A statement with its arguments, ready to run in a [`Tx`].
pub type Query = sqlx::query::Query<'static, Any, AnyArguments>;

impl Tx {
    async fn begin(
        pool: &Arc<ConnectionPool>,
        statement: &'static str,
        persistent: bool,
    ) -> Result<Self, StoreError> {
        let mut conn = pool.acquire().await?;
        sqlx::raw_sql(statement).execute(conn.conn()).await?;
        Ok(Self {
            conn: Some(conn),
            persistent,
        })
    }

    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        self.conn
            .as_mut()
            .expect("a transaction holds its connection until it ends")
            .conn()
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
        Ok(query.execute(self.conn()).await?.rows_affected())
    }

    /// Runs a statement that returns at most one row.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn fetch_optional(&mut self, query: Query) -> Result<Option<AnyRow>, StoreError> {
        Ok(query.fetch_optional(self.conn()).await?)
    }

    /// Runs a statement that returns exactly one row.
    ///
    /// # Errors
    /// The classified database error, or `RowNotFound`.
    pub async fn fetch_one(&mut self, query: Query) -> Result<AnyRow, StoreError> {
        Ok(query.fetch_one(self.conn()).await?)
    }

    /// Runs a statement and collects every row.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn fetch_all(&mut self, query: Query) -> Result<Vec<AnyRow>, StoreError> {
        Ok(query.fetch_all(self.conn()).await?)
    }

    /// Makes the transaction's writes permanent.
    ///
    /// # Errors
    /// The classified database error; nothing was written.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.finish("COMMIT").await
    }

    /// Abandons the transaction now.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn rollback(mut self) -> Result<(), StoreError> {
        self.finish("ROLLBACK").await
    }

    async fn finish(&mut self, statement: &'static str) -> Result<(), StoreError> {
        let mut conn = self.conn.take().expect("a transaction ends once");
        sqlx::raw_sql(statement).execute(conn.conn()).await?;
        conn.set_clean(true);
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // Unfinished: an error or a cancelled request. Roll back off the request path; the
        // driver first drains whatever an interrupted statement left unread. A connection that
        // cannot be rolled back is closed rather than reused.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if sqlx::raw_sql("ROLLBACK").execute(conn.conn()).await.is_ok() {
                    conn.set_clean(true);
                }
            });
        }
    }
}
