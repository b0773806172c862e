//! latchkey's data layer: one way to reach the database, whichever database it is.
//!
//! * [`DatabaseUrl`] says which backend (SQLite or Postgres) and whether a transaction pooler sits
//!   in between (`?pgbouncer=true`, Prisma's spelling).
//! * [`Db`] hands out transactions and nothing else: every statement runs inside an explicit
//!   transaction ([`Tx`]), and [`Tx::query`] marks statements unnamed when a pooler is in use.
//!   That is the only query path, so pooler safety cannot be forgotten by a caller.
//! * [`dialect`] is the one place where SQLite and Postgres differ.
//! * [`migrate`] applies each part's embedded migrations, once, under a lock.
//! * [`jobs`] runs background work (outboxes, periodic tasks) claimed with leases, woken after
//!   the transaction that wrote it commits.
//!
//! This crate knows nothing of users, sessions or events; the parts own their tables.

mod connections;
pub mod dialect;
mod error;
pub mod jobs;
pub mod migrate;
mod pool;
mod single;
mod url;

pub use connections::{POOL_STATS, PoolStats};
pub use dialect::Backend;
pub use error::StoreError;
#[doc(hidden)]
pub use migrate::assert_pinned_checksums;
pub use migrate::{Migration, MigrationReport, MigrationSet};
pub use pool::{Db, PoolSettings, Query, Tx};
pub use single::Single;
pub use url::{DatabaseUrl, DatabaseUrlError};

/// Re-exported so the parts decode rows without depending on sqlx's layout themselves.
pub use sqlx::Row;
pub use sqlx::any::AnyRow as DbRow;

/// Reading a column with the error already classified as a [`StoreError`], so data functions
/// returning other error types can use `?` directly.
pub trait RowExt {
    /// The value of column `name`.
    ///
    /// # Errors
    /// If the column is missing or does not decode as `T`.
    fn col<T>(&self, name: &str) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>;

    /// The whole row as `T`, a `#[derive(sqlx::FromRow)]` struct whose fields are named (or
    /// `#[sqlx(rename)]`d) after the selected columns.
    ///
    /// # Errors
    /// If a column is missing or does not decode as its field's type.
    fn decode<T>(&self) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, DbRow>;
}

impl RowExt for DbRow {
    fn col<T>(&self, name: &str) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        Ok(self.try_get(name)?)
    }

    fn decode<T>(&self) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, DbRow>,
    {
        Ok(T::from_row(self)?)
    }
}
