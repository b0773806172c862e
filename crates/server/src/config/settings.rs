//! Every setting, declared once.
//!
//! A declaration below is all there is to a setting: its doc comment is the `--help` text, its
//! key names it in `latchkey.toml`, the flag is the key with dashes (`--data-dir` for
//! `data_dir`), `env` is its environment variable, `default` is what applies when no layer
//! gives it (and what `--help` shows), and `parse` validates and converts the text. The
//! command line ([`crate::cli`]) builds its flags from [`ALL`], the config file accepts exactly
//! the keys in [`ALL`], and [`crate::config::Config::resolve`] reads each value through its
//! declaration, so a setting cannot be accepted somewhere and ignored.
//!
//! To add a setting: declare it here, then read it in `Config::resolve` (or a part's resolver)
//! with [`Sources::value`](super::Sources::value) or [`Sources::given`](super::Sources::given).
//! The tests in `crate::cli::settings` then check it through the flag, the environment and the
//! file, and ask for a sample value for it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use latchkey_identity::mail::{Sender, SmtpUrl};
use latchkey_identity::secrets::MasterKey;
use latchkey_protocol::webhook::SigningSecret;
use latchkey_store::DatabaseUrl;

use super::parse;
use super::{LogFormat, Secret};

/// What every setting has, whatever the type of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Its key in the config file.
    pub key: &'static str,
    /// Its flag: `--` and the key with `-` for `_`.
    pub flag: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// The placeholder `--help` shows for the value (`HOST:PORT`, `DURATION`).
    pub value_name: &'static str,
    /// One line for `--help` (the declaration's doc comment).
    pub help: &'static str,
    /// What applies when no layer gives the setting.
    pub default: Fallback,
}

/// What applies when no layer gives a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// This text, read by the setting's own parser: the default shown is the one applied.
    Value(&'static str),
    /// Worked out at start from other settings or the system; the text says how.
    Derived(&'static str),
    /// Nothing: the feature the setting turns on stays off.
    Absent,
}

impl Setting {
    /// The `--help` text: what the setting does, its default, its environment variable.
    #[must_use]
    pub fn help_line(&self) -> String {
        let help = self.help.trim();
        match self.default {
            Fallback::Value(text) | Fallback::Derived(text) => {
                format!("{help} [default: {text}] [env: {}]", self.env)
            }
            Fallback::Absent => format!("{help} [env: {}]", self.env),
        }
    }
}

/// Turns a setting's text (trimmed) into its value, or says in one line why it cannot.
pub type Parser<T> = fn(&str) -> Result<T, String>;

/// A setting that always has a value: the given one, or its default text parsed.
pub struct Fixed<T> {
    pub setting: Setting,
    /// The default, as `--help` shows it.
    pub default: &'static str,
    pub parse: Parser<T>,
}

impl<T> Fixed<T> {
    /// Declares a setting whose default is a value. Evaluated at compile time, so a fixed
    /// setting without one does not build.
    const fn new(setting: Setting, parse: Parser<T>) -> Self {
        let Fallback::Value(default) = setting.default else {
            panic!("a Fixed setting needs `default: Value(\"…\")`");
        };
        Self {
            setting,
            default,
            parse,
        }
    }
}

/// A setting that may be absent, whose default (if any) the resolver works out.
pub struct Optional<T> {
    pub setting: Setting,
    pub parse: Parser<T>,
}

impl<T> Optional<T> {
    /// Declares a setting without a value default. Evaluated at compile time, so a default
    /// value that would never be applied does not build.
    const fn new(setting: Setting, parse: Parser<T>) -> Self {
        if let Fallback::Value(_) = setting.default {
            panic!("a setting with `default: Value(…)` is Fixed, not Optional");
        }
        Self { setting, parse }
    }
}

/// `--` and `key` with `-` for `_`, as bytes; `N` is `key.len() + 2`.
const fn flag_bytes<const N: usize>(key: &str) -> [u8; N] {
    let key = key.as_bytes();
    let mut flag = [b'-'; N];
    let mut i = 0;
    while i < key.len() {
        assert!(
            key[i].is_ascii_lowercase() || key[i].is_ascii_digit() || key[i] == b'_',
            "a key is lowercase ASCII, digits and underscores"
        );
        flag[i + 2] = if key[i] == b'_' { b'-' } else { key[i] };
        i += 1;
    }
    flag
}

/// The flag of a key, as a `&'static str` computed at compile time.
macro_rules! flag {
    ($key:literal) => {{
        const KEY: &str = $key;
        const FLAG: [u8; KEY.len() + 2] = flag_bytes(KEY);
        match std::str::from_utf8(&FLAG) {
            Ok(flag) => flag,
            Err(_) => panic!("a flag is ASCII"),
        }
    }};
}

/// Declares each setting as a constant, and [`ALL`] as the list of them.
macro_rules! settings {
    ($(
        $(#[doc = $help:literal])+
        $name:ident: $kind:ident<$ty:ty> {
            key: $key:literal,
            env: $env:literal,
            value: $value_name:literal,
            default: $fallback:ident $(($text:literal))?,
            parse: $parse:expr $(,)?
        }
    )*) => {
        $(
            $(#[doc = $help])+
            pub const $name: $kind<$ty> = $kind::new(
                Setting {
                    key: $key,
                    flag: flag!($key),
                    env: $env,
                    value_name: $value_name,
                    help: concat!($($help),+),
                    default: Fallback::$fallback $(($text))?,
                },
                $parse,
            );
        )*
        /// Every setting, in `--help` order.
        pub const ALL: &[&Setting] = &[$(&$name.setting),*];
    };
}

settings! {
    /// Address to listen on
    ADDR: Fixed<SocketAddr> {
        key: "addr", env: "LATCHKEY_ADDR", value: "HOST:PORT",
        default: Value("127.0.0.1:3000"),
        parse: parse::socket_addr,
    }
    /// Serve Prometheus metrics at /metrics on this address (keep it on loopback or a private
    /// network: it is not authenticated)
    METRICS_ADDR: Optional<SocketAddr> {
        key: "metrics_addr", env: "LATCHKEY_METRICS_ADDR", value: "HOST:PORT",
        default: Absent,
        parse: parse::socket_addr,
    }
    /// Directory for latchkey's files, created if missing
    DATA_DIR: Fixed<PathBuf> {
        key: "data_dir", env: "LATCHKEY_DATA_DIR", value: "DIR",
        default: Value("latchkey-data"),
        parse: parse::data_dir,
    }
    /// URL latchkey is reached at, for links, redirects and token issuers
    PUBLIC_URL: Optional<url::Url> {
        key: "public_url", env: "LATCHKEY_PUBLIC_URL", value: "URL",
        default: Derived("http://<addr>"),
        parse: parse::public_url,
    }
    /// Database: postgres://… or sqlite://…; add ?pgbouncer=true behind a transaction pooler
    DATABASE_URL: Optional<DatabaseUrl> {
        key: "database_url", env: "DATABASE_URL", value: "URL",
        default: Derived("SQLite file in the data directory"),
        parse: parse::database_url,
    }
    /// Direct (session) database URL for migrations, when DATABASE_URL goes through a pooler
    DIRECT_DATABASE_URL: Optional<DatabaseUrl> {
        key: "direct_database_url", env: "DIRECT_DATABASE_URL", value: "URL",
        default: Derived("DATABASE_URL"),
        parse: parse::direct_database_url,
    }
    /// Maximum pooled database connections, 1 to 1000
    DATABASE_MAX_CONNECTIONS: Fixed<u32> {
        key: "database_max_connections", env: "LATCHKEY_DATABASE_MAX_CONNECTIONS", value: "N",
        default: Value("16"),
        parse: |s| parse::number_from(s, 1, 1000),
    }
    /// Longest one database statement may run, 100ms to 24h; Postgres cancels it, and the
    /// client gives up a second later on a database that stopped answering
    DATABASE_STATEMENT_TIMEOUT: Fixed<Duration> {
        key: "database_statement_timeout", env: "LATCHKEY_DATABASE_STATEMENT_TIMEOUT",
        value: "DURATION",
        default: Value("30s"),
        parse: |s| parse::duration_from(s, "100ms", "24h"),
    }
    /// How long a request waits for a database connection before it gets 503 with
    /// Retry-After, 100ms to 300s
    DATABASE_ACQUIRE_TIMEOUT: Fixed<Duration> {
        key: "database_acquire_timeout", env: "LATCHKEY_DATABASE_ACQUIRE_TIMEOUT",
        value: "DURATION",
        default: Value("5s"),
        parse: |s| parse::duration_from(s, "100ms", "300s"),
    }
    /// Log format, text or json; the level comes from RUST_LOG
    LOG_FORMAT: Fixed<LogFormat> {
        key: "log_format", env: "LATCHKEY_LOG_FORMAT", value: "FORMAT",
        default: Value("text"),
        parse: parse::log_format,
    }
    /// Signing secret(s) of Clerk webhooks to /api/webhooks/clerk, comma-separated during a
    /// rotation; prefer the environment, flags show in process lists
    CLERK_WEBHOOK_SIGNING_SECRET: Optional<Vec<SigningSecret>> {
        key: "clerk_webhook_signing_secret", env: "CLERK_WEBHOOK_SIGNING_SECRET",
        value: "WHSEC",
        default: Absent,
        parse: parse::signing_secrets,
    }
    /// Master secret (32+ characters) that seals signing keys and keys CSRF tokens; every
    /// instance on one database needs the same one
    SECRET: Optional<MasterKey> {
        key: "secret", env: "LATCHKEY_SECRET", value: "SECRET",
        default: Derived("master.key in the data directory, created on first start"),
        parse: |s| MasterKey::from_secret_text(s).map_err(|e| e.to_string()),
    }
    /// Take client addresses from X-Forwarded-For; only behind a proxy that sets it
    TRUST_FORWARDED_FOR: Fixed<bool> {
        key: "trust_forwarded_for", env: "LATCHKEY_TRUST_FORWARDED_FOR", value: "BOOL",
        default: Value("false"),
        parse: parse::boolean,
    }
    /// Sign-in attempts allowed per client address per 10 minutes
    SIGN_IN_ATTEMPTS_PER_IP: Fixed<i64> {
        key: "sign_in_attempts_per_ip", env: "LATCHKEY_SIGN_IN_ATTEMPTS_PER_IP", value: "N",
        default: Value("100"),
        parse: parse::positive,
    }
    /// Sign-ups allowed per client address per hour
    SIGN_UPS_PER_IP: Fixed<i64> {
        key: "sign_ups_per_ip", env: "LATCHKEY_SIGN_UPS_PER_IP", value: "N",
        default: Value("20"),
        parse: parse::positive,
    }
    /// Register the app's own receiver as a webhook endpoint (the all-in-one run)
    INTERNAL_WEBHOOK: Optional<bool> {
        key: "internal_webhook", env: "LATCHKEY_INTERNAL_WEBHOOK", value: "BOOL",
        default: Derived("true; false with Clerk keys"),
        parse: parse::boolean,
    }
    /// Allow webhook endpoints on private, loopback and link-local addresses
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: Fixed<bool> {
        key: "webhook_allow_private_networks", env: "LATCHKEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS",
        value: "BOOL",
        default: Value("false"),
        parse: parse::boolean,
    }
    /// Delays between webhook delivery attempts
    WEBHOOK_RETRY_SCHEDULE: Fixed<Vec<Duration>> {
        key: "webhook_retry_schedule", env: "LATCHKEY_WEBHOOK_RETRY_SCHEDULE", value: "DELAYS",
        default: Value("5s,5m,30m,2h,5h,10h,10h"),
        parse: |s| parse::delays(s, 20, "5s,5m,30m,2h,5h,10h,10h"),
    }
    /// Timeout of one webhook delivery attempt
    WEBHOOK_TIMEOUT: Fixed<Duration> {
        key: "webhook_timeout", env: "LATCHKEY_WEBHOOK_TIMEOUT", value: "DURATION",
        default: Value("15s"),
        parse: |s| parse::timeout(s, "300s"),
    }
    /// The app's name in its header
    APP_NAME: Fixed<String> {
        key: "app_name", env: "LATCHKEY_APP_NAME", value: "NAME",
        default: Value("My App"),
        parse: parse::app_name,
    }
    /// Origins allowed as a session token's azp, comma-separated; tokens without azp are then
    /// refused
    AUTHORIZED_PARTIES: Optional<Vec<String>> {
        key: "authorized_parties", env: "LATCHKEY_AUTHORIZED_PARTIES", value: "ORIGINS",
        default: Absent,
        parse: parse::origins,
    }
    /// Clerk publishable key (pk_…): the app then verifies Clerk's sessions
    CLERK_PUBLISHABLE_KEY: Optional<String> {
        key: "clerk_publishable_key", env: "CLERK_PUBLISHABLE_KEY", value: "KEY",
        default: Absent,
        parse: parse::clerk_publishable_key,
    }
    /// Clerk secret key (sk_…) for provisioning and sync through Clerk's Backend API
    CLERK_SECRET_KEY: Optional<Secret> {
        key: "clerk_secret_key", env: "CLERK_SECRET_KEY", value: "KEY",
        default: Absent,
        parse: parse::clerk_secret_key,
    }
    /// Clerk's PEM public key, to verify sessions without calling Clerk
    CLERK_JWT_KEY: Optional<String> {
        key: "clerk_jwt_key", env: "CLERK_JWT_KEY", value: "PEM",
        default: Absent,
        parse: parse::pem_public_key,
    }
    /// Clerk's Backend API base URL
    CLERK_API_URL: Fixed<String> {
        key: "clerk_api_url", env: "CLERK_API_URL", value: "URL",
        default: Value("https://api.clerk.com"),
        parse: parse::http_url,
    }
    /// Where signed-out visitors go in Clerk mode
    CLERK_SIGN_IN_URL: Optional<String> {
        key: "clerk_sign_in_url", env: "CLERK_SIGN_IN_URL", value: "URL",
        default: Derived("the Account Portal's /sign-in"),
        parse: parse::http_url,
    }
    /// Where "Manage account" leads in Clerk mode
    CLERK_ACCOUNT_URL: Optional<String> {
        key: "clerk_account_url", env: "CLERK_ACCOUNT_URL", value: "URL",
        default: Derived("the Account Portal's /user"),
        parse: parse::http_url,
    }
    /// How long audit log entries are kept; older ones are pruned hourly, the chain staying
    /// verifiable
    AUDIT_RETENTION: Fixed<Duration> {
        key: "audit_retention", env: "LATCHKEY_AUDIT_RETENTION", value: "DURATION",
        default: Value("365d"),
        parse: |s| parse::duration_from(s, "1d", "3650d"),
    }
    /// Keep the identity's accounts current from Clerk's user webhooks until the issuer
    /// switches to latchkey (needs Clerk's keys and CLERK_WEBHOOK_SIGNING_SECRET)
    IDENTITY_SHADOW: Optional<bool> {
        key: "identity_shadow", env: "LATCHKEY_IDENTITY_SHADOW", value: "BOOL",
        default: Derived("false"),
        parse: parse::boolean,
    }
    /// SMTP relay for mail: smtps://user:password@host:465 (TLS), smtp://host:587?tls=required
    /// (STARTTLS), or smtp://127.0.0.1:25 (plain, loopback); prefer the environment, flags
    /// show in process lists
    SMTP_URL: Optional<SmtpUrl> {
        key: "smtp_url", env: "LATCHKEY_SMTP_URL", value: "URL",
        default: Derived("none; mail stays in the dev mailbox at /dev/mailbox"),
        parse: SmtpUrl::parse,
    }
    /// Sender of every mail, "Name <address>" or an address
    MAIL_FROM: Optional<Sender> {
        key: "mail_from", env: "LATCHKEY_MAIL_FROM", value: "MAILBOX",
        default: Derived("<app name> <no-reply@public host>"),
        parse: Sender::parse,
    }
    /// Delays between mail delivery attempts
    MAIL_RETRY_SCHEDULE: Fixed<Vec<Duration>> {
        key: "mail_retry_schedule", env: "LATCHKEY_MAIL_RETRY_SCHEDULE", value: "DELAYS",
        default: Value("5s,30s,2m,10m,30m,1h,2h,4h,8h"),
        parse: |s| parse::delays(s, 30, "5s,30s,2m,10m,30m,1h"),
    }
    /// How long a sign-up, sign-in or new-address code is valid
    EMAIL_CODE_LIFETIME: Fixed<Duration> {
        key: "email_code_lifetime", env: "LATCHKEY_EMAIL_CODE_LIFETIME", value: "DURATION",
        default: Value("10m"),
        parse: parse::code_lifetime,
    }
    /// How long a password-reset code is valid
    RESET_CODE_LIFETIME: Fixed<Duration> {
        key: "reset_code_lifetime", env: "LATCHKEY_RESET_CODE_LIFETIME", value: "DURATION",
        default: Value("30m"),
        parse: parse::code_lifetime,
    }
    /// A client must send a request's head within this long of connecting (or of the
    /// request's first byte)
    HEADER_TIMEOUT: Fixed<Duration> {
        key: "header_timeout", env: "LATCHKEY_HEADER_TIMEOUT", value: "DURATION",
        default: Value("10s"),
        parse: |s| parse::timeout(s, "1h"),
    }
    /// A keep-alive connection with nothing to do is closed after this long
    IDLE_TIMEOUT: Fixed<Duration> {
        key: "idle_timeout", env: "LATCHKEY_IDLE_TIMEOUT", value: "DURATION",
        default: Value("60s"),
        parse: |s| parse::timeout(s, "1h"),
    }
    /// A request not answered within this long of its head (a body trickled in, say) gets 408
    /// and its connection is closed
    REQUEST_TIMEOUT: Fixed<Duration> {
        key: "request_timeout", env: "LATCHKEY_REQUEST_TIMEOUT", value: "DURATION",
        default: Value("60s"),
        parse: |s| parse::timeout(s, "1h"),
    }
    /// Open client connections at most, 16 or more; at the bound a newcomer replaces the
    /// longest-idle connection
    MAX_CONNECTIONS: Optional<usize> {
        key: "max_connections", env: "LATCHKEY_MAX_CONNECTIONS", value: "N",
        default: Derived("the open-files limit less 64 and 3 per database connection, at most 10000"),
        parse: |s| parse::number_from(s, 16, 1_000_000),
    }
    /// Host names, comma-separated, that requests may name besides the public URL's; others
    /// get 421
    ALLOWED_HOSTS: Optional<Vec<String>> {
        key: "allowed_hosts", env: "LATCHKEY_ALLOWED_HOSTS", value: "HOSTS",
        default: Absent,
        parse: parse::host_names,
    }
    /// Origins of the apps whose pages use Clerk's frontend SDKs against latchkey's Frontend
    /// API at /fapi, comma-separated: CORS with credentials, and where the handshake may
    /// return
    FAPI_ALLOWED_ORIGINS: Optional<Vec<String>> {
        key: "fapi_allowed_origins", env: "LATCHKEY_FAPI_ALLOWED_ORIGINS", value: "ORIGINS",
        default: Absent,
        parse: parse::origins,
    }
    /// The host the Frontend API's publishable key (pk_live_…) encodes, with a dot
    /// (clerk.localhost); session tokens are then issued by https://<host>
    FRONTEND_API_HOST: Optional<String> {
        key: "frontend_api_host", env: "LATCHKEY_FRONTEND_API_HOST", value: "HOST",
        default: Derived("the public URL's host, port and path"),
        parse: parse::frontend_api_host,
    }
    /// Directory holding the pinned @clerk/clerk-js and @clerk/ui packages, served at
    /// /npm/@clerk/… (see the README)
    CLERK_ASSETS_DIR: Optional<PathBuf> {
        key: "clerk_assets_dir", env: "LATCHKEY_CLERK_ASSETS_DIR", value: "DIR",
        default: Absent,
        parse: parse::data_dir,
    }
    /// Google sign-in: the OAuth client id from Google Cloud's credentials page
    OAUTH_GOOGLE_CLIENT_ID: Optional<String> {
        key: "oauth_google_client_id", env: "LATCHKEY_OAUTH_GOOGLE_CLIENT_ID", value: "ID",
        default: Absent,
        parse: parse::oauth_client_id,
    }
    /// Google sign-in: the client secret; prefer the environment, flags show in process lists
    OAUTH_GOOGLE_CLIENT_SECRET: Optional<Secret> {
        key: "oauth_google_client_secret", env: "LATCHKEY_OAUTH_GOOGLE_CLIENT_SECRET",
        value: "SECRET",
        default: Absent,
        parse: parse::oauth_client_secret,
    }
    /// Google sign-in: the issuer, whose discovery document names every endpoint
    OAUTH_GOOGLE_BASE_URL: Fixed<url::Url> {
        key: "oauth_google_base_url", env: "LATCHKEY_OAUTH_GOOGLE_BASE_URL", value: "URL",
        default: Value("https://accounts.google.com"),
        parse: parse::issuer_url,
    }
    /// Microsoft sign-in: the application (client) id from Entra ID's app registrations
    OAUTH_MICROSOFT_CLIENT_ID: Optional<String> {
        key: "oauth_microsoft_client_id", env: "LATCHKEY_OAUTH_MICROSOFT_CLIENT_ID", value: "ID",
        default: Absent,
        parse: parse::oauth_client_id,
    }
    /// Microsoft sign-in: the client secret; prefer the environment, flags show in process
    /// lists
    OAUTH_MICROSOFT_CLIENT_SECRET: Optional<Secret> {
        key: "oauth_microsoft_client_secret", env: "LATCHKEY_OAUTH_MICROSOFT_CLIENT_SECRET",
        value: "SECRET",
        default: Absent,
        parse: parse::oauth_client_secret,
    }
    /// Microsoft sign-in: the issuer; the common tenant takes work, school and personal
    /// accounts
    OAUTH_MICROSOFT_BASE_URL: Fixed<url::Url> {
        key: "oauth_microsoft_base_url", env: "LATCHKEY_OAUTH_MICROSOFT_BASE_URL", value: "URL",
        default: Value("https://login.microsoftonline.com/common/v2.0"),
        parse: parse::issuer_url,
    }
    /// GitHub sign-in: the OAuth app's client id (GitHub → Settings → Developer settings)
    OAUTH_GITHUB_CLIENT_ID: Optional<String> {
        key: "oauth_github_client_id", env: "LATCHKEY_OAUTH_GITHUB_CLIENT_ID", value: "ID",
        default: Absent,
        parse: parse::oauth_client_id,
    }
    /// GitHub sign-in: the client secret; prefer the environment, flags show in process lists
    OAUTH_GITHUB_CLIENT_SECRET: Optional<Secret> {
        key: "oauth_github_client_secret", env: "LATCHKEY_OAUTH_GITHUB_CLIENT_SECRET",
        value: "SECRET",
        default: Absent,
        parse: parse::oauth_client_secret,
    }
    /// GitHub sign-in: where its /login/oauth endpoints are (a GitHub Enterprise Server's
    /// address, say)
    OAUTH_GITHUB_BASE_URL: Fixed<url::Url> {
        key: "oauth_github_base_url", env: "LATCHKEY_OAUTH_GITHUB_BASE_URL", value: "URL",
        default: Value("https://github.com"),
        parse: parse::issuer_url,
    }
    /// GitHub sign-in: its REST API, for the user and their addresses
    OAUTH_GITHUB_API_URL: Fixed<url::Url> {
        key: "oauth_github_api_url", env: "LATCHKEY_OAUTH_GITHUB_API_URL", value: "URL",
        default: Value("https://api.github.com"),
        parse: parse::issuer_url,
    }
    /// A generic OpenID Connect provider: its id, lowercase letters and digits (Clerk's
    /// oauth_custom_<id>)
    OAUTH_CUSTOM_ID: Optional<String> {
        key: "oauth_custom_id", env: "LATCHKEY_OAUTH_CUSTOM_ID", value: "ID",
        default: Absent,
        parse: parse::oauth_custom_id,
    }
    /// The generic provider's name on its button
    OAUTH_CUSTOM_NAME: Optional<String> {
        key: "oauth_custom_name", env: "LATCHKEY_OAUTH_CUSTOM_NAME", value: "NAME",
        default: Derived("its id"),
        parse: parse::display_name,
    }
    /// The generic provider's issuer URL; its discovery document is at
    /// <issuer>/.well-known/openid-configuration
    OAUTH_CUSTOM_ISSUER: Optional<url::Url> {
        key: "oauth_custom_issuer", env: "LATCHKEY_OAUTH_CUSTOM_ISSUER", value: "URL",
        default: Absent,
        parse: parse::issuer_url,
    }
    /// The generic provider's client id
    OAUTH_CUSTOM_CLIENT_ID: Optional<String> {
        key: "oauth_custom_client_id", env: "LATCHKEY_OAUTH_CUSTOM_CLIENT_ID", value: "ID",
        default: Absent,
        parse: parse::oauth_client_id,
    }
    /// The generic provider's client secret; prefer the environment, flags show in process
    /// lists
    OAUTH_CUSTOM_CLIENT_SECRET: Optional<Secret> {
        key: "oauth_custom_client_secret", env: "LATCHKEY_OAUTH_CUSTOM_CLIENT_SECRET",
        value: "SECRET",
        default: Absent,
        parse: parse::oauth_client_secret,
    }
}
