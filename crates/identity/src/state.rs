//! The identity part's configuration and shared state.

use std::sync::Arc;

use latchkey_store::Db;
use latchkey_store::jobs::Wake;
use latchkey_web::csrf::Csrf;

use crate::keys::{KeysError, SigningKeys};
use crate::passwords::PasswordHasher;
use crate::secrets::MasterKey;
use crate::throttle::Limit;

/// The instance id, created once and shared by every instance on the database.
async fn instance_id(db: &Db) -> Result<String, KeysError> {
    let mut tx = db.begin().await?;
    let q = tx
        .query("INSERT INTO identity_settings (key, value) VALUES ('instance_id', $1) ON CONFLICT (key) DO NOTHING")
        .bind(latchkey_protocol::id::new_id("ins"));
    tx.execute(q).await?;
    let q = tx.query("SELECT value FROM identity_settings WHERE key = 'instance_id'");
    let value: String = latchkey_store::Row::try_get(&tx.fetch_one(q).await?, "value")
        .map_err(latchkey_store::StoreError::from)?;
    tx.commit().await?;
    Ok(value)
}

/// How the identity part behaves.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Where latchkey is reached; the token issuer and the origin of links and redirects.
    pub public_url: url::Url,
    /// Sliding lifetime of a session.
    pub session_lifetime_ms: i64,
    /// Sign-in attempts allowed per client address.
    pub sign_in_ip_limit: Limit,
    /// Sign-ups allowed per client address.
    pub sign_up_ip_limit: Limit,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Where to go after signing in or up when no `redirect_url` is given.
    pub after_sign_in_path: String,
    /// How mail is sent (or kept for the dev mailbox).
    pub mail: crate::mail::MailSettings,
    /// How long a sign-up, sign-in or new-address code is valid.
    pub email_code_lifetime_ms: i64,
    /// How long a password-reset code is valid.
    pub reset_code_lifetime_ms: i64,
    /// Accept webhook endpoints whose URL reaches only private, loopback or link-local
    /// addresses (the delivery worker's `DeliverySettings::allow_private_networks` is set from
    /// the same setting).
    pub webhook_allow_private_networks: bool,
    /// How long audit log entries are kept (the hourly sweep prunes older ones).
    pub audit_retention_ms: i64,
    /// The time every identity operation goes by (the system clock unless a test moves it).
    pub clock: latchkey_protocol::time::Clock,
    /// Social sign-in providers, in the order their buttons show.
    pub oauth: Vec<crate::oauth::ProviderSettings>,
    /// Clerk's Frontend API, for Clerk's own browser SDKs.
    pub fapi: FapiConfig,
}

/// Clerk's Frontend API (`/fapi/v1/…`): who may call it, and the host its publishable key
/// names (docs/ARCHITECTURE.md, "Inside the identity part").
#[derive(Debug, Clone, Default)]
pub struct FapiConfig {
    /// Origins (`scheme://host[:port]`) of the apps whose browsers call the Frontend API and
    /// whose pages the handshake may return to.
    pub allowed_origins: Vec<String>,
    /// The host the publishable key encodes (with a dot, as Clerk's SDKs demand); tokens are
    /// then issued by `https://<host>`. `None`: the public URL's host, port and path.
    pub frontend_api_host: Option<String>,
    /// Where the pinned clerk-js and `@clerk/ui` files are, served at `/npm/@clerk/…`.
    pub assets_dir: Option<std::path::PathBuf>,
}

impl IdentityConfig {
    /// Defaults for `public_url`: 7-day sessions, 100 sign-ins per 10 minutes and 20 sign-ups
    /// per hour from one address, mail kept for the dev mailbox, codes valid for 10 minutes
    /// (30 for a password reset).
    #[must_use]
    pub fn new(public_url: url::Url) -> Self {
        Self {
            public_url,
            session_lifetime_ms: 7 * 24 * 60 * 60 * 1000,
            sign_in_ip_limit: Limit {
                max: 100,
                window_ms: 10 * 60 * 1000,
            },
            sign_up_ip_limit: Limit {
                max: 20,
                window_ms: 60 * 60 * 1000,
            },
            trust_forwarded_for: false,
            after_sign_in_path: "/".to_owned(),
            mail: crate::mail::MailSettings::default(),
            email_code_lifetime_ms: 10 * 60 * 1000,
            reset_code_lifetime_ms: 30 * 60 * 1000,
            webhook_allow_private_networks: false,
            audit_retention_ms: 365 * 24 * 60 * 60 * 1000,
            clock: latchkey_protocol::time::Clock::system(),
            oauth: Vec::new(),
            fapi: FapiConfig::default(),
        }
    }

    /// The token issuer: the public URL without a trailing slash.
    #[must_use]
    pub fn issuer(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The `iss` of session tokens: `https://<frontend API host>` when one is set (what a
    /// publishable key naming that host expects), else [`IdentityConfig::issuer`].
    #[must_use]
    pub fn token_issuer(&self) -> String {
        match &self.fapi.frontend_api_host {
            Some(host) => format!("https://{host}"),
            None => self.issuer(),
        }
    }

    /// What Clerk's SDKs call the Frontend API: the token issuer without its scheme.
    #[must_use]
    pub fn frontend_api(&self) -> String {
        let issuer = self.token_issuer();
        issuer
            .strip_prefix("https://")
            .or_else(|| issuer.strip_prefix("http://"))
            .unwrap_or(&issuer)
            .to_owned()
    }

    /// The production publishable key naming [`IdentityConfig::frontend_api`]: `pk_live_` and
    /// its base64 with a trailing `$`. `None` when that host has no dot, which Clerk's SDKs
    /// refuse (set the frontend API host then).
    #[must_use]
    pub fn publishable_key(&self) -> Option<String> {
        use base64::Engine as _;
        let api = self.frontend_api();
        if !api.contains('.') || api.contains('$') {
            return None;
        }
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("{api}$"));
        Some(format!("pk_live_{encoded}"))
    }

    /// Whether a browser page on `origin` may call the Frontend API.
    #[must_use]
    pub fn fapi_origin_allowed(&self, origin: &str) -> bool {
        self.fapi.allowed_origins.iter().any(|o| o == origin) || origin == self.origin()
    }

    /// The public origin (`https://host[:port]`), the `azp` of tokens minted for pages.
    #[must_use]
    pub fn origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// The provider whose key (`google`, `custom_acme`) is `key`.
    #[must_use]
    pub fn oauth_provider(&self, key: &str) -> Option<&crate::oauth::ProviderSettings> {
        self.oauth.iter().find(|p| p.key == key)
    }

    /// Where providers send the browser back: `<public URL>/v1/oauth_callback`, the address
    /// to register with each provider.
    #[must_use]
    pub fn oauth_redirect_uri(&self) -> String {
        format!("{}/v1/oauth_callback", self.issuer())
    }

    /// Whether cookies must be `Secure`.
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// The identity part, ready to serve. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

/// Lets form handlers take [`latchkey_web::csrf::CsrfForm`].
impl axum::extract::FromRef<Identity> for Csrf {
    fn from_ref(identity: &Identity) -> Self {
        identity.inner.csrf.clone()
    }
}

struct Inner {
    pub db: Db,
    pub config: IdentityConfig,
    pub hasher: PasswordHasher,
    pub keys: SigningKeys,
    pub csrf: Csrf,
    /// Keys the throttle's account buckets, so the table holds no email addresses.
    pub throttle_key: [u8; 32],
    /// This identity's Clerk-style instance id (`ins_…`), in every event.
    pub instance_id: String,
    /// Rung when a transaction that wrote deliveries commits, so the delivery worker need not
    /// wait for its next poll.
    pub outbox: Wake,
    /// Rung when a transaction that wrote mail commits, likewise for the mail worker.
    pub mail_outbox: Wake,
    /// Keys the hashes of one-time codes.
    pub code_key: [u8; 32],
    pub master: MasterKey,
    /// The HTTP client for sign-in providers and what it learnt of them.
    pub providers: crate::oauth::provider::Providers,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public_url", &self.inner.config.public_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads (or creates) the signing keys and assembles the part.
    ///
    /// # Errors
    /// If the signing keys cannot be loaded.
    pub async fn new(
        db: Db,
        config: IdentityConfig,
        master: &MasterKey,
        hasher: PasswordHasher,
    ) -> Result<Self, KeysError> {
        let keys = SigningKeys::load(&db, master).await?;
        let csrf = Csrf::new(
            master.derive("csrf"),
            config.secure_cookies(),
            config.origin(),
        );
        let instance_id = instance_id(&db).await?;
        let providers = crate::oauth::provider::Providers::new()
            .map_err(|e| KeysError::HttpClient(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                csrf,
                keys,
                hasher,
                throttle_key: master.derive("throttle"),
                config,
                instance_id,
                outbox: Wake::new(),
                mail_outbox: Wake::new(),
                code_key: master.derive("email codes"),
                master: master.clone(),
                providers,
            }),
        })
    }

    #[must_use]
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    #[must_use]
    pub fn config(&self) -> &IdentityConfig {
        &self.inner.config
    }

    /// The clock this identity goes by; tests advance it to see "an hour later".
    #[must_use]
    pub fn clock(&self) -> &latchkey_protocol::time::Clock {
        &self.inner.config.clock
    }

    /// Unix milliseconds now, by [`Identity::clock`].
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.inner.config.clock.now_ms()
    }

    /// This identity's instance id (`ins_…`).
    #[must_use]
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    #[must_use]
    pub fn keys(&self) -> &SigningKeys {
        &self.inner.keys
    }

    pub(crate) fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    pub(crate) fn csrf(&self) -> &Csrf {
        &self.inner.csrf
    }

    /// Sign-in providers' discovery documents and keys, and the client that fetches them.
    pub(crate) fn providers(&self) -> &crate::oauth::provider::Providers {
        &self.inner.providers
    }

    pub(crate) fn master(&self) -> &MasterKey {
        &self.inner.master
    }

    /// Keys the throttle's account buckets, so the table holds no email addresses.
    pub(crate) fn throttle_key(&self) -> &[u8; 32] {
        &self.inner.throttle_key
    }

    /// Keys the hashes of one-time codes.
    pub(crate) fn code_key(&self) -> &[u8; 32] {
        &self.inner.code_key
    }

    /// Rung after a transaction that wrote deliveries commits.
    pub(crate) fn outbox(&self) -> &Wake {
        &self.inner.outbox
    }

    /// Rung after a transaction that wrote mail commits.
    pub(crate) fn mail_outbox(&self) -> &Wake {
        &self.inner.mail_outbox
    }
}
