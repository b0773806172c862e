//! `latchkey app …`: the app part's data, for operators.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use latchkey_app::users::{self, AppUser};

use super::{EXIT_FAILURE, fail};
use crate::Config;
use crate::startup::prepare_database;

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List the app's users table, tombstones included
    Users {
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: AppCommand, config: &Config) -> ExitCode {
    match command {
        AppCommand::Users { json } => {
            let db = match prepare_database(config).await {
                Ok(db) => db,
                Err(error) => return fail(EXIT_FAILURE, &error),
            };
            let listed = async {
                let mut tx = db.begin_read().await?;
                let rows = users::list(&mut tx).await?;
                tx.commit().await?;
                Ok::<_, latchkey_store::StoreError>(rows)
            }
            .await;
            db.close().await;
            let rows = match listed {
                Ok(rows) => rows,
                Err(error) => return fail(EXIT_FAILURE, &error),
            };
            let text = if json {
                match serde_json::to_string_pretty(&rows) {
                    Ok(text) => text,
                    Err(error) => return fail(EXIT_FAILURE, &error),
                }
            } else {
                table(&rows)
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            ExitCode::SUCCESS
        }
    }
}

fn table(rows: &[AppUser]) -> String {
    let header = [
        "ID",
        "CLERK USER ID",
        "EMAIL",
        "NAME",
        "USERNAME",
        "SOURCE UPDATED",
        "STATE",
    ];
    let mut cells: Vec<[String; 7]> = vec![header.map(str::to_owned)];
    for user in rows {
        let name = [user.first_name.as_deref(), user.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        cells.push([
            user.id.clone(),
            user.clerk_user_id.clone(),
            match (&user.email, user.email_verified) {
                (Some(email), true) => email.clone(),
                (Some(email), false) => format!("{email} (unverified)"),
                (None, _) => String::new(),
            },
            name,
            user.username.clone().unwrap_or_default(),
            user.source_updated_at.to_string(),
            if user.deleted_at.is_some() {
                "deleted"
            } else {
                "active"
            }
            .to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text.push_str(&format!("{} users", rows.len()));
    text
}
