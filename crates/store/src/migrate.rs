//! Embedded, append-only migrations, applied once each under a lock.
//!
//! Each part of latchkey owns its tables and ships its migrations as a [`MigrationSet`]; the
//! binary applies all sets together, ordered by version. A migration is written once per
//! dialect ([`Migration::shared`] when both take the same text) and checksummed: editing one that was already applied is refused at start, since
//! the database would no longer match what the code expects.
//!
//! Postgres migrations take a session-level advisory lock, which a transaction pooler cannot
//! hold: they must run over a direct (or session-pooled) connection, `DIRECT_DATABASE_URL`.

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection as _, Row as _};

use crate::{Backend, DatabaseUrl, StoreError};

/// One schema change, in both dialects.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Unique across every set; sets use disjoint ranges (`app`: 1000s, `identity`: 2000s).
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    /// A migration whose text both dialects take as it is: one file, applied (and checksummed)
    /// identically on SQLite and Postgres.
    #[must_use]
    pub const fn shared(version: i64, name: &'static str, sql: &'static str) -> Self {
        Self {
            version,
            name,
            sqlite: sql,
            postgres: sql,
        }
    }

    /// The text `backend` runs.
    #[must_use]
    pub fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }

    /// The checksum a database records when it applies this migration on `backend`.
    #[must_use]
    pub fn checksum(&self, backend: Backend) -> String {
        checksum(self.sql(backend))
    }
}

/// A part's migrations.
pub type MigrationSet = &'static [Migration];

/// What [`run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<i64>,
    /// Versions that were already in place.
    pub already_applied: usize,
}

/// Arbitrary but fixed: the advisory-lock key that serialises latchkey migrations.
const ADVISORY_LOCK_KEY: i64 = 0x6c61_7463_686b_6579; // "latchkey"

/// Applies every pending migration of `sets` to the database at `url`.
///
/// # Errors
/// If the database is unreachable, a migration fails (it is rolled back and later ones are
/// not attempted), an applied migration's checksum differs from this binary's, or `url` is a
/// transaction-pooler URL.
pub async fn run(url: &DatabaseUrl, sets: &[&[Migration]]) -> Result<MigrationReport, StoreError> {
    if url.is_pooler() {
        return Err(StoreError::Migration(
            "migrations need a direct or session connection (they hold an advisory lock); \
             set DIRECT_DATABASE_URL to the database's direct or port-5432 URL"
                .to_owned(),
        ));
    }
    let mut migrations: Vec<&Migration> = sets.iter().flat_map(|set| set.iter()).collect();
    migrations.sort_by_key(|m| m.version);
    if let Some(pair) = migrations.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(StoreError::Migration(format!(
            "two migrations share version {} ({} and {})",
            pair[0].version, pair[0].name, pair[1].name
        )));
    }

    sqlx::any::install_default_drivers();
    let backend = url.backend();
    if backend == Backend::Sqlite {
        crate::pool::prepare_sqlite_file(url).await?;
    }
    let mut conn = AnyConnection::connect(&url.driver_url(false)).await?;
    let result = run_locked(&mut conn, backend, &migrations).await;
    // Closing the session releases the advisory lock even if unlocking failed.
    let _ = conn.close().await;
    result
}

async fn run_locked(
    conn: &mut AnyConnection,
    backend: Backend,
    migrations: &[&Migration],
) -> Result<MigrationReport, StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT 1 AS locked FROM pg_advisory_lock($1)")
            .bind(ADVISORY_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS latchkey_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await?;

    let mut report = MigrationReport::default();
    for migration in migrations {
        let sql = migration.sql(backend);
        let checksum = checksum(sql);
        let mut tx = conn.begin_with(backend.begin_write()).await?;
        let existing = sqlx::query("SELECT checksum FROM latchkey_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            let stored: String = row.try_get("checksum")?;
            if stored != checksum {
                return Err(StoreError::Migration(format!(
                    "migration {} ({}) was changed after it was applied; migrations are append-only",
                    migration.version, migration.name
                )));
            }
            report.already_applied += 1;
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::Migration(format!(
                    "migration {} ({}) failed: {e}",
                    migration.version, migration.name
                ))
            })?;
        sqlx::query(
            "INSERT INTO latchkey_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(&checksum)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            migration.version = migration.version,
            migration.name = migration.name,
            "applied migration"
        );
        report.applied.push(migration.version);
    }

    if backend == Backend::Postgres {
        sqlx::query("SELECT 1 AS unlocked FROM pg_advisory_unlock($1)")
            .bind(ADVISORY_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok(report)
}

/// For the parts' unit tests: `set` must be exactly the migrations `pinned` names, in order,
/// each with the checksum it was first applied with, on both backends. Databases record these
/// checksums when they apply a migration; a change here means an existing database would
/// refuse to start.
///
/// # Panics
/// At the first count, version or checksum that differs.
#[doc(hidden)]
#[track_caller]
pub fn assert_pinned_checksums(set: MigrationSet, pinned: &[(i64, &str)]) {
    assert_eq!(
        set.iter().map(|m| m.version).collect::<Vec<_>>(),
        pinned
            .iter()
            .map(|(version, _)| *version)
            .collect::<Vec<_>>(),
        "the migrations and the pinned versions"
    );
    for (migration, (version, checksum)) in set.iter().zip(pinned) {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            assert_eq!(
                migration.checksum(backend),
                *checksum,
                "{version} on {backend:?}"
            );
        }
    }
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    /// Databases hold these checksums: the spelling (lowercase hex of SHA-256) must never change.
    #[test]
    fn checksums_are_lowercase_hex_sha256() {
        assert_eq!(
            super::checksum("CREATE TABLE t (id INTEGER);\n"),
            "cb7bba9473513daa6e6daf9337f9d5822cbc95cac71c944b6bf85958041038e1"
        );
    }

    const SET: &[super::Migration] = &[super::Migration::shared(
        7,
        "t",
        "CREATE TABLE t (id INTEGER);\n",
    )];

    #[test]
    fn pinned_checksums_pass_as_pinned() {
        super::assert_pinned_checksums(
            SET,
            &[(
                7,
                "cb7bba9473513daa6e6daf9337f9d5822cbc95cac71c944b6bf85958041038e1",
            )],
        );
    }

    #[test]
    #[should_panic(expected = "7 on Sqlite")]
    fn an_edited_migration_fails_its_pin() {
        super::assert_pinned_checksums(SET, &[(7, "0".repeat(64).as_str())]);
    }

    #[test]
    #[should_panic(expected = "the pinned versions")]
    fn a_migration_without_a_pin_fails() {
        super::assert_pinned_checksums(SET, &[]);
    }
}
