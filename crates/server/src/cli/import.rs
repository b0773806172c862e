//! `latchkey import clerk`: accounts moved in from Clerk, from its dashboard's user export (a
//! CSV with password digests) or by paging through its Backend API (no digests: Clerk's API
//! does not return them). Users keep their `user_…` ids; see `latchkey_identity::flows::import`
//! for what a re-run changes.
//!
//! On a terminal, progress goes to standard error as it runs and a summary follows; otherwise
//! (or with `--json`) the report is one JSON document on standard output. Refused rows are
//! listed with their CSV line number (or user id) and the reason; the exit status is 1 if any
//! was refused.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use latchkey_app::session::{BackendApi, UserSource};
use latchkey_identity::Identity;
use latchkey_identity::flows::import::{self, ImportError, Imported, ImportedEmail, ImportedUser};
use latchkey_identity::mfa::TotpSecret;
use latchkey_identity::passwords::foreign::{Hasher, ImportedDigest};
use serde::Serialize;

use super::users::identity_for_command;
use super::{EXIT_CONFIG, EXIT_FAILURE, fail};
use crate::Config;

/// Users asked for per Backend API page.
const PAGE: u32 = 100;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import Clerk's users, keeping their ids and (from the CSV export) password digests
    Clerk {
        /// The CSV export from Clerk's dashboard; without it, users are read from Clerk's Backend API (CLERK_SECRET_KEY, CLERK_API_URL)
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Emit user.created / user.updated for imported accounts (off: the app already has them)
        #[arg(long)]
        emit_events: bool,
        /// Print the report as JSON (the default when standard output is not a terminal)
        #[arg(long)]
        json: bool,
    },
}

/// One account that was not imported.
#[derive(Debug, Serialize)]
struct Refused {
    /// The CSV line (the header is line 1); absent for Backend API users.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    reason: String,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    created: u64,
    updated: u64,
    unchanged: u64,
    refused: Vec<Refused>,
}

impl Report {
    fn seen(&self) -> u64 {
        self.created
            + self.updated
            + self.unchanged
            + u64::try_from(self.refused.len()).unwrap_or(u64::MAX)
    }

    fn progress(&self) -> String {
        format!(
            "{} accounts: {} created, {} updated, {} unchanged, {} refused",
            self.seen(),
            self.created,
            self.updated,
            self.unchanged,
            self.refused.len()
        )
    }
}

/// Imports accounts one by one and keeps the tally.
struct Importer {
    identity: Identity,
    emit_events: bool,
    report: Report,
    show_progress: bool,
}

impl Importer {
    async fn import(&mut self, line: Option<u64>, user: Result<ImportedUser, Refused>) {
        let user = match user {
            Ok(user) => user,
            Err(refused) => {
                self.report.refused.push(refused);
                return;
            }
        };
        let id = user.id.clone();
        match import::import_user(&self.identity, user, self.emit_events).await {
            Ok(Imported::Created) => self.report.created += 1,
            Ok(Imported::Updated) => self.report.updated += 1,
            Ok(Imported::Unchanged) => self.report.unchanged += 1,
            Err(error) => {
                if let ImportError::Store(error) = &error {
                    tracing::warn!(user.id = %id, error = %latchkey_web::ErrorChain(error), "an account could not be imported");
                }
                self.report.refused.push(Refused {
                    line,
                    id: Some(id),
                    reason: error.to_string(),
                });
            }
        }
        if self.show_progress && self.report.seen().is_multiple_of(100) {
            let _ = write!(std::io::stderr().lock(), "\r{}", self.report.progress());
        }
    }
}

pub async fn run(command: ImportCommand, config: &Config) -> ExitCode {
    let ImportCommand::Clerk {
        csv,
        emit_events,
        json,
    } = command;
    if csv.is_none() && config.clerk.as_ref().is_none_or(|c| c.secret_key.is_none()) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "latchkey: import clerk needs --csv FILE (Clerk's dashboard export) or CLERK_SECRET_KEY to read Clerk's Backend API"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let identity = match identity_for_command(config).await {
        Ok(identity) => identity,
        Err(error) => return fail(EXIT_FAILURE, &error),
    };
    let json = json || !std::io::stdout().is_terminal();
    let mut importer = Importer {
        identity,
        emit_events,
        report: Report::default(),
        show_progress: !json && std::io::stderr().is_terminal(),
    };
    let read = match &csv {
        Some(path) => from_csv(&mut importer, path).await,
        None => from_backend_api(&mut importer, config).await,
    };
    if importer.show_progress {
        let _ = writeln!(std::io::stderr().lock());
    }
    let report = importer.report;
    if let Err(error) = read {
        // What was imported stays; the report says how far it got.
        let _ = writeln!(
            std::io::stderr().lock(),
            "latchkey: import stopped after {}: {error}",
            report.progress()
        );
        return ExitCode::from(EXIT_FAILURE);
    }
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        let _ = writeln!(out, "imported {}", report.progress());
        for refused in &report.refused {
            let place = match (refused.line, &refused.id) {
                (Some(line), _) => format!("line {line}"),
                (None, Some(id)) => id.clone(),
                (None, None) => String::new(),
            };
            let _ = writeln!(out, "  {place}: {}", refused.reason);
        }
    }
    if report.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// Why reading the source stopped.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("cannot read {path}: {source}")]
    Csv {
        path: String,
        #[source]
        source: csv::Error,
    },
    #[error("the CSV has no `id` column; is it Clerk's user export?")]
    NoIdColumn,
    #[error("Clerk's Backend API: {0}")]
    Api(String),
}

async fn from_csv(importer: &mut Importer, path: &Path) -> Result<(), ReadError> {
    let csv_error = |source| ReadError::Csv {
        path: path.display().to_string(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(csv_error)?;
    let headers = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    let columns = Columns {
        id: column("id").ok_or(ReadError::NoIdColumn)?,
        first_name: column("first_name"),
        last_name: column("last_name"),
        username: column("username"),
        primary_email: column("primary_email_address"),
        verified_emails: column("verified_email_addresses"),
        unverified_emails: column("unverified_email_addresses"),
        password_digest: column("password_digest"),
        password_hasher: column("password_hasher"),
        totp_secret: column("totp_secret"),
    };
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map(csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let user = columns.read(&record).map_err(|reason| Refused {
            line,
            id: record
                .get(columns.id)
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
            reason,
        });
        importer.import(line, user).await;
    }
    Ok(())
}

/// Where each field of Clerk's export is.
struct Columns {
    id: usize,
    first_name: Option<usize>,
    last_name: Option<usize>,
    username: Option<usize>,
    primary_email: Option<usize>,
    verified_emails: Option<usize>,
    unverified_emails: Option<usize>,
    password_digest: Option<usize>,
    password_hasher: Option<usize>,
    totp_secret: Option<usize>,
}

impl Columns {
    fn read(&self, record: &csv::StringRecord) -> Result<ImportedUser, String> {
        let text = |column: Option<usize>| {
            column
                .and_then(|c| record.get(c))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let list = |column: Option<usize>| -> Vec<String> {
            text(column)
                .map(|v| {
                    v.split(['|', ',', ';'])
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let verified = list(self.verified_emails);
        let is_verified = |address: &str| verified.iter().any(|v| v.eq_ignore_ascii_case(address));
        let mut emails: Vec<ImportedEmail> = Vec::new();
        let addresses = text(self.primary_email)
            .into_iter()
            .chain(verified.iter().cloned())
            .chain(list(self.unverified_emails));
        for address in addresses {
            if !emails
                .iter()
                .any(|e| e.address.eq_ignore_ascii_case(&address))
            {
                emails.push(ImportedEmail {
                    verified: is_verified(&address),
                    address,
                });
            }
        }
        let password = match (text(self.password_digest), text(self.password_hasher)) {
            (None, _) => None,
            (Some(_), None) => return Err("password_digest without password_hasher".to_owned()),
            (Some(digest), Some(hasher)) => Some(
                Hasher::parse(&hasher)
                    .and_then(|hasher| ImportedDigest::new(hasher, &digest))
                    .map_err(|e| e.to_string())?,
            ),
        };
        let totp_secret = match text(self.totp_secret) {
            None => None,
            Some(secret) => Some(TotpSecret::from_base32(&secret).ok_or_else(|| {
                "totp_secret is not a base32 secret of at least 10 bytes".to_owned()
            })?),
        };
        Ok(ImportedUser {
            id: text(Some(self.id)).unwrap_or_default(),
            first_name: text(self.first_name),
            last_name: text(self.last_name),
            username: text(self.username),
            emails,
            password,
            totp_secret,
            ..ImportedUser::default()
        })
    }
}

async fn from_backend_api(importer: &mut Importer, config: &Config) -> Result<(), ReadError> {
    let Some(clerk) = &config.clerk else {
        return Ok(());
    };
    let Some(secret) = &clerk.secret_key else {
        return Ok(());
    };
    crate::startup::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| ReadError::Api(e.to_string()))?;
    let api = BackendApi::new(&clerk.api_url, secret.0.clone(), client);
    let mut cursor: Option<String> = None;
    loop {
        let page = api
            .list_users(PAGE, cursor.as_deref())
            .await
            .map_err(|e| ReadError::Api(e.to_string()))?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        cursor = Some(last.id.clone());
        for user in page {
            importer
                .import(None, Ok(ImportedUser::from_clerk(user)))
                .await;
        }
    }
}
