//! `latchkey sync backfill|check`: the app's users table against the issuer.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use latchkey_app::session::{BackendApi, UserSource};
use latchkey_app::sync;

use super::users::identity_for_command;
use super::{EXIT_CONFIG, EXIT_FAILURE, fail};
use crate::Config;
use crate::bridge::IdentityUsers;

/// Exit status when `check` finds drift.
const EXIT_DRIFT: u8 = 4;

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Apply every user of the issuer to the app's table (safe to re-run)
    Backfill {
        #[arg(long)]
        json: bool,
    },
    /// Report users missing from the app, stale rows, and rows the issuer no longer has; exits 4 on drift
    Check {
        /// Repair what was found
        #[arg(long)]
        fix: bool,
        #[arg(long)]
        json: bool,
    },
}

async fn source(config: &Config) -> Result<(Arc<dyn UserSource>, latchkey_store::Db), ExitCode> {
    let identity = identity_for_command(config)
        .await
        .map_err(|e| fail(EXIT_FAILURE, &e))?;
    let db = identity.db().clone();
    match &config.clerk {
        None => Ok((Arc::new(IdentityUsers(identity)), db)),
        Some(clerk) => {
            let Some(secret) = &clerk.secret_key else {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "latchkey: syncing with Clerk needs CLERK_SECRET_KEY"
                );
                return Err(ExitCode::from(EXIT_CONFIG));
            };
            crate::startup::install_crypto_provider();
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| fail(EXIT_FAILURE, &e))?;
            Ok((
                Arc::new(BackendApi::new(&clerk.api_url, secret.0.clone(), client)),
                db,
            ))
        }
    }
}

fn print(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

pub async fn run(command: SyncCommand, config: &Config) -> ExitCode {
    let (source, db) = match source(config).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    let code = match command {
        SyncCommand::Backfill { json } => {
            let terminal = std::io::stderr().is_terminal();
            let result = sync::backfill(&db, source.as_ref(), |report| {
                if terminal {
                    let _ = write!(
                        std::io::stderr().lock(),
                        "\rbackfill: {} users from {} pages…",
                        report.users,
                        report.pages
                    );
                }
            })
            .await;
            if terminal {
                let _ = writeln!(std::io::stderr().lock());
            }
            match result {
                Ok(report) if json => {
                    print(&serde_json::to_string(&report).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    print(&format!(
                        "backfill: {} users from {} pages: {} inserted, {} updated, {} unchanged",
                        report.users,
                        report.pages,
                        report.inserted,
                        report.updated,
                        report.unchanged
                    ));
                    ExitCode::SUCCESS
                }
                Err(error) => fail(EXIT_FAILURE, &error),
            }
        }
        SyncCommand::Check { fix, json } => match sync::check(&db, source.as_ref(), fix).await {
            Ok(report) => {
                if json {
                    print(&serde_json::to_string(&report).unwrap_or_default());
                } else {
                    print(&format!(
                        "check: {} issuer users; {} missing from the app, {} stale, {} no longer at the issuer{}",
                        report.checked,
                        report.missing.len(),
                        report.stale.len(),
                        report.orphaned.len(),
                        if report.fixed { "; repaired" } else { "" }
                    ));
                    for (label, ids) in [
                        ("missing", &report.missing),
                        ("stale", &report.stale),
                        ("orphaned", &report.orphaned),
                    ] {
                        for id in ids.iter().take(20) {
                            print(&format!("  {label}: {id}"));
                        }
                    }
                }
                if report.has_drift() && !report.fixed {
                    ExitCode::from(EXIT_DRIFT)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(error) => fail(EXIT_FAILURE, &error),
        },
    };
    db.close().await;
    code
}
