//! Starting the release `latchkey` binary for a benchmark, and a fresh Postgres database.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use sqlx::Connection as _;

/// A running `latchkey serve`; killed when dropped.
pub struct Server {
    pub addr: String,
    /// The management API secret key the fresh server printed at its first start (empty for an
    /// instance started on a database another already prepared).
    pub secret_key: String,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

/// The `latchkey` binary next to this one, or the one `LATCHKEY_BENCH_BINARY` names (to
/// measure another build, e.g. the commit before a change, with the same tool).
pub fn latchkey_binary() -> Result<PathBuf, String> {
    if let Some(binary) = std::env::var_os("LATCHKEY_BENCH_BINARY") {
        return Ok(PathBuf::from(binary));
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let binary = me.with_file_name("latchkey");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "{} is missing: build it first with `cargo build --release --bins`",
            binary.display()
        ))
    }
}

impl Server {
    /// `POST /v1/users` with `body`, authorized with the server's secret key.
    pub fn create_user(&self, body: &serde_json::Value) -> Result<Request<Full<Bytes>>, String> {
        Request::post("/v1/users")
            .header("host", &self.addr)
            .header("authorization", format!("Bearer {}", self.secret_key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The server's resident memory in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        crate::machine::rss_mib(self.pid()?)
    }

    /// The server's data directory (its SQLite file when no `DATABASE_URL` is given).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts latchkey with `env` and waits until `/readyz` answers.
    pub async fn start(env: &[(&str, String)]) -> Result<Self, String> {
        Self::launch(&latchkey_binary()?, None, env, true).await
    }

    /// Starts `binary` on `port` (a free one when `None`) with `env`, waits for the secret key
    /// it prints on a fresh database if `first`, and until `/readyz` answers.
    pub async fn launch(
        binary: &std::path::Path,
        port: Option<u16>,
        env: &[(&str, String)],
        first: bool,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = match port {
            Some(port) => port,
            None => free_port()?,
        };
        let addr = format!("127.0.0.1:{port}");
        let mut command = tokio::process::Command::new(binary);
        command
            .args(["serve", "--addr", &addr, "--data-dir"])
            .arg(dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no standard output")?;
        let secret_key = tokio::time::timeout(Duration::from_secs(30), async move {
            use tokio::io::AsyncBufReadExt as _;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            if !first {
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return Ok(String::new());
            }
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(key) = line.split_whitespace().find(|w| w.starts_with("sk_live_")) {
                    let key = key.to_owned();
                    // Keep draining, so the server never blocks on a full pipe.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return Ok(key);
                }
            }
            Err("latchkey exited without printing its secret key".to_owned())
        })
        .await
        .map_err(|_| "latchkey printed no secret key within 30 s".to_owned())??;
        let server = Self {
            addr,
            secret_key,
            child,
            dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if crate::load::get_status(&server.addr, "/readyz").await == Some(200) {
                return Ok(server);
            }
            if tokio::time::Instant::now() > deadline {
                return Err("latchkey did not become ready within 30 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A port nothing listens on now.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A database created for one benchmark run, dropped afterwards.
pub struct BenchDatabase {
    pub name: String,
    pub url: String,
    admin: String,
}

impl BenchDatabase {
    pub async fn create(server_url: &str) -> Result<Self, String> {
        let mut admin =
            url::Url::parse(server_url).map_err(|e| format!("bad --postgres-url: {e}"))?;
        if admin.path().trim_start_matches('/').is_empty() {
            admin.set_path("/postgres");
        }
        let name = format!("latchkey_bench_{}", latchkey_protocol::time::now_ms());
        let mut conn = sqlx::PgConnection::connect(admin.as_str())
            .await
            .map_err(|e| format!("cannot reach Postgres: {e}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let mut url = admin.clone();
        url.set_path(&format!("/{name}"));
        Ok(Self {
            name,
            url: url.to_string(),
            admin: admin.to_string(),
        })
    }

    /// Runs `bench` on a fresh database on the Postgres server at `postgres_url`, dropped
    /// afterwards however `bench` ends, or with `None` (the server's own SQLite file) when no
    /// server is given.
    pub async fn around(
        postgres_url: Option<&str>,
        bench: impl AsyncFnOnce(Option<&Self>) -> Result<(), String>,
    ) -> Result<(), String> {
        let database = match postgres_url {
            Some(url) => Some(Self::create(url).await?),
            None => None,
        };
        let result = bench(database.as_ref()).await;
        if let Some(database) = database {
            database.drop_now().await;
        }
        result
    }

    pub async fn drop_now(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
