//! latchkey's configuration: one typed struct, resolved from layers.
//!
//! Precedence, lowest first: built-in defaults, the TOML file (`latchkey.toml` in the working
//! directory, or `--config`), environment variables, command-line flags. Every value is
//! validated before anything starts; a bad one stops the process with one line naming the
//! setting as the operator wrote it (`DATABASE_URL`, `--addr`, `addr in latchkey.toml`).
//!
//! Each setting is declared once, in [`settings`]: its flag, environment variable, file key,
//! default, help and parser. `sources.rs` holds the layers and picks the winning text;
//! `parse.rs` turns each kind of text into its value.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_identity::secrets::MasterKey;
use latchkey_protocol::webhook::SigningSecret;
use latchkey_store::DatabaseUrl;

mod oauth;
mod parse;
pub mod settings;
mod sources;

pub use parse::{parse_duration, parse_duration_list};
pub use settings::{ALL, Setting};
pub use sources::{ConfigError, Origin, Sources};

/// Everything latchkey needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// Where `/metrics` is served; `None`: not at all.
    pub metrics_addr: Option<SocketAddr>,
    /// Where latchkey keeps its files: the SQLite database by default, and local key material.
    pub data_dir: PathBuf,
    /// The URL people and programs reach latchkey at, used in links, redirects and token
    /// issuers. `None` means `http://` + the bound address.
    pub public_url: Option<url::Url>,
    /// The database for everything at run time.
    pub database_url: DatabaseUrl,
    /// A direct (session) connection for migrations, when `database_url` goes through a
    /// transaction pooler.
    pub direct_database_url: Option<DatabaseUrl>,
    /// Upper bound on pooled database connections.
    pub database_max_connections: u32,
    /// The longest one database statement may run (Postgres cancels it; the client gives up
    /// a second later).
    pub database_statement_timeout: Duration,
    /// How long a request waits for a database connection before it is answered 503.
    pub database_acquire_timeout: Duration,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Secrets that may sign Clerk webhooks to `/api/webhooks/clerk` (several during a
    /// rotation).
    pub clerk_webhook_signing_secrets: Vec<SigningSecret>,
    /// The master secret every instance on one database shares; `None` means the key file in
    /// the data directory (created on first start).
    pub secret: Option<MasterKey>,
    /// Take client addresses from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Sign-in attempts allowed per client address per 10 minutes.
    pub sign_in_attempts_per_ip: i64,
    /// Sign-ups allowed per client address per hour.
    pub sign_ups_per_ip: i64,
    /// Register the app's own receiver as a webhook endpoint of the identity part (the
    /// all-in-one run).
    pub internal_webhook: bool,
    /// Deliver webhooks to private, loopback and link-local addresses.
    pub webhook_allow_private_networks: bool,
    /// Delays between delivery attempts.
    pub webhook_retry_schedule: Vec<Duration>,
    /// Per-attempt timeout.
    pub webhook_timeout: Duration,
    /// The app's name, shown in its header.
    pub app_name: String,
    /// How long audit log entries are kept.
    pub audit_retention: std::time::Duration,
    /// Origins allowed as a session token's `azp`; when set, tokens without one are refused.
    pub authorized_parties: Option<Vec<String>>,
    /// Real Clerk as the app's issuer, when any of its settings is given.
    pub clerk: Option<ClerkSettings>,
    /// Mail: the SMTP relay (or the dev mailbox), the sender, retries, code lifetimes.
    pub mail: crate::mail_config::MailConfig,
    /// Client connections: header and idle timeouts, the bound on open connections.
    pub connections: crate::serve::ConnectionLimits,
    /// Host names besides the public URL's that requests may name in `Host`.
    pub allowed_hosts: Vec<String>,
    /// Social sign-in providers (Google, Microsoft, a generic OpenID Connect one).
    pub oauth: Vec<latchkey_identity::oauth::ProviderSettings>,
    /// Clerk's Frontend API: allowed app origins, the publishable key's host, the scripts.
    pub fapi: latchkey_identity::FapiConfig,
}

/// Settings of real Clerk, when the app verifies Clerk's sessions instead of latchkey's.
#[derive(Debug, Clone)]
pub struct ClerkSettings {
    /// `pk_live_…`/`pk_test_…`: names the Frontend API (the token issuer and its JWKS).
    pub publishable_key: Option<String>,
    /// `sk_…`: for the Backend API (provisioning, backfill). Never logged.
    pub secret_key: Option<Secret>,
    /// The instance's PEM public key, for networkless verification.
    pub jwt_key: Option<String>,
    /// The Backend API's base URL.
    pub api_url: String,
    /// Where signed-out visitors go (Clerk's Account Portal sign-in page, by default).
    pub sign_in_url: Option<String>,
    /// Where "Manage account" leads.
    pub account_url: Option<String>,
    /// Shadow mode: the identity keeps its accounts current from Clerk's user webhooks.
    pub identity_shadow: bool,
}

/// A secret string whose `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Config {
    /// The URL migrations run against.
    #[must_use]
    pub fn migration_url(&self) -> &DatabaseUrl {
        self.direct_database_url
            .as_ref()
            .unwrap_or(&self.database_url)
    }

    /// The public URL, or `http://` + the listening address when none is set (the port is
    /// the configured one, so port 0 gives no usable URL).
    #[must_use]
    pub fn public_url_or_default(&self) -> url::Url {
        self.public_url.clone().unwrap_or_else(|| {
            url::Url::parse(&format!("http://{}", self.addr))
                .expect("a socket address forms a valid URL")
        })
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Config {
    /// Validates every layer into a [`Config`], reading each setting through its declaration
    /// in [`settings`].
    ///
    /// # Errors
    /// The first setting that does not validate.
    pub fn resolve(sources: &Sources) -> Result<Self, ConfigError> {
        // In declaration order, so the first bad setting is the one reported.
        let addr = sources.value(&settings::ADDR)?;
        let metrics_addr = sources.given(&settings::METRICS_ADDR)?;
        let data_dir = sources.value(&settings::DATA_DIR)?;
        let public_url = sources.given(&settings::PUBLIC_URL)?;
        let (database_url, direct_database_url) = resolve_database(sources, &data_dir)?;
        let database_max_connections = sources.value(&settings::DATABASE_MAX_CONNECTIONS)?;
        let database_statement_timeout = sources.value(&settings::DATABASE_STATEMENT_TIMEOUT)?;
        let database_acquire_timeout = sources.value(&settings::DATABASE_ACQUIRE_TIMEOUT)?;
        let log_format = sources.value(&settings::LOG_FORMAT)?;
        let clerk_webhook_signing_secrets = sources
            .given(&settings::CLERK_WEBHOOK_SIGNING_SECRET)?
            .unwrap_or_default();
        let secret = sources.given(&settings::SECRET)?;
        let trust_forwarded_for = sources.value(&settings::TRUST_FORWARDED_FOR)?;
        let sign_in_attempts_per_ip = sources.value(&settings::SIGN_IN_ATTEMPTS_PER_IP)?;
        let sign_ups_per_ip = sources.value(&settings::SIGN_UPS_PER_IP)?;
        let clerk = clerk_settings(sources, !clerk_webhook_signing_secrets.is_empty())?;
        // With Clerk as the app's issuer, the identity's own events are not the app's.
        let internal_webhook = sources
            .given(&settings::INTERNAL_WEBHOOK)?
            .unwrap_or(clerk.is_none());
        let webhook_allow_private_networks =
            sources.value(&settings::WEBHOOK_ALLOW_PRIVATE_NETWORKS)?;
        let webhook_retry_schedule = sources.value(&settings::WEBHOOK_RETRY_SCHEDULE)?;
        let webhook_timeout = sources.value(&settings::WEBHOOK_TIMEOUT)?;
        let app_name = sources.value(&settings::APP_NAME)?;
        let audit_retention = sources.value(&settings::AUDIT_RETENTION)?;
        let authorized_parties = sources.given(&settings::AUTHORIZED_PARTIES)?;
        let mail = crate::mail_config::resolve(sources)?;
        let (connections, allowed_hosts) = resolve_http(sources)?;
        let oauth = oauth::providers(sources)?;
        let fapi = latchkey_identity::FapiConfig {
            allowed_origins: sources
                .given(&settings::FAPI_ALLOWED_ORIGINS)?
                .unwrap_or_default(),
            frontend_api_host: sources.given(&settings::FRONTEND_API_HOST)?,
            assets_dir: sources.given(&settings::CLERK_ASSETS_DIR)?,
        };
        Ok(Self {
            addr,
            metrics_addr,
            data_dir,
            public_url,
            database_url,
            direct_database_url,
            database_max_connections,
            database_statement_timeout,
            database_acquire_timeout,
            log_format,
            clerk_webhook_signing_secrets,
            secret,
            trust_forwarded_for,
            sign_in_attempts_per_ip,
            sign_ups_per_ip,
            internal_webhook,
            webhook_allow_private_networks,
            webhook_retry_schedule,
            webhook_timeout,
            app_name,
            audit_retention,
            authorized_parties,
            clerk,
            mail,
            connections,
            allowed_hosts,
            oauth,
            fapi,
        })
    }
}

/// The database URL (by default a SQLite file in the data directory) and the direct one for
/// migrations, which must point at the same kind of database.
fn resolve_database(
    sources: &Sources,
    data_dir: &Path,
) -> Result<(DatabaseUrl, Option<DatabaseUrl>), ConfigError> {
    let database_url = match sources.given(&settings::DATABASE_URL)? {
        Some(url) => url,
        None => DatabaseUrl::sqlite_file(&data_dir.join("latchkey.db")).map_err(|e| {
            ConfigError::Invalid {
                origin: Origin::Default(settings::DATABASE_URL.setting.env),
                message: format!("the data directory gives no usable SQLite path: {e}"),
            }
        })?,
    };
    let direct_database_url = sources.given(&settings::DIRECT_DATABASE_URL)?;
    if let (Some(direct), Some((_, origin))) = (
        &direct_database_url,
        sources.get(&settings::DIRECT_DATABASE_URL.setting),
    ) && direct.backend() != database_url.backend()
    {
        return Err(ConfigError::Invalid {
            origin,
            message: "must point at the same kind of database as DATABASE_URL".to_owned(),
        });
    }
    Ok((database_url, direct_database_url))
}

/// The HTTP server's limits and the extra hosts it answers for.
fn resolve_http(
    sources: &Sources,
) -> Result<(crate::serve::ConnectionLimits, Vec<String>), ConfigError> {
    let limits = crate::serve::ConnectionLimits {
        header_timeout: sources.value(&settings::HEADER_TIMEOUT)?,
        idle_timeout: sources.value(&settings::IDLE_TIMEOUT)?,
        request_timeout: sources.value(&settings::REQUEST_TIMEOUT)?,
        max_connections: sources.given(&settings::MAX_CONNECTIONS)?,
    };
    let hosts = sources.given(&settings::ALLOWED_HOSTS)?.unwrap_or_default();
    Ok((limits, hosts))
}

/// Real Clerk's settings, when any of its keys is given. Shadow mode needs them and the
/// webhooks' signing secret: the identity learns Clerk's changes from those webhooks.
fn clerk_settings(
    sources: &Sources,
    receives_webhooks: bool,
) -> Result<Option<ClerkSettings>, ConfigError> {
    let publishable_key = sources.given(&settings::CLERK_PUBLISHABLE_KEY)?;
    let secret_key = sources.given(&settings::CLERK_SECRET_KEY)?;
    let jwt_key = sources.given(&settings::CLERK_JWT_KEY)?;
    let identity_shadow = sources.given(&settings::IDENTITY_SHADOW)?.unwrap_or(false);
    let clerk_given = publishable_key.is_some() || secret_key.is_some() || jwt_key.is_some();
    if identity_shadow && let Some((_, origin)) = sources.get(&settings::IDENTITY_SHADOW.setting) {
        let missing = if clerk_given {
            (!receives_webhooks).then_some(
                "CLERK_WEBHOOK_SIGNING_SECRET (the identity follows Clerk through its webhooks)",
            )
        } else {
            Some(
                "Clerk's keys (CLERK_PUBLISHABLE_KEY, CLERK_SECRET_KEY or CLERK_JWT_KEY): shadow mode follows a live Clerk instance",
            )
        };
        if let Some(missing) = missing {
            return Err(ConfigError::Invalid {
                origin,
                message: format!("needs {missing}"),
            });
        }
    }
    if !clerk_given {
        return Ok(None);
    }
    Ok(Some(ClerkSettings {
        publishable_key,
        secret_key,
        jwt_key,
        api_url: sources.value(&settings::CLERK_API_URL)?,
        sign_in_url: sources.given(&settings::CLERK_SIGN_IN_URL)?,
        account_url: sources.given(&settings::CLERK_ACCOUNT_URL)?,
        identity_shadow,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(flags: &[(&Setting, &str)], env: &[(&str, &str)], file: &[(&str, &str)]) -> Sources {
        Sources {
            flags: flags
                .iter()
                .map(|(s, v)| (s.key, (*v).to_owned()))
                .collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            file: file
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            file_path: Some(PathBuf::from("latchkey.toml")),
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::resolve(&Sources::default()).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.data_dir, PathBuf::from("latchkey-data"));
        assert_eq!(
            config.database_url.backend(),
            latchkey_store::Backend::Sqlite
        );
        assert!(
            config
                .database_url
                .sqlite_path()
                .unwrap()
                .ends_with("latchkey-data/latchkey.db")
        );
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_beat_env_which_beats_the_file() {
        let s = sources(
            &[(&settings::ADDR.setting, "127.0.0.1:1")],
            &[
                ("LATCHKEY_ADDR", "127.0.0.1:2"),
                ("LATCHKEY_DATA_DIR", "/env"),
            ],
            &[
                ("addr", "127.0.0.1:3"),
                ("data_dir", "/file"),
                ("log_format", "json"),
            ],
        );
        let config = Config::resolve(&s).unwrap();
        assert_eq!(config.addr.port(), 1);
        assert_eq!(config.data_dir, PathBuf::from("/env"));
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn a_bad_value_names_its_setting_in_one_line() {
        let err =
            Config::resolve(&sources(&[], &[("DATABASE_URL", "mysql://x/y")], &[])).unwrap_err();
        let line = err.to_string();
        assert!(line.starts_with("invalid DATABASE_URL: "), "{line}");
        assert!(!line.contains('\n'));

        let err =
            Config::resolve(&sources(&[(&settings::ADDR.setting, "nope")], &[], &[])).unwrap_err();
        assert!(err.to_string().starts_with("invalid --addr: "), "{err}");

        let err = Config::resolve(&sources(&[], &[], &[("public_url", "ftp://x")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid public_url in latchkey.toml: "),
            "{err}"
        );
    }

    #[test]
    fn database_timeouts_default_parse_and_refuse_out_of_range_values() {
        let config = Config::resolve(&Sources::default()).unwrap();
        assert_eq!(config.database_statement_timeout, Duration::from_secs(30));
        assert_eq!(config.database_acquire_timeout, Duration::from_secs(5));

        let config = Config::resolve(&sources(
            &[(&settings::DATABASE_ACQUIRE_TIMEOUT.setting, "750ms")],
            &[("LATCHKEY_DATABASE_STATEMENT_TIMEOUT", "2m")],
            &[],
        ))
        .unwrap();
        assert_eq!(config.database_statement_timeout, Duration::from_secs(120));
        assert_eq!(config.database_acquire_timeout, Duration::from_millis(750));

        let err = Config::resolve(&sources(
            &[],
            &[("LATCHKEY_DATABASE_STATEMENT_TIMEOUT", "0")],
            &[],
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid LATCHKEY_DATABASE_STATEMENT_TIMEOUT: "),
            "{err}"
        );
        let err = Config::resolve(&sources(&[], &[], &[("database_acquire_timeout", "10m")]))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid database_acquire_timeout in latchkey.toml: "),
            "{err}"
        );
    }

    #[test]
    fn a_pooled_direct_url_is_refused() {
        let err = Config::resolve(&sources(
            &[],
            &[
                ("DATABASE_URL", "postgres://u@h:6543/db?pgbouncer=true"),
                (
                    "DIRECT_DATABASE_URL",
                    "postgres://u@h:6543/db?pgbouncer=true",
                ),
            ],
            &[],
        ))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("invalid DIRECT_DATABASE_URL: "),
            "{err}"
        );
    }

    #[test]
    fn webhook_secrets_are_a_comma_separated_list() {
        let two = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let config =
            Config::resolve(&sources(&[], &[("CLERK_WEBHOOK_SIGNING_SECRET", two)], &[])).unwrap();
        assert_eq!(config.clerk_webhook_signing_secrets.len(), 2);
        let err = Config::resolve(&sources(
            &[],
            &[(
                "CLERK_WEBHOOK_SIGNING_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,whsec_%%%",
            )],
            &[],
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("invalid CLERK_WEBHOOK_SIGNING_SECRET: secret #2"),
            "{err}"
        );
        assert!(
            !err.contains("MfKQ9"),
            "the message does not echo secrets: {err}"
        );
    }

    /// The parts keep their own defaults for when they run without this crate (tests, the
    /// testkit); the declared defaults must be the same values.
    #[test]
    fn declared_defaults_agree_with_the_parts_own() {
        let config = Config::resolve(&Sources::default()).unwrap();
        let delivery = latchkey_identity::webhooks::DeliverySettings::default();
        assert_eq!(config.webhook_retry_schedule, delivery.schedule);
        assert_eq!(config.webhook_timeout, delivery.timeout);
        assert_eq!(
            config.webhook_allow_private_networks,
            delivery.allow_private_networks
        );
        assert_eq!(
            format!("{:?}", config.connections),
            format!("{:?}", crate::serve::ConnectionLimits::default())
        );
        assert_eq!(
            format!("{:?}", config.mail),
            format!("{:?}", crate::mail_config::MailConfig::default())
        );
    }

    #[test]
    fn the_readme_lists_every_setting() {
        let readme = include_str!("../../../../README.md");
        for setting in ALL {
            let row = format!(
                "| `{}` | `{}` | `{}` |",
                setting.flag, setting.env, setting.key
            );
            assert!(readme.contains(&row), "README.md has a row {row}");
        }
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let config = Config::resolve(&sources(&[], &[("LATCHKEY_ADDR", "")], &[])).unwrap();
        assert_eq!(config.addr.port(), 3000);
    }
}
