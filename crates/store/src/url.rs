//! Parsing and validating `DATABASE_URL`, and deriving what the driver is actually given.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::Backend;

/// A validated database URL. Its `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: url::Url,
    backend: Backend,
    pooler: bool,
}

/// Why a database URL was refused; the message is meant to be shown next to the setting's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error(
        "not a URL ({0}); expected postgres://user:password@host:port/database or sqlite:///path/to/file.db"
    )]
    Malformed(String),
    #[error("unsupported scheme \"{0}\"; expected postgres://, postgresql:// or sqlite://")]
    UnsupportedScheme(String),
    #[error("a postgres URL needs a host")]
    MissingHost,
    #[error("a postgres URL needs a database name in its path")]
    MissingDatabase,
    #[error("a sqlite URL needs a file path")]
    MissingPath,
    #[error("pgbouncer={0:?} is not understood; use pgbouncer=true or leave it out")]
    BadPoolerFlag(String),
    #[error("pgbouncer=true only applies to postgres URLs")]
    PoolerOnSqlite,
}

impl DatabaseUrl {
    /// The SQLite database file at `path`, created on first use.
    ///
    /// # Errors
    /// If `path` cannot be expressed as a URL (a relative path is made absolute first).
    pub fn sqlite_file(path: &Path) -> Result<Self, DatabaseUrlError> {
        let absolute =
            std::path::absolute(path).map_err(|e| DatabaseUrlError::Malformed(e.to_string()))?;
        let text = absolute
            .to_str()
            .ok_or_else(|| DatabaseUrlError::Malformed("the path is not UTF-8".to_owned()))?;
        let mut encoded = String::from("sqlite://");
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
                encoded.push(char::from(byte));
            } else {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
        encoded.parse()
    }

    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the URL asks for transaction-pooler mode (`?pgbouncer=true`).
    #[must_use]
    pub fn is_pooler(&self) -> bool {
        self.pooler
    }

    /// For SQLite, the database file's path.
    #[must_use]
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        (self.backend == Backend::Sqlite)
            .then(|| std::path::PathBuf::from(percent_decode(self.url.path())))
    }

    /// For Postgres, the database name.
    #[must_use]
    pub fn postgres_database(&self) -> Option<String> {
        (self.backend == Backend::Postgres)
            .then(|| percent_decode(self.url.path().trim_start_matches('/')))
    }

    /// The full URL, password included, for handing to a child process's environment. Never
    /// log it.
    #[must_use]
    pub fn expose_for_child_process(&self) -> String {
        self.url.to_string()
    }

    /// The URL handed to sqlx: our own parameters removed, the driver's equivalents added.
    pub(crate) fn driver_url(&self, sqlite_read_only: bool) -> String {
        let mut url = self.url.clone();
        let kept: Vec<(String, String)> = self
            .url
            .query_pairs()
            .filter(|(k, _)| k != "pgbouncer" && k != "mode")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &kept {
                pairs.append_pair(k, v);
            }
            match self.backend {
                Backend::Sqlite => {
                    pairs.append_pair("mode", if sqlite_read_only { "ro" } else { "rwc" });
                }
                Backend::Postgres if self.pooler => {
                    // Poolers hand each transaction to whichever server connection is free, so
                    // a statement prepared on one is unknown (or, worse, different) on the next.
                    pairs.append_pair("statement-cache-capacity", "0");
                }
                Backend::Postgres => {}
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url.to_string()
    }

    /// The URL the pools connect with: [`Self::driver_url`], plus, on a direct Postgres
    /// connection, `statement_timeout` as a startup option. A startup option costs no round
    /// trip and holds for every statement of the connection's life. Through a transaction
    /// pooler it is left out: PgBouncer refuses startup parameters it is not told to ignore,
    /// and a session setting would not follow the client to the next server connection anyway
    /// (see [`crate::Db::connect`] for what pooler mode does instead). Migrations connect with
    /// the plain driver URL, so a long migration is not cut short.
    pub(crate) fn pool_url(&self, sqlite_read_only: bool, statement_timeout_ms: u64) -> String {
        let plain = self.driver_url(sqlite_read_only);
        if self.backend != Backend::Postgres || self.pooler {
            return plain;
        }
        let Ok(mut url) = url::Url::parse(&plain) else {
            return plain;
        };
        // sqlx turns `options[name]=value` into `-c name=value` in the startup packet; given
        // after any `options` of the operator's own, it is the one that counts.
        url.query_pairs_mut().append_pair(
            "options[statement_timeout]",
            &statement_timeout_ms.to_string(),
        );
        url.to_string()
    }

    /// A form safe for logs: scheme, host, port and database, or the SQLite path.
    #[must_use]
    pub fn redacted(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("sqlite {}", self.url.path()),
            Backend::Postgres => format!(
                "postgres {}:{}{}{}",
                self.url.host_str().unwrap_or(""),
                self.url.port().unwrap_or(5432),
                self.url.path(),
                if self.pooler {
                    " (transaction pooler)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Decodes `%XX` escapes (and nothing else: `+` stays a plus in a path, and a `%` not
/// followed by two hex digits stays as written).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let url =
            url::Url::parse(raw.trim()).map_err(|e| DatabaseUrlError::Malformed(e.to_string()))?;
        let backend = match url.scheme() {
            "postgres" | "postgresql" => Backend::Postgres,
            "sqlite" => Backend::Sqlite,
            other => return Err(DatabaseUrlError::UnsupportedScheme(other.to_owned())),
        };
        let mut pooler = false;
        for (key, value) in url.query_pairs() {
            if key == "pgbouncer" {
                pooler = match value.as_ref() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => return Err(DatabaseUrlError::BadPoolerFlag(other.to_owned())),
                };
            }
        }
        match backend {
            Backend::Postgres => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(DatabaseUrlError::MissingHost);
                }
                if url.path().trim_start_matches('/').is_empty() {
                    return Err(DatabaseUrlError::MissingDatabase);
                }
            }
            Backend::Sqlite => {
                if pooler {
                    return Err(DatabaseUrlError::PoolerOnSqlite);
                }
                let path = url.path();
                if path.is_empty() || path == "/" {
                    return Err(DatabaseUrlError::MissingPath);
                }
            }
        }
        Ok(Self {
            url,
            backend,
            pooler,
        })
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_parse_and_hide_passwords() {
        let url: DatabaseUrl = "postgres://app:s3cret@db.example.com:6543/postgres?pgbouncer=true"
            .parse()
            .unwrap();
        assert_eq!(url.backend(), Backend::Postgres);
        assert!(url.is_pooler());
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let driver = url.driver_url(false);
        assert!(driver.contains("statement-cache-capacity=0"), "{driver}");
        assert!(!driver.contains("pgbouncer"), "{driver}");
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        assert!(matches!(
            "not a url".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::Malformed(_))
        ));
        assert!(matches!(
            "mysql://localhost/db".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            "postgres://localhost".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::MissingDatabase)
        ));
        assert!(matches!(
            "postgres://h/db?pgbouncer=yes".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::BadPoolerFlag(_))
        ));
        assert!(matches!(
            "sqlite:///tmp/x.db?pgbouncer=true".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::PoolerOnSqlite)
        ));
    }

    #[test]
    fn sqlite_files_round_trip_odd_paths() {
        let path = Path::new("/tmp/dir with space/latchkey#1.db");
        let url = DatabaseUrl::sqlite_file(path).unwrap();
        assert_eq!(url.backend(), Backend::Sqlite);
        assert_eq!(url.sqlite_path().unwrap(), path);
        assert!(url.driver_url(false).ends_with("?mode=rwc"));
        assert!(url.driver_url(true).ends_with("?mode=ro"));
        assert_eq!(url.pool_url(true, 30_000), url.driver_url(true));
    }

    #[test]
    fn direct_postgres_pools_carry_the_statement_timeout_and_pooled_ones_do_not() {
        let direct: DatabaseUrl = "postgres://app@db.example.com/app?sslmode=disable"
            .parse()
            .unwrap();
        let pooled = direct.pool_url(false, 30_000);
        let parsed = url::Url::parse(&pooled).unwrap();
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert!(pairs.contains(&("sslmode".to_owned(), "disable".to_owned())));
        assert!(pairs.contains(&("options[statement_timeout]".to_owned(), "30000".to_owned())));
        assert!(!direct.driver_url(false).contains("statement_timeout"));

        let pooler: DatabaseUrl = "postgres://app@db.example.com:6543/app?pgbouncer=true"
            .parse()
            .unwrap();
        assert_eq!(pooler.pool_url(false, 30_000), pooler.driver_url(false));
    }

    #[test]
    fn only_two_hex_digits_make_an_escape() {
        let url: DatabaseUrl = "sqlite:///tmp/a%20b%+1c%2.db".parse().unwrap();
        assert_eq!(
            url.sqlite_path().unwrap(),
            Path::new("/tmp/a b%+1c%2.db"),
            "%+1 is not an escape (a sign is not a hex digit)"
        );
        let url: DatabaseUrl = "postgres://u@h/db%5fone".parse().unwrap();
        assert_eq!(url.postgres_database().unwrap(), "db_one");
    }
}
