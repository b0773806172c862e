//! `latchkey webhooks …`: the identity's outgoing webhook endpoints, their deliveries, replays.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use latchkey_identity::Identity;
use latchkey_identity::webhooks::EndpointError;

use super::users::identity_for_command;
use super::{EXIT_CONFIG, EXIT_FAILURE, fail};
use crate::Config;

const EXIT_NOT_FOUND: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add an endpoint; prints its id and its signing secret (shown once)
    Add {
        #[arg(long)]
        url: String,
        /// Event types to send, comma-separated (default: every type)
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List endpoints
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint; its pending deliveries stop
    Remove { endpoint: String },
    /// Give an endpoint a new secret; the old one keeps signing for 24 hours
    RotateSecret {
        endpoint: String,
        #[arg(long)]
        json: bool,
    },
    /// Re-enable an endpoint disabled after failing for days
    Enable { endpoint: String },
    /// Recent deliveries to an endpoint
    Deliveries {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send events again to an endpoint: every event since a time, or only the failed ones
    Replay {
        #[arg(long)]
        endpoint: String,
        /// Only events since then: 2026-11-26T08:00:00Z, or an age like 30m, 2h, 7d
        #[arg(long)]
        since: Option<String>,
        /// Only deliveries that failed for good
        #[arg(long)]
        failed_only: bool,
    },
    /// Send one event again to an endpoint
    Resend {
        /// The event id (msg_…, the svix-id)
        event: String,
        #[arg(long)]
        endpoint: String,
    },
}

fn print(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            print(&text);
            ExitCode::SUCCESS
        }
        Err(error) => fail(EXIT_FAILURE, &error),
    }
}

fn failure(error: &EndpointError) -> ExitCode {
    match error {
        EndpointError::NotFound => fail(EXIT_NOT_FOUND, error),
        EndpointError::BadUrl(_)
        | EndpointError::PrivateUrl(_)
        | EndpointError::BadEventType(_) => fail(EXIT_CONFIG, error),
        _ => fail(EXIT_FAILURE, error),
    }
}

/// `--since`: an RFC 3339 UTC time (`…Z`) or an age before now.
fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(age) = crate::config::parse_duration(text) {
        let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        return Ok(latchkey_protocol::time::now_ms().saturating_sub(age));
    }
    parse_rfc3339_utc(text).ok_or_else(|| {
        format!("--since {text:?} is neither a time like 2026-11-26T08:00:00Z nor an age like 2h")
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` as Unix milliseconds.
fn parse_rfc3339_utc(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z').or_else(|| text.strip_suffix('z'))?;
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let time = time.split('.').next()?;
    let mut time_parts = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (
        time_parts.next()??,
        time_parts.next()??,
        time_parts.next()??,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

pub async fn run(command: WebhooksCommand, config: &Config) -> ExitCode {
    let identity: Identity = match identity_for_command(config).await {
        Ok(identity) => identity,
        Err(error) => return fail(EXIT_FAILURE, &error),
    };
    let code = match command {
        WebhooksCommand::Add {
            url,
            events,
            json: as_json,
        } => match identity.add_endpoint(&url, &events).await {
            Ok((endpoint, secret)) if as_json => {
                json(&serde_json::json!({"endpoint": endpoint, "secret": secret.expose()}))
            }
            Ok((endpoint, secret)) => {
                print(&format!(
                    "endpoint {}\nsecret   {}",
                    endpoint.id,
                    secret.expose()
                ));
                print(
                    "Store the secret now: it is not shown again (rotate-secret makes a new one).",
                );
                ExitCode::SUCCESS
            }
            Err(error) => failure(&error),
        },
        WebhooksCommand::List { json: as_json } => match identity.list_endpoints().await {
            Ok(endpoints) if as_json => json(&endpoints),
            Ok(endpoints) => {
                for e in &endpoints {
                    let state = if e.disabled_at.is_some() {
                        "disabled"
                    } else if e.failing_since.is_some() {
                        "failing"
                    } else {
                        "active"
                    };
                    let types = if e.event_types.is_empty() {
                        "all events".to_owned()
                    } else {
                        e.event_types.join(",")
                    };
                    let url = e
                        .url
                        .clone()
                        .unwrap_or_else(|| "(the app's own receiver)".to_owned());
                    print(&format!("{}  {state:<8}  {url}  [{types}]", e.id));
                }
                print(&format!("{} endpoints", endpoints.len()));
                ExitCode::SUCCESS
            }
            Err(error) => fail(EXIT_FAILURE, &error),
        },
        WebhooksCommand::Remove { endpoint } => match identity.remove_endpoint(&endpoint).await {
            Ok(()) => {
                print(&format!("removed {endpoint}"));
                ExitCode::SUCCESS
            }
            Err(error) => failure(&error),
        },
        WebhooksCommand::RotateSecret {
            endpoint,
            json: as_json,
        } => match identity.rotate_endpoint_secret(&endpoint).await {
            Ok(secret) if as_json => {
                json(&serde_json::json!({"endpoint": endpoint, "secret": secret.expose()}))
            }
            Ok(secret) => {
                print(&format!(
                    "new secret {}\nThe previous secret keeps signing for 24 hours.",
                    secret.expose()
                ));
                ExitCode::SUCCESS
            }
            Err(error) => failure(&error),
        },
        WebhooksCommand::Enable { endpoint } => match identity.enable_endpoint(&endpoint).await {
            Ok(()) => {
                print(&format!("enabled {endpoint}"));
                ExitCode::SUCCESS
            }
            Err(error) => failure(&error),
        },
        WebhooksCommand::Deliveries {
            endpoint,
            limit,
            json: as_json,
        } => match identity.deliveries(&endpoint, limit).await {
            Ok(list) if as_json => json(&list),
            Ok(list) => {
                for d in &list {
                    let last = d.last_status.map_or_else(
                        || d.last_error.clone().unwrap_or_default(),
                        |s| format!("HTTP {s}"),
                    );
                    print(&format!(
                        "{}  {:<20}  {:<9}  attempts {}  {last}",
                        d.event_id, d.event_type, d.status, d.attempts
                    ));
                }
                ExitCode::SUCCESS
            }
            Err(error) => fail(EXIT_FAILURE, &error),
        },
        WebhooksCommand::Replay {
            endpoint,
            since,
            failed_only,
        } => {
            let since = match since.as_deref().map(parse_since).transpose() {
                Ok(since) => since,
                Err(message) => {
                    let _ = writeln!(std::io::stderr().lock(), "latchkey: {message}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match identity.replay(&endpoint, since, failed_only).await {
                Ok(count) => {
                    print(&format!("queued {count} deliveries to {endpoint}"));
                    ExitCode::SUCCESS
                }
                Err(error) => failure(&error),
            }
        }
        WebhooksCommand::Resend { event, endpoint } => {
            match identity.resend(&event, &endpoint).await {
                Ok(()) => {
                    print(&format!("queued {event} for {endpoint}"));
                    ExitCode::SUCCESS
                }
                Err(error) => failure(&error),
            }
        }
    };
    identity.db().close().await;
    code
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_times_parse() {
        assert_eq!(super::parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            super::parse_rfc3339_utc("2024-05-28T08:00:00.412Z"),
            Some(1_716_883_200_000)
        );
        assert_eq!(super::parse_rfc3339_utc("2024-05-28T08:00:00+02:00"), None);
    }
}
