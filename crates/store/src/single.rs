//! [`Single`]: one statement outside an explicit transaction.

use sqlx::any::AnyRow;

use crate::StoreError;
use crate::connections::{PooledConn, bounded, timed_out};
use crate::pool::Query;

/// One statement from [`Db::read_one`] or [`Db::write_one`]: its own transaction (one
/// snapshot, all or nothing). Running it consumes the value, so a second statement cannot
/// silently fall outside the first one's transaction.
pub struct Single {
    pub(crate) conn: PooledConn,
    pub(crate) persistent: bool,
    /// Whether `BEGIN` was sent (through a transaction pooler) and `COMMIT` must follow.
    pub(crate) wrap: bool,
}

impl Single {
    /// The statement to run (a `SELECT` from [`Db::read_one`]).
    pub fn query(&self, sql: &'static str) -> Query {
        sqlx::query(sql).persistent(self.persistent)
    }

    /// A statement assembled at run time from trusted fragments (never from input: values are
    /// always bound).
    pub fn query_owned(&self, sql: String) -> Query {
        sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(self.persistent)
    }

    /// Runs the statement; at most one row.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn fetch_optional(mut self, query: Query) -> Result<Option<AnyRow>, StoreError> {
        let limit = self.conn.limits().statement;
        let outcome = bounded(limit, query.fetch_optional(self.conn.conn())).await;
        let (this, row) = self.settle(outcome)?;
        this.finish().await?;
        Ok(row)
    }

    /// Runs the statement; exactly one row.
    ///
    /// # Errors
    /// The classified database error, or `RowNotFound`.
    pub async fn fetch_one(mut self, query: Query) -> Result<AnyRow, StoreError> {
        let limit = self.conn.limits().statement;
        let outcome = bounded(limit, query.fetch_one(self.conn.conn())).await;
        let (this, row) = self.settle(outcome)?;
        this.finish().await?;
        Ok(row)
    }

    /// Runs the statement; every row.
    ///
    /// # Errors
    /// The classified database error.
    pub async fn fetch_all(mut self, query: Query) -> Result<Vec<AnyRow>, StoreError> {
        let limit = self.conn.limits().statement;
        let outcome = bounded(limit, query.fetch_all(self.conn.conn())).await;
        let (this, rows) = self.settle(outcome)?;
        this.finish().await?;
        Ok(rows)
    }

    /// A statement's outcome; past its bound the connection is dropped at once, as in
    /// [`Tx`].
    fn settle<T>(self, outcome: Option<Result<T, StoreError>>) -> Result<(Self, T), StoreError> {
        match outcome {
            Some(Ok(value)) => Ok((self, value)),
            Some(Err(error)) => Err(error),
            None => {
                self.conn.discard();
                Err(timed_out())
            }
        }
    }

    async fn finish(mut self) -> Result<(), StoreError> {
        if self.wrap {
            let limit = self.conn.limits().statement;
            let outcome = bounded(limit, sqlx::raw_sql("COMMIT").execute(self.conn.conn())).await;
            self = self.settle(outcome)?.0;
        }
        // A statement that ran to completion leaves nothing on the wire; one that failed or
        // was cancelled leaves the connection unmarked, and so closed rather than reused.
        self.conn.set_clean(true);
        Ok(())
    }
}
