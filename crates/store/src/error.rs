//! What can go wrong talking to the database, sorted by what a caller should do about it.

use crate::dialect;

/// A database failure, classified so the web boundary can answer correctly: unavailable and
/// conflicting work is worth retrying (HTTP 503), everything else is a bug or bad data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or did not answer in time.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The transaction lost a race (serialization failure, deadlock, lock timeout); retrying the
    /// whole transaction is safe.
    #[error("the transaction conflicted with another one")]
    Conflict(#[source] sqlx::Error),
    /// A constraint the schema enforces was violated.
    #[error("a uniqueness constraint was violated")]
    UniqueViolation(#[source] sqlx::Error),
    /// Anything else: a bug in a query, or stored data that does not decode.
    #[error("database error")]
    Other(#[source] sqlx::Error),
    /// A migration could not be applied, or the applied history does not match this binary.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Stored data breaks a rule the code relies on (a row that must exist is gone, a column
    /// holds a value no version of latchkey writes): a bug or a hand edit, never retried.
    #[error("broken invariant: {0}")]
    Invariant(String),
}

impl StoreError {
    /// Whether retrying the same work later may succeed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Conflict(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match dialect::classify(&error) {
            dialect::ErrorClass::Unavailable => Self::Unavailable(error),
            dialect::ErrorClass::Conflict => Self::Conflict(error),
            dialect::ErrorClass::UniqueViolation => Self::UniqueViolation(error),
            dialect::ErrorClass::Other => Self::Other(error),
        }
    }
}
