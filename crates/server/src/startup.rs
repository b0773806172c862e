//! Building and running the server: migrations, the database, the router, the listener and the
//! background workers, and stopping them all in order.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
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
    #[error("cannot prepare the database ({url}): {source}")]
    Database { url: String, source: StoreError },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server that has bound its port and prepared its database, ready to [`Application::run`].
pub struct Application {
    listener: TcpListener,
    router: Router,
    db: Db,
    local_addr: SocketAddr,
    public_url: url::Url,
}

impl Application {
    /// Prepares everything that can fail before serving: the data directory, migrations, the
    /// connection pools and the listening socket.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
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

        if config.clerk_webhook_signing_secrets.is_empty() {
            tracing::warn!(
                "CLERK_WEBHOOK_SIGNING_SECRET is not set: POST /api/webhooks/clerk answers 503 until it is"
            );
        }
        let app_config = latchkey_app::AppConfig {
            clerk_webhook_secrets: config.clerk_webhook_signing_secrets.clone(),
        };
        let router = latchkey_web::with_tracing(
            Router::new()
                .route("/healthz", get(health::healthz))
                .route("/readyz", get(health::readyz))
                .with_state(db.clone())
                .merge(latchkey_app::router(latchkey_app::AppState::new(
                    db.clone(),
                    &app_config,
                ))),
        );

        Ok(Self {
            listener,
            router,
            db,
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
        let serve_token = token.clone();
        tracing::info!(
            listen.addr = %self.local_addr,
            public.url = %self.public_url,
            database = %self.db.url(),
            "latchkey is serving"
        );
        let server = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            shutdown.await;
            serve_token.cancel();
            tracing::info!("shutting down: finishing in-flight requests");
        });
        let result = server.await;
        token.cancel();
        self.db.close().await;
        tracing::info!("stopped");
        result
    }
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
