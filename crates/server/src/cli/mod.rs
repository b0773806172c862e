//! The command line: `latchkey [serve]`, `latchkey migrate`, and the operators' commands.
//!
//! Settings are global flags, so every subcommand takes `--data-dir`, `--database-url` and the
//! rest. Flags only carry values here; layering and validation live in [`crate::config`].

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, ConfigError, Origin, Sources};
use crate::startup::{self, Application};
use crate::telemetry;

mod app;
mod sync;
mod users;
mod webhooks;

/// Exit status for bad configuration or usage.
pub(crate) const EXIT_CONFIG: u8 = 2;
/// Exit status for a failure while running.
pub(crate) const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Sign-in, sessions and a users table you can trust, in one binary.",
    long_about = "Sign-in, sessions and a users table you can trust, in one binary.\n\n\
        Settings come from built-in defaults, then latchkey.toml (in the working directory, or \
        --config), then environment variables, then flags; later layers win. Each flag below \
        names its environment variable; the file uses the flag's name with underscores \
        (data_dir, database_url, ...).",
    after_help = "Run without a command to serve."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Every setting, as a flag. Values stay strings until [`Config::resolve`] validates them, so
/// an error names the setting the way it was given.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// TOML config file [default: ./latchkey.toml if it exists] [env: LATCHKEY_CONFIG]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:3000] [env: LATCHKEY_ADDR]
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Directory for latchkey's files, created if missing [default: ./latchkey-data] [env: LATCHKEY_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// URL latchkey is reached at, for links, redirects and token issuers [default: http://<addr>] [env: LATCHKEY_PUBLIC_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Database: postgres://… or sqlite://…; add ?pgbouncer=true behind a transaction pooler [default: SQLite file in the data directory] [env: DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Direct (session) database URL for migrations, when DATABASE_URL goes through a pooler [env: DIRECT_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub direct_database_url: Option<String>,
    /// Maximum pooled database connections, 1 to 1000 [default: 16] [env: LATCHKEY_DATABASE_MAX_CONNECTIONS]
    #[arg(long, global = true, value_name = "N")]
    pub database_max_connections: Option<String>,
    /// Longest one database statement may run, 100ms to 24h; Postgres cancels it, and the client gives up a second later on a database that stopped answering [default: 30s] [env: LATCHKEY_DATABASE_STATEMENT_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION")]
    pub database_statement_timeout: Option<String>,
    /// How long a request waits for a database connection before it gets 503 with Retry-After, 100ms to 300s [default: 5s] [env: LATCHKEY_DATABASE_ACQUIRE_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION")]
    pub database_acquire_timeout: Option<String>,
    /// Log format, text or json; the level comes from RUST_LOG [default: text] [env: LATCHKEY_LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Signing secret(s) of Clerk webhooks to /api/webhooks/clerk, comma-separated during a rotation; prefer the environment, flags show in process lists [env: CLERK_WEBHOOK_SIGNING_SECRET]
    #[arg(long, global = true, value_name = "WHSEC", hide_env_values = true)]
    pub clerk_webhook_signing_secret: Option<String>,
    /// Master secret (32+ characters) that seals signing keys and keys CSRF tokens; every instance on one database needs the same one [default: master.key in the data directory, created on first start] [env: LATCHKEY_SECRET]
    #[arg(long, global = true, value_name = "SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Take client addresses from X-Forwarded-For; only behind a proxy that sets it [default: false] [env: LATCHKEY_TRUST_FORWARDED_FOR]
    #[arg(long, global = true, value_name = "BOOL")]
    pub trust_forwarded_for: Option<String>,
    /// Sign-in attempts allowed per client address per 10 minutes [default: 100] [env: LATCHKEY_SIGN_IN_ATTEMPTS_PER_IP]
    #[arg(long, global = true, value_name = "N")]
    pub sign_in_attempts_per_ip: Option<String>,
    /// Sign-ups allowed per client address per hour [default: 20] [env: LATCHKEY_SIGN_UPS_PER_IP]
    #[arg(long, global = true, value_name = "N")]
    pub sign_ups_per_ip: Option<String>,
    /// Register the app's own receiver as a webhook endpoint (the all-in-one run) [default: true] [env: LATCHKEY_INTERNAL_WEBHOOK]
    #[arg(long, global = true, value_name = "BOOL")]
    pub internal_webhook: Option<String>,
    /// Allow webhook endpoints on private, loopback and link-local addresses [default: false] [env: LATCHKEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS]
    #[arg(long, global = true, value_name = "BOOL")]
    pub webhook_allow_private_networks: Option<String>,
    /// Delays between webhook delivery attempts [default: 5s,5m,30m,2h,5h,10h,10h] [env: LATCHKEY_WEBHOOK_RETRY_SCHEDULE]
    #[arg(long, global = true, value_name = "DELAYS")]
    pub webhook_retry_schedule: Option<String>,
    /// Timeout of one webhook delivery attempt [default: 15s] [env: LATCHKEY_WEBHOOK_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION")]
    pub webhook_timeout: Option<String>,
    /// The app's name in its header [default: My App] [env: LATCHKEY_APP_NAME]
    #[arg(long, global = true, value_name = "NAME")]
    pub app_name: Option<String>,
    /// Origins allowed as a session token's azp, comma-separated; tokens without azp are then refused [env: LATCHKEY_AUTHORIZED_PARTIES]
    #[arg(long, global = true, value_name = "ORIGINS")]
    pub authorized_parties: Option<String>,
    /// Clerk publishable key (pk_…): the app then verifies Clerk's sessions [env: CLERK_PUBLISHABLE_KEY]
    #[arg(long, global = true, value_name = "KEY")]
    pub clerk_publishable_key: Option<String>,
    /// Clerk secret key (sk_…) for provisioning and sync through Clerk's Backend API [env: CLERK_SECRET_KEY]
    #[arg(long, global = true, value_name = "KEY", hide_env_values = true)]
    pub clerk_secret_key: Option<String>,
    /// Clerk's PEM public key, to verify sessions without calling Clerk [env: CLERK_JWT_KEY]
    #[arg(long, global = true, value_name = "PEM")]
    pub clerk_jwt_key: Option<String>,
    /// Clerk's Backend API base URL [default: https://api.clerk.com] [env: CLERK_API_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub clerk_api_url: Option<String>,
    /// Where signed-out visitors go in Clerk mode [default: the Account Portal's /sign-in] [env: CLERK_SIGN_IN_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub clerk_sign_in_url: Option<String>,
    /// Where "Manage account" leads in Clerk mode [default: the Account Portal's /user] [env: CLERK_ACCOUNT_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub clerk_account_url: Option<String>,
    /// SMTP relay for mail: smtps://user:password@host:465 (TLS), smtp://host:587?tls=required (STARTTLS), or smtp://127.0.0.1:25 (plain, loopback); prefer the environment, flags show in process lists [default: none; mail stays in the dev mailbox at /dev/mailbox] [env: LATCHKEY_SMTP_URL]
    #[arg(long, global = true, value_name = "URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of every mail, "Name <address>" or an address [default: <app name> <no-reply@public host>] [env: LATCHKEY_MAIL_FROM]
    #[arg(long, global = true, value_name = "MAILBOX")]
    pub mail_from: Option<String>,
    /// Delays between mail delivery attempts [default: 5s,30s,2m,10m,30m,1h,2h,4h,8h] [env: LATCHKEY_MAIL_RETRY_SCHEDULE]
    #[arg(long, global = true, value_name = "DELAYS")]
    pub mail_retry_schedule: Option<String>,
    /// How long a sign-up, sign-in or new-address code is valid [default: 10m] [env: LATCHKEY_EMAIL_CODE_LIFETIME]
    #[arg(long, global = true, value_name = "DURATION")]
    pub email_code_lifetime: Option<String>,
    /// How long a password-reset code is valid [default: 30m] [env: LATCHKEY_RESET_CODE_LIFETIME]
    #[arg(long, global = true, value_name = "DURATION")]
    pub reset_code_lifetime: Option<String>,
    /// A client must send a request's head within this long of connecting (or of the request's first byte) [default: 10s] [env: LATCHKEY_HEADER_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION")]
    pub header_timeout: Option<String>,
    /// A keep-alive connection with nothing to do is closed after this long [default: 60s] [env: LATCHKEY_IDLE_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Open client connections at most, 16 or more; at the bound a newcomer replaces the longest-idle connection [default: the open-files limit less 64 and 3 per database connection, at most 10000] [env: LATCHKEY_MAX_CONNECTIONS]
    #[arg(long, global = true, value_name = "N")]
    pub max_connections: Option<String>,
    /// Host names, comma-separated, that requests may name besides the public URL's; others get 421 [env: LATCHKEY_ALLOWED_HOSTS]
    #[arg(long, global = true, value_name = "HOSTS")]
    pub allowed_hosts: Option<String>,
}

impl SettingsArgs {
    fn into_sources(
        self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> (Option<PathBuf>, Sources) {
        let mut sources = Sources {
            env: env.into_iter().collect(),
            ..Sources::default()
        };
        let given = [
            (config::ADDR, self.addr),
            (config::DATA_DIR, self.data_dir),
            (config::PUBLIC_URL, self.public_url),
            (config::DATABASE_URL, self.database_url),
            (config::DIRECT_DATABASE_URL, self.direct_database_url),
            (
                config::DATABASE_MAX_CONNECTIONS,
                self.database_max_connections,
            ),
            (
                config::DATABASE_STATEMENT_TIMEOUT,
                self.database_statement_timeout,
            ),
            (
                config::DATABASE_ACQUIRE_TIMEOUT,
                self.database_acquire_timeout,
            ),
            (config::LOG_FORMAT, self.log_format),
            (
                config::CLERK_WEBHOOK_SIGNING_SECRET,
                self.clerk_webhook_signing_secret,
            ),
            (config::SECRET, self.secret),
            (config::TRUST_FORWARDED_FOR, self.trust_forwarded_for),
            (
                config::SIGN_IN_ATTEMPTS_PER_IP,
                self.sign_in_attempts_per_ip,
            ),
            (config::SIGN_UPS_PER_IP, self.sign_ups_per_ip),
            (config::INTERNAL_WEBHOOK, self.internal_webhook),
            (
                config::WEBHOOK_ALLOW_PRIVATE_NETWORKS,
                self.webhook_allow_private_networks,
            ),
            (config::WEBHOOK_RETRY_SCHEDULE, self.webhook_retry_schedule),
            (config::WEBHOOK_TIMEOUT, self.webhook_timeout),
            (config::APP_NAME, self.app_name),
            (config::AUTHORIZED_PARTIES, self.authorized_parties),
            (config::CLERK_PUBLISHABLE_KEY, self.clerk_publishable_key),
            (config::CLERK_SECRET_KEY, self.clerk_secret_key),
            (config::CLERK_JWT_KEY, self.clerk_jwt_key),
            (config::CLERK_API_URL, self.clerk_api_url),
            (config::CLERK_SIGN_IN_URL, self.clerk_sign_in_url),
            (config::CLERK_ACCOUNT_URL, self.clerk_account_url),
            (config::SMTP_URL, self.smtp_url),
            (config::MAIL_FROM, self.mail_from),
            (config::MAIL_RETRY_SCHEDULE, self.mail_retry_schedule),
            (config::EMAIL_CODE_LIFETIME, self.email_code_lifetime),
            (config::RESET_CODE_LIFETIME, self.reset_code_lifetime),
            (config::HEADER_TIMEOUT, self.header_timeout),
            (config::IDLE_TIMEOUT, self.idle_timeout),
            (config::MAX_CONNECTIONS, self.max_connections),
            (config::ALLOWED_HOSTS, self.allowed_hosts),
        ];
        for (setting, value) in given {
            if let Some(value) = value {
                sources.flags.insert(setting, value);
            }
        }
        let config_file = self.config.or_else(|| {
            sources
                .env
                .get("LATCHKEY_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        (config_file, sources)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve latchkey over HTTP (the default)
    Serve,
    /// Apply pending database migrations, then exit
    Migrate,
    /// Inspect the app part's data
    App {
        #[command(subcommand)]
        command: app::AppCommand,
    },
    /// Manage identity accounts
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Manage session-token signing keys and API secret keys
    Keys {
        #[command(subcommand)]
        command: users::KeysCommand,
    },
    /// Manage outgoing webhook endpoints, deliveries and replays
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// Bring the app's users table in line with the issuer (backfill), or look for drift (check)
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
}

/// Parses the process's arguments and environment, runs the command, and returns its status.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = match utf8_environment(std::env::vars_os()) {
        Ok(env) => env,
        Err(error) => return fail(EXIT_CONFIG, &error),
    };
    let (config_file, mut sources) = cli.settings.into_sources(env);
    if let Err(error) = sources.load_file(config_file.as_deref()) {
        return fail(EXIT_CONFIG, &error);
    }
    let config = match Config::resolve(&sources) {
        Ok(config) => config,
        Err(error) => return fail(EXIT_CONFIG, &error),
    };
    telemetry::init(config.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(EXIT_FAILURE, &error),
    };
    runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Serve => {
            let mut app = match Application::build(config).await {
                Ok(app) => app,
                Err(error) => return fail(EXIT_FAILURE, &error),
            };
            if let Some(key) = app.take_initial_secret_key() {
                // Standard output, not the log: the key is a secret and is shown this once.
                users::announce_secret_key(&key, "the first");
            }
            match app.run(startup::shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(EXIT_FAILURE, &error),
            }
        }
        Command::Migrate => {
            let url = config.migration_url();
            match latchkey_store::migrate::run(url, crate::MIGRATIONS).await {
                Ok(report) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(
                        out,
                        "migrations: {} applied, {} already in place ({})",
                        report.applied.len(),
                        report.already_applied,
                        url.redacted()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => fail(EXIT_FAILURE, &error),
            }
        }
        Command::App { command } => app::run(command, &config).await,
        Command::Users { command } => users::run_users(command, &config).await,
        Command::Keys { command } => users::run_keys(command, &config).await,
        Command::Webhooks { command } => webhooks::run(command, &config).await,
        Command::Sync { command } => sync::run(command, &config).await,
    }
}

/// Prints `latchkey: <error: cause: cause>` on one line to stderr and returns `status`.
/// The environment variables latchkey reads: every setting's, and the config file's path.
fn own_variables() -> impl Iterator<Item = &'static str> {
    config::ALL
        .iter()
        .map(|setting| setting.env)
        .chain(["LATCHKEY_CONFIG"])
}

/// The environment as text. A variable whose name or value is not UTF-8 (which
/// `std::env::vars` would panic on) is skipped, as it cannot concern latchkey; unless it is one
/// of latchkey's own, which is refused by name rather than taken as unset. The value is never
/// shown: it may be a secret.
fn utf8_environment(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut env = Vec::new();
    for (name, value) in vars {
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => env.push((name, value)),
            Err(_) => {
                if let Some(own) = own_variables().find(|own| *own == name) {
                    return Err(ConfigError::Invalid {
                        origin: Origin::Env(own),
                        message: "the value is not UTF-8 text".to_owned(),
                    });
                }
            }
        }
    }
    Ok(env)
}

pub(crate) fn fail(status: u8, error: &dyn std::error::Error) -> ExitCode {
    let line = latchkey_web::ErrorChain(error)
        .to_string()
        .replace('\n', " ");
    let _ = writeln!(std::io::stderr().lock(), "latchkey: {line}");
    ExitCode::from(status)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;
    use crate::config::ALL;

    #[test]
    fn every_setting_has_a_flag_that_takes_effect() {
        for setting in ALL {
            let cli = Cli::try_parse_from(["latchkey", setting.flag, "value"])
                .unwrap_or_else(|e| panic!("{} is not a flag: {e}", setting.flag));
            let (_, sources) = cli.settings.into_sources(Vec::new());
            assert_eq!(
                sources.flags.get(setting).map(String::as_str),
                Some("value"),
                "{} is parsed but ignored",
                setting.flag
            );
        }
    }

    #[test]
    fn non_utf8_variables_are_skipped_unless_they_are_latchkeys() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt as _;

        let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
        let env = super::utf8_environment([
            (bytes(b"JUNK"), bytes(b"\xff\xfe")),
            (bytes(b"JUNK_\xff"), bytes(b"x")),
            (bytes(b"LATCHKEY_ADDR"), bytes(b"127.0.0.1:1")),
            (bytes(b"LATCHKEY_NOT_A_SETTING"), bytes(b"\xff")),
        ])
        .unwrap();
        assert_eq!(
            env,
            [("LATCHKEY_ADDR".to_owned(), "127.0.0.1:1".to_owned())]
        );
        for own in ["LATCHKEY_SECRET", "DATABASE_URL", "LATCHKEY_CONFIG"] {
            let error = super::utf8_environment([(bytes(own.as_bytes()), bytes(b"s3cr\xfft"))])
                .unwrap_err()
                .to_string();
            assert_eq!(error, format!("invalid {own}: the value is not UTF-8 text"));
        }
    }
}
