//! `latchkey audit verify|list`: the audit log from a shell.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use latchkey_identity::audit::{self, chain};

use super::users::identity_for_command;
use super::{EXIT_FAILURE, fail};
use crate::Config;

/// Exit status when the chain is broken.
const EXIT_BROKEN: u8 = 5;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every entry's hash and link, from the first entry kept to the last written;
    /// names the first entry where the chain breaks and exits 5
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// The newest entries, newest first
    List {
        /// Only entries about this user (`user_…`)
        #[arg(long)]
        user: Option<String>,
        /// How many, 1 to 500
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

fn print(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

pub async fn run(command: AuditCommand, config: &Config) -> ExitCode {
    let identity = match identity_for_command(config).await {
        Ok(identity) => identity,
        Err(error) => return fail(EXIT_FAILURE, &error),
    };
    let code = match command {
        AuditCommand::Verify { json } => match chain::verify(&identity).await {
            Ok(verified) => {
                if json {
                    print(&serde_json::to_string_pretty(&verified).unwrap_or_default());
                } else if let Some(broken) = &verified.broken {
                    print(&format!(
                        "audit log: the chain breaks at entry {}{}: {} ({} entries before it verified)",
                        broken.seq,
                        broken
                            .id
                            .as_deref()
                            .map(|id| format!(" ({id})"))
                            .unwrap_or_default(),
                        broken.reason,
                        verified.checked
                    ));
                } else {
                    print(&format!(
                        "audit log: {} entries verified (entries {} to {})",
                        verified.checked, verified.first_seq, verified.last_seq
                    ));
                }
                if verified.broken.is_some() {
                    ExitCode::from(EXIT_BROKEN)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(error) => fail(EXIT_FAILURE, &error),
        },
        AuditCommand::List { user, limit, json } => {
            match audit::page(&identity, None, user.as_deref(), limit.clamp(1, 500)).await {
                Ok(rows) if json => {
                    print(&serde_json::to_string_pretty(&rows).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Ok(rows) => {
                    for row in rows {
                        print(&format!(
                            "{:>6}  {}  {}{}  {}  {}  {}",
                            row.seq,
                            latchkey_web::time::format_utc(row.occurred_at).1,
                            row.actor_type,
                            row.actor_id
                                .as_deref()
                                .map(|id| format!(":{id}"))
                                .unwrap_or_default(),
                            row.action,
                            row.subject_id.as_deref().unwrap_or("-"),
                            row.detail
                        ));
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => fail(EXIT_FAILURE, &error),
            }
        }
    };
    identity.db().close().await;
    code
}
