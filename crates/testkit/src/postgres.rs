//! A Postgres server for tests: fresh databases created per test and dropped afterwards.

use sqlx::{Connection as _, PgConnection};

/// The server named by `LATCHKEY_TEST_POSTGRES_URL`.
#[derive(Debug, Clone)]
pub struct PgServer {
    admin_url: url::Url,
}

impl PgServer {
    /// `None` when the variable is unset or empty. A set but malformed value panics: the
    /// operator asked for Postgres tests, so they must not silently not run.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let raw = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())?;
        let mut admin_url = url::Url::parse(raw.trim())
            .unwrap_or_else(|e| panic!("LATCHKEY_TEST_POSTGRES_URL is not a URL: {e}"));
        if admin_url.path().trim_start_matches('/').is_empty() {
            admin_url.set_path("/postgres");
        }
        Some(Self { admin_url })
    }

    /// The server URL with `database` as its path.
    #[must_use]
    pub fn url_for(&self, database: &str) -> url::Url {
        let mut url = self.admin_url.clone();
        url.set_path(&format!("/{database}"));
        url
    }

    /// Host and port of the server.
    #[must_use]
    pub fn host_port(&self) -> (String, u16) {
        (
            self.admin_url.host_str().unwrap_or("127.0.0.1").to_owned(),
            self.admin_url.port().unwrap_or(5432),
        )
    }

    /// The user tests connect as.
    #[must_use]
    pub fn user(&self) -> String {
        match self.admin_url.username() {
            "" => "postgres".to_owned(),
            user => user.to_owned(),
        }
    }

    /// Creates an empty database with a unique name and returns the name.
    ///
    /// # Panics
    /// If the server cannot be reached: Postgres tests were asked for and must fail.
    pub async fn create_database(&self) -> String {
        let name = format!(
            "latchkey_t_{}",
            latchkey_protocol::id::new_id("db")
                .trim_start_matches("db_")
                .to_ascii_lowercase()
        );
        let mut conn = self.admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        name
    }

    /// Drops a database created by [`PgServer::create_database`], disconnecting its users.
    pub async fn drop_database(&self, name: &str) {
        let mut conn = self.admin().await;
        if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("warning: could not drop test database {name}: {error}\n").as_bytes(),
            );
        }
        let _ = conn.close().await;
    }

    async fn admin(&self) -> PgConnection {
        PgConnection::connect(self.admin_url.as_str())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach Postgres at LATCHKEY_TEST_POSTGRES_URL ({}:{}): {e}",
                    self.admin_url.host_str().unwrap_or(""),
                    self.admin_url.port().unwrap_or(5432)
                )
            })
    }
}
