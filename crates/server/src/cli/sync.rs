//! `latchkey sync backfill|check`: the app's users table (or, before leaving Clerk, the
//! identity's accounts) against the issuer.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use latchkey_app::session::{BackendApi, UserSource};
use latchkey_app::sync::{self, DriftReport};
use latchkey_identity::Identity;

use super::shadow_check;
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
        /// Whose users are the truth: `clerk` (needs CLERK_SECRET_KEY) or `identity`; by default Clerk when its keys are set
        #[arg(long, value_enum)]
        issuer: Option<Issuer>,
        /// What is compared with them: the app's users table, or (before leaving Clerk) the identity's accounts
        #[arg(long, value_enum, default_value = "app")]
        against: Against,
        /// Repair what was found
        #[arg(long)]
        fix: bool,
        #[arg(long)]
        json: bool,
    },
}

/// An issuer of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Issuer {
    Clerk,
    Identity,
}

/// What `check` compares with the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Against {
    App,
    Identity,
}

/// The issuer's users and the identity (whose database the app shares).
async fn source(
    config: &Config,
    issuer: Option<Issuer>,
) -> Result<(Arc<dyn UserSource>, Identity), ExitCode> {
    let identity = identity_for_command(config)
        .await
        .map_err(|e| fail(EXIT_FAILURE, &e))?;
    let issuer = issuer.unwrap_or(if config.clerk.is_some() {
        Issuer::Clerk
    } else {
        Issuer::Identity
    });
    match (issuer, &config.clerk) {
        (Issuer::Identity, _) => Ok((Arc::new(IdentityUsers(identity.clone())), identity)),
        (Issuer::Clerk, None) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "latchkey: --issuer clerk needs CLERK_SECRET_KEY"
            );
            Err(ExitCode::from(EXIT_CONFIG))
        }
        (Issuer::Clerk, Some(clerk)) => {
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
                identity,
            ))
        }
    }
}

fn print(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

pub async fn run(command: SyncCommand, config: &Config) -> ExitCode {
    let issuer = match &command {
        SyncCommand::Check {
            issuer: Some(Issuer::Identity),
            against: Against::Identity,
            ..
        } => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "latchkey: --against identity compares the identity with Clerk: use --issuer clerk"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        SyncCommand::Check {
            against: Against::Identity,
            ..
        } => Some(Issuer::Clerk),
        SyncCommand::Check { issuer, .. } => *issuer,
        SyncCommand::Backfill { .. } => None,
    };
    let (source, identity) = match source(config, issuer).await {
        Ok(found) => found,
        Err(code) => return code,
    };
    let db = identity.db().clone();
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
        SyncCommand::Check {
            against: Against::Identity,
            fix,
            json,
            ..
        } => match shadow_check::check(&identity, source.as_ref(), fix).await {
            Ok(found) => {
                if json {
                    print(&serde_json::to_string(&found).unwrap_or_default());
                } else {
                    summarize(&found.drift, "the identity", |id| {
                        found
                            .differences
                            .get(id)
                            .map(|fields| format!(" ({})", fields.join(", ")))
                            .unwrap_or_default()
                    });
                    for (id, reason) in &found.refused {
                        print(&format!("  not repaired: {id}: {reason}"));
                    }
                }
                check_status(&found.drift, found.refused.is_empty())
            }
            Err(error) => fail(EXIT_FAILURE, &error),
        },
        SyncCommand::Check { fix, json, .. } => {
            match sync::check(&db, source.as_ref(), fix).await {
                Ok(report) => {
                    if json {
                        print(&serde_json::to_string(&report).unwrap_or_default());
                    } else {
                        summarize(&report, "the app", |_| String::new());
                    }
                    check_status(&report, true)
                }
                Err(error) => fail(EXIT_FAILURE, &error),
            }
        }
    };
    db.close().await;
    code
}

/// The text report of a check: a summary line, then up to 20 ids of each kind.
fn summarize(report: &DriftReport, target: &str, detail: impl Fn(&str) -> String) {
    print(&format!(
        "check: {} issuer users; {} missing from {target}, {} stale, {} no longer at the issuer{}",
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
            print(&format!("  {label}: {id}{}", detail(id)));
        }
    }
}

/// 4 for drift left in place, 1 if a repair was refused, else success.
fn check_status(report: &DriftReport, all_repaired: bool) -> ExitCode {
    if !all_repaired {
        ExitCode::from(EXIT_FAILURE)
    } else if report.has_drift() && !report.fixed {
        ExitCode::from(EXIT_DRIFT)
    } else {
        ExitCode::SUCCESS
    }
}
