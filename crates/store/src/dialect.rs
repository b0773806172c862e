//! Every difference between SQLite and Postgres that latchkey cares about, in one place.
//!
//! Queries elsewhere are written once in the SQL both backends accept (`$1` placeholders,
//! `ON CONFLICT … DO UPDATE`, `RETURNING`, `BIGINT` milliseconds, `TEXT` ids and JSON). When a
//! part needs something the dialects spell differently, the spelling goes here, named for
//! what it does, never as an `if postgres` inside a query.

/// Which database engine a [`crate::Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file (the default).
    Sqlite,
    /// A Postgres server, directly or through a pooler.
    Postgres,
}

impl Backend {
    /// A stable lower-case name, for logs and test names.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The statement that opens a transaction that will write.
    ///
    /// SQLite's default `BEGIN` is deferred: two such transactions can both read and then both
    /// try to upgrade to a write lock, and one fails at once with `SQLITE_BUSY` whatever the busy
    /// timeout. `BEGIN IMMEDIATE` takes the write lock up front, so writers queue instead.
    #[must_use]
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// The statement that opens a transaction that only reads; writes inside it fail loudly on
    /// both backends (SQLite's read pool is opened read-only).
    #[must_use]
    pub(crate) fn begin_read(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN",
            Self::Postgres => "BEGIN READ ONLY",
        }
    }

    /// The suffix that makes a `SELECT` claim rows for this transaction without waiting on rows
    /// another worker already claimed. SQLite has a single writer, so a write transaction
    /// (`BEGIN IMMEDIATE`) already excludes every other claimer and needs no suffix.
    #[must_use]
    pub fn claim_rows_suffix(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// How a database error should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    Unavailable,
    Conflict,
    UniqueViolation,
    Other,
}

/// Sorts a driver error. Postgres reports five-character SQLSTATEs, SQLite numeric (extended)
/// result codes, so one table serves both without knowing which backend produced the error.
pub(crate) fn classify(error: &sqlx::Error) -> ErrorClass {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorClass::Unavailable,
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return ErrorClass::UniqueViolation;
            }
            match db.code().as_deref() {
                // Postgres: serialization_failure, deadlock_detected, lock_not_available.
                Some("40001" | "40P01" | "55P03") => ErrorClass::Conflict,
                // Postgres: connection exceptions, too many connections, query_canceled (the
                // statement timeout fired: the database did not answer in time), shutting
                // down, cannot connect now.
                Some(code)
                    if code.starts_with("08")
                        || matches!(code, "53300" | "57014" | "57P01" | "57P02" | "57P03") =>
                {
                    ErrorClass::Unavailable
                }
                // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6) with their extended codes.
                Some(code) if sqlite_primary_code(code).is_some_and(|c| c == 5 || c == 6) => {
                    ErrorClass::Conflict
                }
                // SQLite: SQLITE_CANTOPEN (14), SQLITE_IOERR (10), SQLITE_FULL (13).
                Some(code)
                    if sqlite_primary_code(code).is_some_and(|c| matches!(c, 10 | 13 | 14)) =>
                {
                    ErrorClass::Unavailable
                }
                _ => ErrorClass::Other,
            }
        }
        _ => ErrorClass::Other,
    }
}

/// SQLite extended result codes keep the primary code in their low byte.
fn sqlite_primary_code(code: &str) -> Option<u32> {
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse::<u32>().ok().map(|c| c & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_extended_codes_reduce_to_primary() {
        assert_eq!(sqlite_primary_code("517"), Some(5)); // SQLITE_BUSY_SNAPSHOT
        assert_eq!(sqlite_primary_code("5"), Some(5));
        assert_eq!(sqlite_primary_code("40001"), Some(0x41)); // numeric, but not a SQLite code we use
        assert_eq!(sqlite_primary_code("40P01"), None);
    }
}
