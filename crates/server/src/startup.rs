//! Building and running the server: the master secret, migrations, the database, the router,
//! the listener and the background workers, and stopping them all in order.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum::routing::get;
use latchkey_identity::keys::{KeysError, RELOAD_EVERY};
use latchkey_identity::passwords::{HashError, PasswordHasher};
use latchkey_identity::secrets::MasterKey;
use latchkey_identity::throttle::Limit;
use latchkey_identity::webhooks::{DeliverySettings, Worker};
use latchkey_identity::{Identity, IdentityConfig};
use latchkey_store::{Db, PoolSettings, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Config, MIGRATIONS, health};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot use the master key file {path}: {message}")]
    MasterKey {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("cannot prepare the database ({url}): {source}")]
    Database { url: String, source: StoreError },
    #[error("cannot load the signing keys: {0}")]
    Keys(#[from] KeysError),
    #[error("cannot start the password hasher: {0}")]
    Hasher(#[from] HashError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot register the app's own webhook receiver: {0}")]
    Webhooks(#[from] latchkey_identity::webhooks::EndpointError),
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// A server that has bound its port and prepared its database, ready to [`Application::run`].
pub struct Application {
    listener: TcpListener,
    router: Router,
    db: Db,
    identity: Identity,
    delivery: Worker,
    local_addr: SocketAddr,
    public_url: url::Url,
}

impl Application {
    /// Prepares everything that can fail before serving: the data directory and master secret,
    /// migrations, the connection pools, the signing keys and the listening socket.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        install_crypto_provider();
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let master = master_key(&config)?;
        let db = prepare_database(&config).await?;

        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
        let public_url = config.public_url.clone().unwrap_or_else(|| {
            url::Url::parse(&format!("http://{local_addr}"))
                .expect("a socket address forms a valid URL")
        });

        let identity = Identity::new(
            db.clone(),
            identity_config(&config, &public_url),
            &master,
            PasswordHasher::default_for_machine()?,
        )
        .await?;

        let mut receiver_secrets = config.clerk_webhook_signing_secrets.clone();
        if config.internal_webhook {
            // The all-in-one run: the identity's events reach the app's receiver like any
            // endpoint's, signed with a secret the app is given here.
            receiver_secrets.push(identity.ensure_internal_endpoint().await?);
        }
        if receiver_secrets.is_empty() {
            tracing::warn!(
                "CLERK_WEBHOOK_SIGNING_SECRET is not set: POST /api/webhooks/clerk answers 503 until it is"
            );
        }
        let app_config = latchkey_app::AppConfig {
            clerk_webhook_secrets: receiver_secrets,
        };
        let delivery = Worker::new(
            identity.clone(),
            DeliverySettings {
                schedule: config.webhook_retry_schedule.clone(),
                timeout: config.webhook_timeout,
                allow_private_networks: config.webhook_allow_private_networks,
                ..DeliverySettings::default()
            },
            Some(loopback_base(local_addr)),
        )?;
        let routes = Router::new()
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .with_state(db.clone())
            .merge(latchkey_web::assets::router())
            .merge(latchkey_identity::router(identity.clone()))
            .merge(latchkey_app::router(latchkey_app::AppState::new(
                db.clone(),
                &app_config,
            )))
            .layer(axum::middleware::from_fn_with_state(
                identity.clone(),
                latchkey_identity::auth::refresh_session_token,
            ));
        let router = latchkey_web::with_tracing(routes);

        Ok(Self {
            listener,
            router,
            db,
            identity,
            delivery,
            local_addr,
            public_url,
        })
    }

    /// The address actually bound (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    #[must_use]
    pub fn public_url(&self) -> &url::Url {
        &self.public_url
    }

    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish, stops the
    /// workers and closes the database.
    ///
    /// # Errors
    /// If the listener fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let token = CancellationToken::new();
        let mut workers = spawn_workers(&self.identity, &token);
        workers.push(tokio::spawn(self.delivery.run(token.clone())));
        let serve_token = token.clone();
        tracing::info!(
            listen.addr = %self.local_addr,
            public.url = %self.public_url,
            database = %self.db.url(),
            "latchkey is serving"
        );
        let server = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            serve_token.cancel();
            tracing::info!("shutting down: finishing in-flight requests");
        });
        let result = server.await;
        token.cancel();
        for worker in workers {
            let _ = worker.await;
        }
        self.db.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Background work that runs while serving; each task ends when `stop` is cancelled.
fn spawn_workers(
    identity: &Identity,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let keys = identity.keys().clone();
    let stop = stop.clone();
    vec![tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RELOAD_EVERY) => {}
            }
            if let Err(error) = keys.reload().await {
                tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not reload signing keys");
            }
        }
    })]
}

/// latchkey's outgoing HTTPS (webhooks, Clerk's APIs) uses rustls with ring.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where this instance reaches itself: its own port on loopback.
fn loopback_base(local: SocketAddr) -> String {
    let ip = if local.ip().is_unspecified() {
        match local {
            SocketAddr::V4(_) => std::net::IpAddr::from([127, 0, 0, 1]),
            SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        local.ip()
    };
    format!("http://{}", SocketAddr::new(ip, local.port()))
}

fn identity_config(config: &Config, public_url: &url::Url) -> IdentityConfig {
    let mut identity = IdentityConfig::new(public_url.clone());
    identity.trust_forwarded_for = config.trust_forwarded_for;
    identity.sign_in_ip_limit = Limit {
        max: config.sign_in_attempts_per_ip,
        window_ms: 10 * 60 * 1000,
    };
    identity.sign_up_ip_limit = Limit {
        max: config.sign_ups_per_ip,
        window_ms: 60 * 60 * 1000,
    };
    identity
}

/// The master secret: `LATCHKEY_SECRET` if set, else `master.key` in the data directory,
/// created (readable by this user only) on first start.
///
/// # Errors
/// If the key file cannot be read, written or parsed.
pub fn master_key(config: &Config) -> Result<MasterKey, StartError> {
    if let Some(secret) = &config.secret {
        return Ok(secret.clone());
    }
    let path = config.data_dir.join("master.key");
    let fail = |message: String| StartError::MasterKey {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::from_file_text(&text).map_err(|e| fail(e.to_string())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private_file(&path, key.to_file_text().as_bytes())
                .map_err(|e| fail(e.to_string()))?;
            tracing::info!(path = %path.display(), "created a master key; back it up with the database, or set LATCHKEY_SECRET");
            Ok(key)
        }
        Err(error) => Err(fail(error.to_string())),
    }
}

fn write_private_file(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

/// Applies migrations (over the direct URL when there is one) and opens the pools.
///
/// # Errors
/// If the database cannot be reached or migrated.
pub async fn prepare_database(config: &Config) -> Result<Db, StartError> {
    let migration_url = config.migration_url();
    latchkey_store::migrate::run(migration_url, MIGRATIONS)
        .await
        .map_err(|source| StartError::Database {
            url: migration_url.redacted(),
            source,
        })?;
    open_database(config).await
}

/// Opens the pools without migrating.
///
/// # Errors
/// If the SQLite file cannot be created.
pub async fn open_database(config: &Config) -> Result<Db, StartError> {
    let settings = PoolSettings {
        max_connections: config.database_max_connections,
        ..PoolSettings::default()
    };
    Db::connect(&config.database_url, &settings)
        .await
        .map_err(|source| StartError::Database {
            url: config.database_url.redacted(),
            source,
        })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
