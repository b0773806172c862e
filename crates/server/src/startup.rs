//! Building and running the server: the master secret, migrations, the database, the router,
//! the listener and the background workers, and stopping them all in order.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use latchkey_app::session::issuer::{backend_jwks_url, frontend_jwks_url};
use latchkey_app::session::revocations::Refresh;
use latchkey_app::session::{
    Auth, BackendApi, IssuerConfig, RemoteJwks, SessionVerifier, SourceError, StaticKeys,
    UserSource, clerk_frontend_api,
};
use latchkey_identity::background::{Background, BackgroundError};
use latchkey_identity::keys::KeysError;
use latchkey_identity::mail::MailSettings;
use latchkey_identity::passwords::{HashError, PasswordHasher};
use latchkey_identity::secrets::MasterKey;
use latchkey_identity::throttle::Limit;
use latchkey_identity::webhooks::DeliverySettings;
use latchkey_identity::{Identity, IdentityConfig};
use latchkey_protocol::jwt::{KeySource, VerifyingKey};
use latchkey_protocol::time::Clock;
use latchkey_store::jobs::{Periodic, Worker};
use latchkey_store::{Db, PoolSettings, StoreError};
use latchkey_web::csrf::Csrf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::host::AllowedHosts;
use crate::process::{create_private_dir, loopback_base, write_private_file};
pub use crate::process::{install_crypto_provider, shutdown_signal};
use crate::{Config, MIGRATIONS, bridge, health};
use latchkey_identity::webhooks::endpoints;

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
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot use the Clerk settings: {0}")]
    Clerk(String),
    #[error("cannot create the management API's first secret key: {0}")]
    SecretKey(StoreError),
    #[error("cannot prepare the background workers: {0}")]
    Background(#[from] BackgroundError),
}

/// A server that has bound its port and prepared its database, ready to [`Application::run`].
pub struct Application {
    listener: TcpListener,
    /// `/metrics`'s own listener and routes, when it is on.
    metrics: Option<(TcpListener, Router)>,
    router: Router,
    db: Db,
    identity: Identity,
    background: Background,
    /// Keeps the app's revocations in step with other instances'.
    revocations: Worker<Periodic<Refresh>>,
    local_addr: SocketAddr,
    public_url: url::Url,
    initial_secret_key: Option<String>,
    connections: crate::serve::ConnectionLimits,
    max_connections: usize,
}

impl Application {
    /// Prepares everything that can fail before serving: the data directory and master secret,
    /// migrations, the connection pools, the signing keys and the listening socket.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// As [`Application::build`], with the identity part and the app's verification of its
    /// tokens going by `clock` (tests move it forward instead of writing old timestamps).
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, StartError> {
        install_crypto_provider();
        create_private_dir(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let master = master_key(&config)?;
        let descriptors = crate::serve::raise_descriptor_limit();
        let max_connections = config.connections.max_connections.unwrap_or_else(|| {
            crate::serve::derived_max_connections(descriptors, config.database_max_connections)
        });
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
            IdentityConfig {
                clock,
                ..identity_config(&config, &public_url)
            },
            &master,
            PasswordHasher::default_for_machine()?,
        )
        .await?;
        let initial_secret_key =
            latchkey_identity::secret_keys::ensure_initial_secret_key(&identity)
                .await
                .map_err(StartError::SecretKey)?;

        let mut receiver_secrets = config.clerk_webhook_signing_secrets.clone();
        if config.internal_webhook {
            // The all-in-one run: the identity's events reach the app's receiver like any
            // endpoint's, signed with a secret the app is given here.
            receiver_secrets.push(endpoints::ensure_internal_endpoint(&identity).await?);
        }
        if receiver_secrets.is_empty() {
            tracing::warn!(
                "CLERK_WEBHOOK_SIGNING_SECRET is not set: POST /api/webhooks/clerk answers 503 until it is"
            );
        }
        let auth = app_auth(&config, &identity, &db)?;
        // Every live revocation is held before the first request is served.
        auth.revocations()
            .load(&db)
            .await
            .map_err(|source| StartError::Database {
                url: config.database_url.redacted(),
                source,
            })?;
        let revocations = auth.revocations().refresher(db.clone());
        let app_config = latchkey_app::AppConfig {
            clerk_webhook_secrets: receiver_secrets,
            auth,
            csrf: Csrf::new(
                master.derive("csrf"),
                public_url.scheme() == "https",
                public_url.origin().ascii_serialization(),
            ),
            app_name: config.app_name.clone(),
            shadow: config
                .clerk
                .as_ref()
                .is_some_and(|clerk| clerk.identity_shadow)
                .then(|| {
                    Arc::new(crate::bridge::IdentityShadow(identity.clone()))
                        as Arc<dyn latchkey_app::webhooks::shadow::Shadow>
                }),
        };
        let background = Background::new(
            &identity,
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
                latchkey_identity::web::session_cookies::refresh_session_token,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(AllowedHosts::new(&public_url, &config.allowed_hosts)),
                crate::host::check_host,
            ));
        let (routes, metrics) = match config.metrics_addr {
            None => (routes, None),
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                let metrics = (listener, crate::metrics::router(identity.clone()));
                (
                    routes.layer(axum::middleware::from_fn(crate::metrics::record)),
                    Some(metrics),
                )
            }
        };
        let router = latchkey_web::with_tracing(latchkey_web::with_private_responses(routes));

        Ok(Self {
            listener,
            router,
            metrics,
            db,
            identity,
            background,
            revocations,
            local_addr,
            public_url,
            initial_secret_key,
            connections: config.connections.clone(),
            max_connections,
        })
    }

    /// The management API's first secret key when this start made it (a fresh database):
    /// shown once, then only its hash exists.
    pub fn take_initial_secret_key(&mut self) -> Option<String> {
        self.initial_secret_key.take()
    }

    /// The address actually bound (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` is served on, when it is on.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
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
    /// None today: accept failures are handled (and logged) by the accept loop.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let token = CancellationToken::new();
        let mut workers = self.background.spawn(&token);
        workers.push(tokio::spawn(self.revocations.run(token.clone())));
        tracing::info!(
            listen.addr = %self.local_addr,
            public.url = %self.public_url,
            database = %self.db.url(),
            max.connections = self.max_connections,
            "latchkey is serving"
        );
        announce_mail(&self.identity, &self.public_url);
        announce_frontend_api(&self.identity);
        let serve_token = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            serve_token.cancel();
        });
        if let Some((listener, router)) = self.metrics {
            tracing::info!(metrics.addr = ?listener.local_addr().ok(), "serving /metrics");
            workers.push(tokio::spawn(crate::serve::serve(
                listener,
                router,
                self.connections.clone(),
                64,
                token.clone(),
            )));
        }
        crate::serve::serve(
            self.listener,
            self.router,
            self.connections,
            self.max_connections,
            token.clone(),
        )
        .await;
        token.cancel();
        for worker in workers {
            let _ = worker.await;
        }
        self.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The app's session verification: against latchkey's own identity in process, or against
/// real Clerk when its settings are given.
fn app_auth(config: &Config, identity: &Identity, db: &Db) -> Result<Auth, StartError> {
    let Some(clerk) = &config.clerk else {
        let issuer = IssuerConfig::latchkey(
            identity.config().token_issuer(),
            config.authorized_parties.clone(),
        );
        let verifier =
            SessionVerifier::new(issuer, Arc::new(bridge::IdentityKeys(identity.clone())))
                .with_clock(identity.clock().clone());
        return Ok(Auth::new(
            verifier,
            db.clone(),
            Arc::new(bridge::IdentityUsers(identity.clone())),
        ));
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let frontend = clerk
        .publishable_key
        .as_deref()
        .and_then(clerk_frontend_api);
    let keys: Arc<dyn latchkey_app::session::KeyProvider> = if let Some(pem) = &clerk.jwt_key {
        let key = VerifyingKey::from_spki_pem(pem).map_err(|e| StartError::Clerk(e.to_string()))?;
        Arc::new(StaticKeys(Arc::new(KeySource::Single(key))))
    } else if let Some((api, _)) = &frontend {
        Arc::new(RemoteJwks::new(frontend_jwks_url(api), None, http.clone()))
    } else if let Some(secret) = &clerk.secret_key {
        Arc::new(RemoteJwks::new(
            backend_jwks_url(&clerk.api_url),
            Some(format!("Bearer {}", secret.0)),
            http.clone(),
        ))
    } else {
        return Err(StartError::Clerk(
            "set CLERK_PUBLISHABLE_KEY, CLERK_JWT_KEY or CLERK_SECRET_KEY".to_owned(),
        ));
    };
    let source: Arc<dyn UserSource> = match &clerk.secret_key {
        Some(secret) => Arc::new(BackendApi::new(&clerk.api_url, secret.0.clone(), http)),
        None => {
            tracing::warn!(
                "CLERK_SECRET_KEY is not set: users the app has not seen yet cannot be provisioned"
            );
            Arc::new(NoSource)
        }
    };
    let issuer = IssuerConfig::clerk(
        clerk.publishable_key.as_deref(),
        clerk.sign_in_url.clone(),
        clerk.account_url.clone(),
        config.authorized_parties.clone(),
    );
    Ok(Auth::new(
        SessionVerifier::new(issuer, keys),
        db.clone(),
        source,
    ))
}

/// A user source for Clerk without a secret key: every lookup fails (provisioning disabled).
struct NoSource;

impl UserSource for NoSource {
    fn get_user<'a>(
        &'a self,
        _id: &'a str,
    ) -> latchkey_app::session::BoxFuture<
        'a,
        Result<Option<latchkey_protocol::clerk::User>, SourceError>,
    > {
        Box::pin(async {
            Err(SourceError::Unreachable(
                "CLERK_SECRET_KEY is not set".to_owned(),
            ))
        })
    }

    fn list_users<'a>(
        &'a self,
        _limit: u32,
        _after: Option<&'a str>,
    ) -> latchkey_app::session::BoxFuture<
        'a,
        Result<Vec<latchkey_protocol::clerk::User>, SourceError>,
    > {
        Box::pin(async {
            Err(SourceError::Unreachable(
                "CLERK_SECRET_KEY is not set".to_owned(),
            ))
        })
    }
}

/// Says where mail goes: the relay (without its credentials), or the dev mailbox's address.
fn announce_mail(identity: &Identity, public_url: &url::Url) {
    match &identity.config().mail.smtp {
        Some(smtp) => tracing::info!(smtp.relay = %smtp.redacted(), "mail goes out through SMTP"),
        None => {
            let mailbox = public_url
                .join("/dev/mailbox")
                .map_or_else(|_| "/dev/mailbox".to_owned(), |url| url.to_string());
            tracing::warn!(
                mailbox.url = %mailbox,
                "no SMTP relay is set (LATCHKEY_SMTP_URL): mail is not sent but kept for the dev mailbox, which only this machine can open"
            );
        }
    }
}

/// Says what Clerk's frontend SDKs need to reach the Frontend API (all of it public: a
/// publishable key is meant for browsers).
fn announce_frontend_api(identity: &Identity) {
    let config = identity.config();
    match config.publishable_key() {
        Some(key) => tracing::info!(
            clerk.publishable_key = %key,
            clerk.proxy_url = %format!("{}{}", config.issuer(), latchkey_identity::web::fapi::PREFIX),
            fapi.allowed_origins = ?config.fapi.allowed_origins,
            "Clerk's frontend SDKs: use this publishable key and proxy URL"
        ),
        None => tracing::info!(
            "Clerk's frontend SDKs need a publishable key whose host has a dot: set LATCHKEY_FRONTEND_API_HOST (e.g. clerk.localhost)"
        ),
    }
}

pub(crate) fn identity_config(config: &Config, public_url: &url::Url) -> IdentityConfig {
    let mut identity = IdentityConfig::new(public_url.clone());
    identity.mail = MailSettings {
        smtp: config.mail.smtp_url.clone(),
        from: config.mail.from.clone(),
        retry_schedule: config.mail.retry_schedule.clone(),
        site_name: config.app_name.clone(),
    };
    identity.email_code_lifetime_ms =
        i64::try_from(config.mail.code_lifetime.as_millis()).unwrap_or(i64::MAX);
    identity.reset_code_lifetime_ms =
        i64::try_from(config.mail.reset_code_lifetime.as_millis()).unwrap_or(i64::MAX);
    identity.trust_forwarded_for = config.trust_forwarded_for;
    identity.oauth = config.oauth.clone();
    identity.fapi = config.fapi.clone();
    identity.audit_retention_ms =
        i64::try_from(config.audit_retention.as_millis()).unwrap_or(i64::MAX);
    identity.webhook_allow_private_networks = config.webhook_allow_private_networks;
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
        statement_timeout: config.database_statement_timeout,
        acquire_timeout: config.database_acquire_timeout,
        ..PoolSettings::default()
    };
    Db::connect(&config.database_url, &settings)
        .await
        .map_err(|source| StartError::Database {
            url: config.database_url.redacted(),
            source,
        })
}
