//! latchkey's configuration: one typed struct, resolved from layers.
//!
//! Precedence, lowest first: built-in defaults, the TOML file (`latchkey.toml` in the working
//! directory, or `--config`), environment variables, command-line flags. Every value is
//! validated before anything starts; a bad one stops the process with one line naming the
//! setting as the operator wrote it (`DATABASE_URL`, `--addr`, `addr in latchkey.toml`).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_identity::secrets::MasterKey;
use latchkey_protocol::webhook::SigningSecret;
use latchkey_store::DatabaseUrl;

/// Everything latchkey needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
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
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A configurable setting: its key in the file, its flag and its environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Setting {
    pub key: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
}

macro_rules! settings {
    ($($name:ident = $key:literal, $flag:literal, $env:literal;)*) => {
        $(pub const $name: Setting = Setting { key: $key, flag: $flag, env: $env };)*
        /// Every setting, for the file's unknown-key check.
        pub const ALL: &[Setting] = &[$($name),*];
    };
}

settings! {
    ADDR = "addr", "--addr", "LATCHKEY_ADDR";
    DATA_DIR = "data_dir", "--data-dir", "LATCHKEY_DATA_DIR";
    PUBLIC_URL = "public_url", "--public-url", "LATCHKEY_PUBLIC_URL";
    DATABASE_URL = "database_url", "--database-url", "DATABASE_URL";
    DIRECT_DATABASE_URL = "direct_database_url", "--direct-database-url", "DIRECT_DATABASE_URL";
    DATABASE_MAX_CONNECTIONS = "database_max_connections", "--database-max-connections", "LATCHKEY_DATABASE_MAX_CONNECTIONS";
    DATABASE_STATEMENT_TIMEOUT = "database_statement_timeout", "--database-statement-timeout", "LATCHKEY_DATABASE_STATEMENT_TIMEOUT";
    DATABASE_ACQUIRE_TIMEOUT = "database_acquire_timeout", "--database-acquire-timeout", "LATCHKEY_DATABASE_ACQUIRE_TIMEOUT";
    LOG_FORMAT = "log_format", "--log-format", "LATCHKEY_LOG_FORMAT";
    CLERK_WEBHOOK_SIGNING_SECRET = "clerk_webhook_signing_secret", "--clerk-webhook-signing-secret", "CLERK_WEBHOOK_SIGNING_SECRET";
    SECRET = "secret", "--secret", "LATCHKEY_SECRET";
    TRUST_FORWARDED_FOR = "trust_forwarded_for", "--trust-forwarded-for", "LATCHKEY_TRUST_FORWARDED_FOR";
    SIGN_IN_ATTEMPTS_PER_IP = "sign_in_attempts_per_ip", "--sign-in-attempts-per-ip", "LATCHKEY_SIGN_IN_ATTEMPTS_PER_IP";
    SIGN_UPS_PER_IP = "sign_ups_per_ip", "--sign-ups-per-ip", "LATCHKEY_SIGN_UPS_PER_IP";
    INTERNAL_WEBHOOK = "internal_webhook", "--internal-webhook", "LATCHKEY_INTERNAL_WEBHOOK";
    WEBHOOK_ALLOW_PRIVATE_NETWORKS = "webhook_allow_private_networks", "--webhook-allow-private-networks", "LATCHKEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS";
    WEBHOOK_RETRY_SCHEDULE = "webhook_retry_schedule", "--webhook-retry-schedule", "LATCHKEY_WEBHOOK_RETRY_SCHEDULE";
    WEBHOOK_TIMEOUT = "webhook_timeout", "--webhook-timeout", "LATCHKEY_WEBHOOK_TIMEOUT";
    APP_NAME = "app_name", "--app-name", "LATCHKEY_APP_NAME";
    AUTHORIZED_PARTIES = "authorized_parties", "--authorized-parties", "LATCHKEY_AUTHORIZED_PARTIES";
    CLERK_PUBLISHABLE_KEY = "clerk_publishable_key", "--clerk-publishable-key", "CLERK_PUBLISHABLE_KEY";
    CLERK_SECRET_KEY = "clerk_secret_key", "--clerk-secret-key", "CLERK_SECRET_KEY";
    CLERK_JWT_KEY = "clerk_jwt_key", "--clerk-jwt-key", "CLERK_JWT_KEY";
    CLERK_API_URL = "clerk_api_url", "--clerk-api-url", "CLERK_API_URL";
    CLERK_SIGN_IN_URL = "clerk_sign_in_url", "--clerk-sign-in-url", "CLERK_SIGN_IN_URL";
    CLERK_ACCOUNT_URL = "clerk_account_url", "--clerk-account-url", "CLERK_ACCOUNT_URL";
    SMTP_URL = "smtp_url", "--smtp-url", "LATCHKEY_SMTP_URL";
    MAIL_FROM = "mail_from", "--mail-from", "LATCHKEY_MAIL_FROM";
    MAIL_RETRY_SCHEDULE = "mail_retry_schedule", "--mail-retry-schedule", "LATCHKEY_MAIL_RETRY_SCHEDULE";
    EMAIL_CODE_LIFETIME = "email_code_lifetime", "--email-code-lifetime", "LATCHKEY_EMAIL_CODE_LIFETIME";
    RESET_CODE_LIFETIME = "reset_code_lifetime", "--reset-code-lifetime", "LATCHKEY_RESET_CODE_LIFETIME";
    HEADER_TIMEOUT = "header_timeout", "--header-timeout", "LATCHKEY_HEADER_TIMEOUT";
    IDLE_TIMEOUT = "idle_timeout", "--idle-timeout", "LATCHKEY_IDLE_TIMEOUT";
    MAX_CONNECTIONS = "max_connections", "--max-connections", "LATCHKEY_MAX_CONNECTIONS";
    ALLOWED_HOSTS = "allowed_hosts", "--allowed-hosts", "LATCHKEY_ALLOWED_HOSTS";
}

/// Where a value came from, named the way the operator wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Env(&'static str),
    File { key: &'static str, path: PathBuf },
    Default(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => f.write_str(flag),
            Self::Env(var) => f.write_str(var),
            Self::File { key, path } => write!(f, "{key} in {}", path.display()),
            Self::Default(var) => write!(f, "default {var}"),
        }
    }
}

/// A setting that could not be used. Displays as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {origin}: {message}")]
    Invalid { origin: Origin, message: String },
    #[error("cannot read config file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// The raw layers before validation.
#[derive(Debug, Default)]
pub struct Sources {
    /// Flag values given on the command line, by setting.
    pub flags: HashMap<Setting, String>,
    /// Environment variables (injected, so tests need not touch the process environment).
    pub env: HashMap<String, String>,
    /// Values from the config file, and the file's path.
    pub file: HashMap<String, String>,
    pub file_path: Option<PathBuf>,
}

impl Sources {
    /// Reads the config file: `explicit` must exist; otherwise `latchkey.toml` in the working
    /// directory is used if present.
    ///
    /// # Errors
    /// If the file cannot be read, is not TOML, or names a setting that does not exist.
    pub fn load_file(&mut self, explicit: Option<&Path>) -> Result<(), ConfigError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => {
                let default = PathBuf::from("latchkey.toml");
                if !default.exists() {
                    return Ok(());
                }
                default
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.clone(),
                message: e.message().to_owned(),
            })?;
        for (key, value) in table {
            if !ALL.iter().any(|s| s.key == key) {
                return Err(ConfigError::File {
                    path,
                    message: format!("unknown setting \"{key}\""),
                });
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError::File {
                        path,
                        message: format!(
                            "{key} must be a string, number or boolean, not {}",
                            other.type_str()
                        ),
                    });
                }
            };
            self.file.insert(key, text);
        }
        self.file_path = Some(path);
        Ok(())
    }

    /// The winning value of `setting` and where it came from.
    #[must_use]
    pub fn get(&self, setting: Setting) -> Option<(String, Origin)> {
        if let Some(value) = self.flags.get(&setting) {
            return Some((value.clone(), Origin::Flag(setting.flag)));
        }
        if let Some(value) = self.env.get(setting.env).filter(|v| !v.is_empty()) {
            return Some((value.clone(), Origin::Env(setting.env)));
        }
        self.file.get(setting.key).map(|value| {
            (
                value.clone(),
                Origin::File {
                    key: setting.key,
                    path: self.file_path.clone().unwrap_or_default(),
                },
            )
        })
    }

    /// Parses `setting` if it was given.
    ///
    /// # Errors
    /// The parser's message, attributed to where the value came from.
    pub fn parse<T>(
        &self,
        setting: Setting,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(setting) {
            None => Ok(None),
            Some((raw, origin)) => parse(raw.trim())
                .map(Some)
                .map_err(|message| ConfigError::Invalid { origin, message }),
        }
    }
}

impl Config {
    /// Validates every layer into a [`Config`].
    ///
    /// # Errors
    /// The first setting that does not validate.
    pub fn resolve(sources: &Sources) -> Result<Self, ConfigError> {
        let addr = sources
            .parse(ADDR, |s| {
                s.parse::<SocketAddr>().map_err(|_| {
                    format!("\"{s}\" is not an address; expected host:port such as 127.0.0.1:3000")
                })
            })?
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
        let data_dir = sources
            .parse(DATA_DIR, |s| {
                if s.is_empty() {
                    Err("the data directory cannot be empty".to_owned())
                } else {
                    Ok(PathBuf::from(s))
                }
            })?
            .unwrap_or_else(|| PathBuf::from("latchkey-data"));
        let public_url = sources.parse(PUBLIC_URL, parse_public_url)?;
        let database_url = match sources.parse(DATABASE_URL, |s| {
            s.parse::<DatabaseUrl>().map_err(|e| e.to_string())
        })? {
            Some(url) => url,
            None => DatabaseUrl::sqlite_file(&data_dir.join("latchkey.db")).map_err(|e| {
                ConfigError::Invalid {
                    origin: Origin::Default("DATABASE_URL"),
                    message: format!("the data directory gives no usable SQLite path: {e}"),
                }
            })?,
        };
        let direct_database_url = sources.parse(DIRECT_DATABASE_URL, |s| {
            let url = s.parse::<DatabaseUrl>().map_err(|e| e.to_string())?;
            if url.is_pooler() {
                return Err("the direct URL is for migrations and cannot go through a transaction pooler (remove pgbouncer=true)".to_owned());
            }
            Ok(url)
        })?;
        if let (Some(direct), Some((_, origin))) =
            (&direct_database_url, sources.get(DIRECT_DATABASE_URL))
            && direct.backend() != database_url.backend()
        {
            return Err(ConfigError::Invalid {
                origin,
                message: "must point at the same kind of database as DATABASE_URL".to_owned(),
            });
        }
        let database_max_connections = sources
            .parse(DATABASE_MAX_CONNECTIONS, |s| match s.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => Ok(n),
                _ => Err(format!("\"{s}\" is not a number from 1 to 1000")),
            })?
            .unwrap_or(16);
        let database_statement_timeout = sources
            .parse(DATABASE_STATEMENT_TIMEOUT, |s| {
                bounded_duration(s, "100ms", "24h")
            })?
            .unwrap_or(Duration::from_secs(30));
        let database_acquire_timeout = sources
            .parse(DATABASE_ACQUIRE_TIMEOUT, |s| {
                bounded_duration(s, "100ms", "300s")
            })?
            .unwrap_or(Duration::from_secs(5));
        let log_format = sources
            .parse(LOG_FORMAT, |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                other => Err(format!(
                    "\"{other}\" is not a log format; expected text or json"
                )),
            })?
            .unwrap_or(LogFormat::Text);
        let clerk_webhook_signing_secrets = sources
            .parse(CLERK_WEBHOOK_SIGNING_SECRET, parse_secret_list)?
            .unwrap_or_default();
        let secret = sources.parse(SECRET, |s| {
            MasterKey::from_secret_text(s).map_err(|e| e.to_string())
        })?;
        let trust_forwarded_for = sources
            .parse(TRUST_FORWARDED_FOR, parse_bool)?
            .unwrap_or(false);
        let positive = |s: &str| match s.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("\"{s}\" is not a positive whole number")),
        };
        let sign_in_attempts_per_ip = sources
            .parse(SIGN_IN_ATTEMPTS_PER_IP, positive)?
            .unwrap_or(100);
        let sign_ups_per_ip = sources.parse(SIGN_UPS_PER_IP, positive)?.unwrap_or(20);
        let clerk = clerk_settings(sources)?;
        // With Clerk as the app's issuer, the identity's own events are not the app's.
        let internal_webhook = sources
            .parse(INTERNAL_WEBHOOK, parse_bool)?
            .unwrap_or(clerk.is_none());
        let app_name = sources
            .parse(APP_NAME, |s| {
                if s.is_empty() || s.chars().count() > 60 || s.chars().any(char::is_control) {
                    Err("the app name is 1 to 60 printable characters".to_owned())
                } else {
                    Ok(s.to_owned())
                }
            })?
            .unwrap_or_else(|| "My App".to_owned());
        let authorized_parties = sources.parse(AUTHORIZED_PARTIES, |s| {
            let parties: Vec<String> = s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            for party in &parties {
                let url = url::Url::parse(party).map_err(|_| {
                    format!("\"{party}\" is not an origin such as https://app.example.com")
                })?;
                if url.origin().ascii_serialization() != *party {
                    return Err(format!(
                        "\"{party}\" is not an origin (scheme://host[:port], no path or slash)"
                    ));
                }
            }
            if parties.is_empty() {
                return Err("list at least one origin".to_owned());
            }
            Ok(parties)
        })?;
        let webhook_allow_private_networks = sources
            .parse(WEBHOOK_ALLOW_PRIVATE_NETWORKS, parse_bool)?
            .unwrap_or(false);
        let webhook_retry_schedule = sources
            .parse(WEBHOOK_RETRY_SCHEDULE, |s| {
                let delays = s
                    .split(',')
                    .map(|d| parse_duration(d.trim()))
                    .collect::<Result<Vec<_>, _>>()?;
                if delays.is_empty() || delays.len() > 20 {
                    return Err("give 1 to 20 delays, e.g. 5s,5m,30m,2h,5h,10h,10h".to_owned());
                }
                Ok(delays)
            })?
            .unwrap_or_else(|| latchkey_identity::webhooks::DeliverySettings::default().schedule);
        let webhook_timeout = sources
            .parse(WEBHOOK_TIMEOUT, |s| {
                let timeout = parse_duration(s)?;
                if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(300) {
                    return Err("the timeout must be between 100ms and 300s".to_owned());
                }
                Ok(timeout)
            })?
            .unwrap_or(Duration::from_secs(15));
        let mail = crate::mail_config::resolve(sources)?;
        let (connections, allowed_hosts) = resolve_http(sources)?;
        Ok(Self {
            addr,
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
            authorized_parties,
            clerk,
            mail,
            connections,
            allowed_hosts,
        })
    }
}

/// The HTTP server's limits and the extra hosts it answers for.
fn resolve_http(
    sources: &Sources,
) -> Result<(crate::serve::ConnectionLimits, Vec<String>), ConfigError> {
    let defaults = crate::serve::ConnectionLimits::default();
    let timeout = |s: &str| {
        let timeout = parse_duration(s)?;
        if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(3600) {
            return Err("the timeout must be between 100ms and 1h".to_owned());
        }
        Ok(timeout)
    };
    let limits = crate::serve::ConnectionLimits {
        header_timeout: sources
            .parse(HEADER_TIMEOUT, timeout)?
            .unwrap_or(defaults.header_timeout),
        idle_timeout: sources
            .parse(IDLE_TIMEOUT, timeout)?
            .unwrap_or(defaults.idle_timeout),
        max_connections: sources.parse(MAX_CONNECTIONS, |s| match s.parse::<usize>() {
            Ok(n) if (16..=1_000_000).contains(&n) => Ok(n),
            _ => Err(format!("\"{s}\" is not a number from 16 to 1000000")),
        })?,
    };
    let hosts = sources
        .parse(ALLOWED_HOSTS, |s| {
            s.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| {
                    let valid = h.len() <= 253
                        && h.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
                    if valid {
                        Ok(h.to_ascii_lowercase())
                    } else {
                        Err(format!(
                            "\"{h}\" is not a host name such as auth.example.com (no scheme or port)"
                        ))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        })?
        .unwrap_or_default();
    Ok((limits, hosts))
}

/// Longest duration any setting or age takes: ten years. Longer is a typo, and staying far
/// from the integer limits means adding it to a clock reading can never overflow.
const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// `250ms`, `5s`, `5m`, `2h`, `1d`, or a plain number of seconds, up to 3650d.
///
/// Strict on purpose: ASCII digits, then at most one of those units; no sign, space, fraction
/// or compound (`1h30m`). Friendlier parsers (jiff's, humantime's) accept many more spellings,
/// which would widen what the settings documented in the README accept for no gain.
///
/// # Errors
/// Anything else, or more than 3650 days, with a one-line reason.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let not_a_duration = || format!("\"{text}\" is not a duration such as 250ms, 5s, 5m, 2h or 1d");
    let too_long = || format!("\"{text}\" is longer than the longest accepted duration, 3650d");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(not_a_duration()),
    };
    if number.is_empty() {
        return Err(not_a_duration());
    }
    // `number` is ASCII digits, so parsing fails only when it overflows.
    let value: u64 = number.parse().map_err(|_| too_long())?;
    let millis = value.checked_mul(millis_per_unit).ok_or_else(too_long)?;
    let duration = Duration::from_millis(millis);
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

/// A duration from `min` to `max`, both given as written (`100ms`, `24h`) for the message.
fn bounded_duration(text: &str, min: &str, max: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < parse_duration(min)? || duration > parse_duration(max)? {
        return Err(format!("\"{text}\" is out of range; give {min} to {max}"));
    }
    Ok(duration)
}

fn clerk_settings(sources: &Sources) -> Result<Option<ClerkSettings>, ConfigError> {
    let publishable_key = sources.parse(CLERK_PUBLISHABLE_KEY, |s| {
        latchkey_app::session::clerk_frontend_api(s)
            .map(|_| s.to_owned())
            .ok_or_else(|| "not a Clerk publishable key (pk_live_… or pk_test_…)".to_owned())
    })?;
    let secret_key = sources.parse(CLERK_SECRET_KEY, |s| {
        if s.starts_with("sk_") && s.len() > 10 {
            Ok(Secret(s.to_owned()))
        } else {
            Err("not a Clerk secret key (sk_live_… or sk_test_…)".to_owned())
        }
    })?;
    let jwt_key = sources.parse(CLERK_JWT_KEY, |s| {
        // Environment files often carry the PEM's line breaks as "\n".
        let pem = s.replace("\\n", "\n");
        latchkey_protocol::jwt::VerifyingKey::from_spki_pem(&pem)
            .map_err(|e| format!("not a PEM public key: {e}"))?;
        Ok(pem)
    })?;
    if publishable_key.is_none() && secret_key.is_none() && jwt_key.is_none() {
        return Ok(None);
    }
    let url = |s: &str| -> Result<String, String> {
        let url = url::Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
        if matches!(url.scheme(), "http" | "https") {
            Ok(s.trim_end_matches('/').to_owned())
        } else {
            Err("expected an http(s) URL".to_owned())
        }
    };
    Ok(Some(ClerkSettings {
        publishable_key,
        secret_key,
        jwt_key,
        api_url: sources
            .parse(CLERK_API_URL, url)?
            .unwrap_or_else(|| "https://api.clerk.com".to_owned()),
        sign_in_url: sources.parse(CLERK_SIGN_IN_URL, url)?,
        account_url: sources.parse(CLERK_ACCOUNT_URL, url)?,
    }))
}

/// A comma-separated list of durations; panics on bad input (for tests and fixed strings).
///
/// # Panics
/// If any item is not a duration.
#[must_use]
pub fn parse_duration_list(text: &str) -> Vec<Duration> {
    text.split(',')
        .map(|d| parse_duration(d.trim()).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("\"{other}\" is not true or false")),
    }
}

/// A comma-separated list of `whsec_` secrets; errors name the position, never the secret.
fn parse_secret_list(text: &str) -> Result<Vec<SigningSecret>, String> {
    let mut secrets = Vec::new();
    for (index, part) in text.split(',').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let secret =
            SigningSecret::parse(part).map_err(|e| format!("secret #{}: {e}", index + 1))?;
        secrets.push(secret);
    }
    if secrets.is_empty() {
        return Err(
            "no secret given; expected whsec_... (comma-separated during a rotation)".to_owned(),
        );
    }
    Ok(secrets)
}

fn parse_public_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the public URL must start with http:// or https://".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the public URL needs a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the public URL cannot have a query or fragment".to_owned());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(flags: &[(Setting, &str)], env: &[(&str, &str)], file: &[(&str, &str)]) -> Sources {
        Sources {
            flags: flags.iter().map(|(s, v)| (*s, (*v).to_owned())).collect(),
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
            &[(ADDR, "127.0.0.1:1")],
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

        let err = Config::resolve(&sources(&[(ADDR, "nope")], &[], &[])).unwrap_err();
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
            &[(DATABASE_ACQUIRE_TIMEOUT, "750ms")],
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

    #[test]
    fn durations_take_the_documented_forms() {
        for (text, millis) in [
            ("250ms", 250),
            ("5s", 5_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("90", 90_000),
            (" 7d ", 604_800_000),
            ("0", 0),
            ("3650d", 315_360_000_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn garbage_and_overflowing_durations_are_refused() {
        for garbage in [
            "", "s", "ms", "-5s", "+5s", "5 s", "1.5h", "1h30m", "5x", "5S", "five", "٣s", "5sec",
        ] {
            let err = parse_duration(garbage).unwrap_err();
            assert!(
                err.contains("is not a duration such as"),
                "{garbage:?}: {err}"
            );
        }
        for huge in [
            "3651d",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999d",
            "213503982334601d",
            "18446744073709551615ms",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(err.contains("longer than the longest"), "{huge}: {err}");
        }
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let config = Config::resolve(&sources(&[], &[("LATCHKEY_ADDR", "")], &[])).unwrap();
        assert_eq!(config.addr.port(), 3000);
    }
}
