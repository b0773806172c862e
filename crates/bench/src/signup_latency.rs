//! How long a new account takes to reach the app's `users` table: each user is created through
//! the management API (`POST /v1/users`), and the app's table is then read every millisecond
//! until the row is there. The path in between is the whole event pipeline: the identity writes
//! `user.created` in the account's transaction, the delivery worker wakes, signs it and posts
//! it to the app's receiver over loopback, and the receiver writes the row.
//!
//! Sign-ups run one after another, so each measures an idle pipeline's reaction, not a queue.

use std::time::{Duration, Instant};

use sqlx::Connection as _;

use crate::load;
use crate::server::{BenchDatabase, Server};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run on a fresh database on this Postgres server instead of the default SQLite file
    #[arg(long)]
    postgres_url: Option<String>,
    /// Measured sign-ups
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Unmeasured sign-ups first
    #[arg(long, default_value_t = 5)]
    warmup: usize,
}

/// Gives up on one row after this long.
const ROW_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the app's table is read from, beside the server.
enum Reader {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Reader {
    async fn open(server: &Server, database: Option<&BenchDatabase>) -> Result<Self, String> {
        Ok(match database {
            Some(database) => Self::Postgres(
                sqlx::PgConnection::connect(&database.url)
                    .await
                    .map_err(|e| format!("cannot reach the bench database: {e}"))?,
            ),
            None => {
                let path = server.data_dir().join("latchkey.db");
                let url = format!("sqlite://{}?mode=ro", path.display());
                Self::Sqlite(
                    sqlx::SqliteConnection::connect(&url)
                        .await
                        .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
                )
            }
        })
    }

    /// Whether the app's `users` table has the row `id`.
    async fn has_user(&mut self, id: &str) -> Result<bool, String> {
        const SQL: &str = "SELECT 1 FROM users WHERE clerk_user_id = $1";
        let found = match self {
            Self::Sqlite(conn) => sqlx::query(SQL)
                .bind(id)
                .fetch_optional(conn)
                .await
                .map(|row| row.is_some()),
            Self::Postgres(conn) => sqlx::query(SQL)
                .bind(id)
                .fetch_optional(conn)
                .await
                .map(|row| row.is_some()),
        };
        found.map_err(|e| e.to_string())
    }
}

pub async fn run(args: Args) -> Result<(), String> {
    BenchDatabase::around(args.postgres_url.as_deref(), async |database| {
        run_on(&args, database).await
    })
    .await
}

async fn run_on(args: &Args, database: Option<&BenchDatabase>) -> Result<(), String> {
    let mut env = Vec::new();
    if let Some(database) = database {
        env.push(("DATABASE_URL", database.url.clone()));
    }
    let server = Server::start(&env).await?;
    let mut reader = Reader::open(&server, database).await?;
    let mut latencies = Vec::with_capacity(args.users);
    let mut answers = Vec::with_capacity(args.users);
    for n in 0..args.warmup + args.users {
        let (answered, arrived) = sign_up(&server, &mut reader, n).await?;
        if n >= args.warmup {
            answers.push(answered);
            latencies.push(arrived);
        }
    }
    drop(server);
    println!(
        "sign-up (POST /v1/users) to the app's users row, {} sign-ups one after another on {}",
        args.users,
        if database.is_some() {
            "Postgres"
        } else {
            "SQLite"
        },
    );
    for (name, values) in [
        ("POST /v1/users answered", answers),
        ("row in the app's users", latencies),
    ] {
        let summary = Summary::of(values);
        println!(
            "  {name:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  over 500 ms: {}",
            summary.p50, summary.p99, summary.max, summary.over_500
        );
    }
    Ok(())
}

/// Creates user `n`; how long until the API answered and until the app had the row.
async fn sign_up(
    server: &Server,
    reader: &mut Reader,
    n: usize,
) -> Result<(Duration, Duration), String> {
    let addr = &server.addr;
    let body = serde_json::json!({
        "email_address": [format!("latency{n}@example.com")],
        "first_name": "Latency",
        "last_name": format!("User {n}"),
    });
    let request = server.create_user(&body)?;
    let started = Instant::now();
    let (status, _, body) = load::once(addr, request).await?;
    let answered = started.elapsed();
    if status != 200 {
        return Err(format!(
            "POST /v1/users answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let user: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let id = user["id"].as_str().ok_or("no id in the created user")?;
    loop {
        if reader.has_user(id).await? {
            return Ok((answered, started.elapsed()));
        }
        if started.elapsed() > ROW_TIMEOUT {
            return Err(format!(
                "user {n} did not reach the app within {ROW_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Percentiles of a set of durations, in milliseconds.
pub(crate) struct Summary {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub over_500: usize,
}

impl Summary {
    pub(crate) fn of(mut values: Vec<Duration>) -> Self {
        values.sort();
        let at = |q: f64| {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "an index into a short list"
            )]
            let index = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
            values[index].as_secs_f64() * 1000.0
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
            over_500: values
                .iter()
                .filter(|d| **d > Duration::from_millis(500))
                .count(),
        }
    }
}
