//! `latchkey webhooks …`: the identity's outgoing webhook endpoints, their deliveries, replays.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use latchkey_identity::Identity;
use latchkey_identity::webhooks::EndpointError;

use super::users::identity_for_command;
use super::{EXIT_CONFIG, EXIT_FAILURE, fail};
use crate::Config;
use latchkey_identity::webhooks::endpoints;
use latchkey_identity::webhooks::replay;

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

/// `--since`: an RFC 3339 time (`2026-11-26T08:00:00Z`, or with an offset such as `+02:00`)
/// or an age before `now_ms` (`30m`, `2h`, `7d`), as Unix milliseconds. An age never holds `-`
/// or `:`, so text with either is read as a time, and an impossible date (`2026-02-31`) is
/// reported as such rather than as "not an age".
fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    if text.contains(['-', ':']) {
        return text
            .parse::<jiff::Timestamp>()
            .map(jiff::Timestamp::as_millisecond)
            .map_err(|e| {
                format!("--since {text:?} is not a valid time such as 2026-11-26T08:00:00Z ({e})")
            });
    }
    let age = crate::config::parse_duration(text).map_err(|e| {
        format!(
            "--since {text:?} is neither a time like 2026-11-26T08:00:00Z nor an age like 2h ({e})"
        )
    })?;
    let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    Ok(now_ms.saturating_sub(age))
}

pub async fn run(command: WebhooksCommand, config: &Config) -> ExitCode {
    // A bad `--since` is a usage error, refused before the database is opened.
    let since = match &command {
        WebhooksCommand::Replay {
            since: Some(text), ..
        } => match parse_since(text, latchkey_protocol::time::now_ms()) {
            Ok(since) => Some(since),
            Err(message) => {
                let _ = writeln!(std::io::stderr().lock(), "latchkey: {message}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        _ => None,
    };
    let identity: Identity = match identity_for_command(config).await {
        Ok(identity) => identity,
        Err(error) => return fail(EXIT_FAILURE, &error),
    };
    let code = match command {
        WebhooksCommand::Add {
            url,
            events,
            json: as_json,
        } => match endpoints::add_endpoint(&identity, &url, &events).await {
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
        WebhooksCommand::List { json: as_json } => match endpoints::list_endpoints(&identity).await
        {
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
        WebhooksCommand::Remove { endpoint } => {
            match endpoints::remove_endpoint(&identity, &endpoint).await {
                Ok(()) => {
                    print(&format!("removed {endpoint}"));
                    ExitCode::SUCCESS
                }
                Err(error) => failure(&error),
            }
        }
        WebhooksCommand::RotateSecret {
            endpoint,
            json: as_json,
        } => match endpoints::rotate_endpoint_secret(&identity, &endpoint).await {
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
        WebhooksCommand::Enable { endpoint } => {
            match endpoints::enable_endpoint(&identity, &endpoint).await {
                Ok(()) => {
                    print(&format!("enabled {endpoint}"));
                    ExitCode::SUCCESS
                }
                Err(error) => failure(&error),
            }
        }
        WebhooksCommand::Deliveries {
            endpoint,
            limit,
            json: as_json,
        } => match replay::deliveries(&identity, &endpoint, limit).await {
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
            since: _,
            failed_only,
        } => match replay::replay(&identity, &endpoint, since, failed_only).await {
            Ok(count) => {
                print(&format!("queued {count} deliveries to {endpoint}"));
                ExitCode::SUCCESS
            }
            Err(error) => failure(&error),
        },
        WebhooksCommand::Resend { event, endpoint } => {
            match replay::resend(&identity, &event, &endpoint).await {
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
    use super::parse_since;

    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn times_and_ages_give_the_right_instant() {
        for (text, ms) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-05-28T08:00:00Z", 1_716_883_200_000),
            ("2024-05-28T08:00:00.412Z", 1_716_883_200_412),
            ("2024-05-28T10:00:00+02:00", 1_716_883_200_000),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("2h", NOW - 7_200_000),
            ("30m", NOW - 1_800_000),
            ("7d", NOW - 604_800_000),
            ("250ms", NOW - 250),
        ] {
            assert_eq!(parse_since(text, NOW), Ok(ms), "{text}");
        }
    }

    #[test]
    fn impossible_dates_and_garbage_are_refused() {
        for text in [
            "2026-02-31T00:00:00Z",
            "2026-11-26-99T08:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-26T24:30:00Z",
            "2025-02-29T00:00:00Z",
            "2026-02-31",
            "2026-11-26-99",
            "2026-11-26T08:00:00",
        ] {
            let err = parse_since(text, NOW).unwrap_err();
            assert!(
                err.starts_with(&format!("--since {text:?} is not a valid time")),
                "{text}: {err}"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
        for text in ["yesterday", "", "2h30m", "99999999999999999999d"] {
            let err = parse_since(text, NOW).unwrap_err();
            assert!(err.contains("is neither a time"), "{text}: {err}");
        }
    }
}
