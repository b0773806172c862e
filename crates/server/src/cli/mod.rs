//! The command line: `latchkey [serve]`, `latchkey migrate`, and the operators' commands.
//!
//! Settings are global flags, so every subcommand takes `--data-dir`, `--database-url` and the
//! rest. They are built from the settings' declarations (see [`settings`]) and only carry
//! values here; layering and validation live in [`crate::config`].

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::startup::{self, Application};
use crate::telemetry;
use latchkey_identity::audit;

mod app;
mod audit_cli;
mod import;
mod settings;
mod shadow_check;
mod sync;
mod users;
mod webhooks;

/// Exit status for bad configuration or usage.
pub(crate) const EXIT_CONFIG: u8 = 2;
/// Exit status for a failure while running.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// The commands and `--config`. The settings' flags are added from their declarations by
/// [`settings::command`], so parse with [`settings::parse_from`]: `Cli::parse` alone would
/// refuse them.
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
    /// TOML config file [default: ./latchkey.toml if it exists] [env: LATCHKEY_CONFIG]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
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
    /// Move accounts in from Clerk, keeping their ids and password digests
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
    /// Bring the app's users table in line with the issuer (backfill), or look for drift (check)
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
    /// Read the audit log and verify its chain
    Audit {
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
    },
    /// Print what a @clerk/nextjs app needs to use latchkey's Frontend API: the publishable
    /// key, the proxy URL and the Backend API URL (nothing secret)
    ClerkKeys,
}

/// Parses the process's arguments and environment, runs the command, and returns its status.
#[must_use]
pub fn main() -> ExitCode {
    let (cli, flags) = match settings::parse_from(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    };
    let env = match settings::utf8_environment(std::env::vars_os()) {
        Ok(env) => env,
        Err(error) => return fail(EXIT_CONFIG, &error),
    };
    let (config_file, mut sources) = settings::sources(cli.config, flags, env);
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
        Command::ClerkKeys => clerk_keys(&config),
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
        // What a command changes is recorded in the audit log as done at the command line.
        other => audit::acting_as(audit::Actor::Cli, operate(other, &config)).await,
    }
}

/// The commands that operate on a database rather than serve it.
async fn operate(command: Command, config: &Config) -> ExitCode {
    match command {
        Command::Serve | Command::Migrate | Command::ClerkKeys => {
            unreachable!("handled by `run`")
        }
        Command::App { command } => app::run(command, config).await,
        Command::Users { command } => users::run_users(command, config).await,
        Command::Keys { command } => users::run_keys(command, config).await,
        Command::Webhooks { command } => webhooks::run(command, config).await,
        Command::Sync { command } => sync::run(command, config).await,
        Command::Import { command } => import::run(command, config).await,
        Command::Audit { command } => audit_cli::run(command, config).await,
    }
}

/// `latchkey clerk-keys`: the environment of an app on Clerk's SDKs, as `KEY=value` lines.
fn clerk_keys(config: &Config) -> ExitCode {
    let identity = startup::identity_config(config, &config.public_url_or_default());
    let Some(key) = identity.publishable_key() else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "latchkey: the Frontend API's host ({}) has no dot, which Clerk's SDKs refuse; set LATCHKEY_FRONTEND_API_HOST (e.g. clerk.localhost)",
            identity.frontend_api()
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    let base = identity.issuer();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY={key}");
    let _ = writeln!(out, "CLERK_PUBLISHABLE_KEY={key}");
    let _ = writeln!(
        out,
        "NEXT_PUBLIC_CLERK_PROXY_URL={base}{}",
        latchkey_identity::web::fapi::PREFIX
    );
    let _ = writeln!(out, "CLERK_API_URL={base}");
    let _ = writeln!(
        out,
        "# CLERK_SECRET_KEY: a management API key (`latchkey keys` creates one)"
    );
    ExitCode::SUCCESS
}

/// Prints `latchkey: <error: cause: cause>` on one line to stderr and returns `status`.
pub(crate) fn fail(status: u8, error: &dyn std::error::Error) -> ExitCode {
    let line = latchkey_web::ErrorChain(error)
        .to_string()
        .replace('\n', " ");
    let _ = writeln!(std::io::stderr().lock(), "latchkey: {line}");
    ExitCode::from(status)
}
