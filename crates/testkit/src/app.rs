//! Starting the real server for a test, and everything it needs: a data directory, a fresh
//! database, and a way to stop it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use latchkey_server::Application;
use latchkey_server::config::{Config, LogFormat};
use latchkey_store::{Backend, DatabaseUrl, Db};
use latchkey_web::ErrorChain;
use tokio_util::sync::CancellationToken;

use crate::Call;
use crate::postgres::PgServer;

/// What a test gets: its backend, and the means to start servers on it.
#[derive(Clone)]
pub struct TestContext {
    pub backend: Backend,
    pg: Option<Arc<PgServer>>,
    owned: Arc<Mutex<Owned>>,
}

#[derive(Default)]
struct Owned {
    databases: Vec<String>,
    dirs: Vec<tempfile::TempDir>,
}

impl TestContext {
    pub(crate) fn new(backend: Backend, pg: Option<Arc<PgServer>>) -> Self {
        Self {
            backend,
            pg,
            owned: Arc::default(),
        }
    }

    /// The Postgres server under test, if this test runs on Postgres.
    #[must_use]
    pub fn postgres(&self) -> Option<&PgServer> {
        self.pg.as_deref()
    }

    /// A new empty directory, removed after the test.
    #[must_use]
    pub fn temp_dir(&self) -> PathBuf {
        let dir = tempfile::Builder::new()
            .prefix("latchkey-test-")
            .tempdir()
            .unwrap();
        let path = dir.path().to_path_buf();
        self.owned.lock().unwrap().dirs.push(dir);
        path
    }

    /// A URL for a new, empty database on this test's backend, removed after the test.
    pub async fn fresh_database(&self) -> DatabaseUrl {
        match self.backend {
            Backend::Sqlite => {
                DatabaseUrl::sqlite_file(&self.temp_dir().join("latchkey.db")).unwrap()
            }
            Backend::Postgres => {
                let pg = self
                    .pg
                    .as_ref()
                    .expect("a Postgres test has a Postgres server");
                let name = pg.create_database().await;
                self.owned.lock().unwrap().databases.push(name.clone());
                pg.url_for(&name).as_str().parse().unwrap()
            }
        }
    }

    /// A configuration for a new server: port 0 on loopback, a fresh data directory and
    /// database.
    pub async fn fresh_config(&self) -> Config {
        let data_dir = self.temp_dir();
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            public_url: None,
            database_url: self.fresh_database().await,
            direct_database_url: None,
            database_max_connections: 16,
            database_statement_timeout: std::time::Duration::from_secs(30),
            database_acquire_timeout: std::time::Duration::from_secs(5),
            log_format: LogFormat::Text,
            clerk_webhook_signing_secrets: Vec::new(),
            secret: None,
            trust_forwarded_for: false,
            sign_in_attempts_per_ip: 100,
            sign_ups_per_ip: 20,
            internal_webhook: true,
            webhook_allow_private_networks: false,
            webhook_retry_schedule: latchkey_identity_default_schedule(),
            webhook_timeout: std::time::Duration::from_secs(15),
            app_name: "Test App".to_owned(),
            metrics_addr: None,
            audit_retention: std::time::Duration::from_secs(365 * 24 * 60 * 60),
            authorized_parties: None,
            clerk: None,
            mail: latchkey_server::mail_config::MailConfig::default(),
            connections: latchkey_server::serve::ConnectionLimits::default(),
            allowed_hosts: Vec::new(),
            oauth: Vec::new(),
            fapi: latchkey_identity::FapiConfig::default(),
        }
    }

    /// Starts the server with a fresh configuration.
    pub async fn spawn(&self) -> TestApp {
        self.start(self.fresh_config().await).await
    }

    /// Starts the server with a fresh configuration changed by `adjust`.
    pub async fn spawn_with(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.fresh_config().await;
        adjust(&mut config);
        self.start(config).await
    }

    /// Starts the server with exactly `config` (for example a second instance on the same
    /// database).
    pub async fn start(&self, config: Config) -> TestApp {
        TestApp::start(config, latchkey_protocol::time::Clock::system()).await
    }

    /// As [`TestContext::start`], going by `clock`: a second instance (or a restart) on the
    /// same clock as a [`TestApp::clock`] that was moved forward.
    pub async fn start_with_clock(
        &self,
        config: Config,
        clock: latchkey_protocol::time::Clock,
    ) -> TestApp {
        TestApp::start(config, clock).await
    }

    pub(crate) async fn cleanup(&self) {
        let owned = std::mem::take(&mut *self.owned.lock().unwrap());
        if let Some(pg) = &self.pg {
            for name in &owned.databases {
                pg.drop_database(name).await;
            }
        }
        drop(owned.dirs);
    }
}

fn latchkey_identity_default_schedule() -> Vec<std::time::Duration> {
    [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
        .map(std::time::Duration::from_secs)
        .to_vec()
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, if the test turned it on.
    pub metrics_addr: Option<SocketAddr>,
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    pub config: Config,
    /// The server's own database handle, for assertions on stored state.
    pub db: Db,
    /// The server's identity part, to make changes without going through pages.
    pub identity: latchkey_identity::Identity,
    client: reqwest::Client,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    async fn start(config: Config, clock: latchkey_protocol::time::Clock) -> Self {
        latchkey_server::telemetry::init_with_default(LogFormat::Text, "off");
        let app = Application::build_with_clock(config.clone(), clock)
            .await
            .unwrap_or_else(|e| panic!("the server did not start: {}", ErrorChain(&e)));
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let db = app.db().clone();
        let identity = app.identity().clone();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(app.run(async move { token.cancelled().await }));
        Self {
            addr,
            metrics_addr,
            url: format!("http://{addr}"),
            config,
            db,
            identity,
            client: crate::client::client(),
            stop,
            task: Some(task),
        }
    }

    /// The clock the server goes by: `app.clock().advance(Duration::from_secs(3600))` makes
    /// it "an hour later" for every identity operation and token check, without touching the
    /// database.
    #[must_use]
    pub fn clock(&self) -> &latchkey_protocol::time::Clock {
        self.identity.clock()
    }

    /// `GET path`.
    #[must_use]
    pub fn get(&self, path: &str) -> Call {
        Call::new(self.client.get(self.at(path)))
    }

    /// `POST path`.
    #[must_use]
    pub fn post(&self, path: &str) -> Call {
        Call::new(self.client.post(self.at(path)))
    }

    /// Any method.
    #[must_use]
    pub fn request(&self, method: reqwest::Method, path: &str) -> Call {
        Call::new(self.client.request(method, self.at(path)))
    }

    /// A new browser profile (empty cookie jar) pointed at this server.
    #[must_use]
    pub fn browser(&self) -> crate::browser::Browser {
        crate::browser::Browser::new(&self.url)
    }

    /// `POST /api/webhooks/clerk` with `body` signed by `signer` as message `msg_id`.
    #[must_use]
    pub fn deliver(
        &self,
        signer: &crate::clerk::Signer,
        msg_id: &str,
        body: &serde_json::Value,
    ) -> Call {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut call = self
            .post("/api/webhooks/clerk")
            .header("content-type", "application/json");
        for (name, value) in signer.headers(msg_id, &bytes) {
            call = call.header(name, &value);
        }
        call.body(bytes)
    }

    /// The app's users table, as `latchkey app users` reads it.
    pub async fn app_users(&self) -> Vec<latchkey_app::users::AppUser> {
        let mut tx = self.db.begin_read().await.unwrap();
        let rows = latchkey_app::users::list(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        rows
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Stops the server as SIGTERM would and waits until it has.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
