//! Webhook ingestion: signed `user.created` events with unique ids into a running latchkey on
//! Postgres, against pgbench running the same transaction (record the message id, upsert the
//! user) on the same database as the ceiling.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use latchkey_protocol::webhook::SigningSecret;

use crate::load::{self, MakeRequest};
use crate::server::{BenchDatabase, Server};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Postgres server to benchmark on; a fresh database is created and dropped
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres_url: String,
    /// Measured seconds per run
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured warm-up seconds before each run
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Connection counts to run, comma-separated
    #[arg(long, default_value = "16,64", value_delimiter = ',')]
    connections: Vec<usize>,
    /// Alternating rounds (latchkey, then pgbench) per connection count; medians are reported
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Also measure GET /healthz on the same server, latchkey's HTTP floor
    #[arg(long)]
    hello: bool,
}

/// A Clerk-sized `user.created` event (about 2 KiB) for a unique user.
fn event_body(n: &str, now_ms: i64) -> String {
    format!(
        r#"{{"data":{{"backup_code_enabled":false,"banned":false,"create_organization_enabled":true,"create_organizations_limit":null,"created_at":{now_ms},"delete_self_enabled":true,"email_addresses":[{{"created_at":{now_ms},"email_address":"bench{n}@example.com","id":"idn_{n}","linked_to":[],"matches_sso_connection":false,"object":"email_address","reserved":false,"updated_at":{now_ms},"verification":{{"attempts":1,"expire_at":null,"object":"verification_otp","status":"verified","strategy":"email_code"}}}}],"enterprise_accounts":[],"external_accounts":[],"external_id":null,"first_name":"Bench","has_image":false,"id":"user_{n}","image_url":"https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9","last_active_at":{now_ms},"last_name":"Mark","last_sign_in_at":null,"legal_accepted_at":null,"locale":null,"locked":false,"lockout_expires_in_seconds":null,"mfa_disabled_at":null,"mfa_enabled_at":null,"object":"user","passkeys":[],"password_enabled":true,"phone_numbers":[],"primary_email_address_id":"idn_{n}","primary_phone_number_id":null,"primary_web3_wallet_id":null,"private_metadata":{{}},"profile_image_url":"https://www.gravatar.com/avatar?d=mp","public_metadata":{{"plan":"free"}},"saml_accounts":[],"totp_enabled":false,"two_factor_enabled":false,"unsafe_metadata":{{}},"updated_at":{now_ms},"username":null,"verification_attempts_remaining":100,"web3_wallets":[]}},"event_attributes":{{"http_request":{{"client_ip":"203.0.113.7","user_agent":"Mozilla/5.0 (X11; Linux x86_64) latchkey-bench"}}}},"instance_id":"ins_bench","object":"event","timestamp":{now_ms},"type":"user.created"}}"#
    )
}

/// pgbench's version of what the receiver does for one new `user.created`: in one
/// transaction, record the message id, then upsert the user with the same guard.
const PGBENCH_SCRIPT: &str = r#"\set r random(1, 9000000000000000000)
BEGIN;
INSERT INTO clerk_webhook_events (svix_id, event_type, outcome, detail, received_at, attempts) VALUES ('msg_pgb_' || :r, 'user.created', 'applied', NULL, 1716883200000, 1) ON CONFLICT (svix_id) DO UPDATE SET event_type = excluded.event_type, outcome = excluded.outcome, detail = NULL, attempts = clerk_webhook_events.attempts + 1 WHERE clerk_webhook_events.outcome = 'failed' RETURNING svix_id;
INSERT INTO users (id, clerk_user_id, email, first_name, last_name, username, image_url, public_metadata, created_at, updated_at, source_updated_at, deleted_at) VALUES ('usr_pgb_' || :r, 'user_pgb_' || :r, 'bench' || :r || '@example.com', 'Bench', 'Mark', NULL, 'https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9', '{"plan":"free"}', 1716883200000, 1716883200000, 1716883200000, NULL) ON CONFLICT (clerk_user_id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name, username = excluded.username, image_url = excluded.image_url, public_metadata = excluded.public_metadata, updated_at = excluded.updated_at, source_updated_at = excluded.source_updated_at WHERE users.deleted_at IS NULL AND users.source_updated_at < excluded.source_updated_at RETURNING id;
COMMIT;
"#;

pub async fn run(args: Args) -> Result<(), String> {
    let database = BenchDatabase::create(&args.postgres_url).await?;
    let result = run_on(&args, &database).await;
    database.drop_now().await;
    result
}

async fn run_on(args: &Args, database: &BenchDatabase) -> Result<(), String> {
    let secret = SigningSecret::generate();
    let server = Server::start(&[
        ("DATABASE_URL", database.url.clone()),
        ("CLERK_WEBHOOK_SIGNING_SECRET", secret.expose()),
        ("LATCHKEY_DATABASE_MAX_CONNECTIONS", "16".to_owned()),
    ])
    .await?;
    let addr = server.addr.clone();
    let run_id = latchkey_protocol::time::now_ms();
    let secret = Arc::new(secret);
    let make: MakeRequest = {
        let addr = addr.clone();
        Arc::new(move |conn, n| {
            let unique = format!("b{run_id}c{conn}n{n}");
            let body = event_body(&unique, latchkey_protocol::time::now_ms());
            let msg_id = format!("msg_{unique}");
            let ts = latchkey_protocol::time::now_secs();
            let signature = secret.sign(&msg_id, ts, body.as_bytes());
            Request::post("/api/webhooks/clerk")
                .header("host", &addr)
                .header("content-type", "application/json")
                .header("svix-id", msg_id)
                .header("svix-timestamp", ts.to_string())
                .header("svix-signature", signature)
                .body(Full::new(Bytes::from(body)))
                .expect("a valid request")
        })
    };

    if args.hello {
        let hello_addr = addr.clone();
        let hello: MakeRequest = Arc::new(move |_, _| {
            Request::get("/healthz")
                .header("host", &hello_addr)
                .body(Full::new(Bytes::new()))
                .expect("a valid request")
        });
        let report = load::run(
            &addr,
            16,
            Duration::from_secs(1),
            Duration::from_secs(args.seconds),
            200,
            hello,
        )
        .await?;
        println!(
            "GET /healthz at 16 connections: {:.0} r/s, p50 {:.2} ms, p99 {:.2} ms",
            report.per_second(),
            report.p50_ms,
            report.p99_ms
        );
    }
    // latchkey and pgbench take turns, each run after a checkpoint, so table growth, WAL
    // and background work fall on both alike; the medians are compared.
    let mut rows = Vec::new();
    let mut ceilings = Vec::new();
    for &connections in &args.connections {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..args.rounds {
            checkpoint(&database.url).await?;
            let report = load::run(
                &addr,
                connections,
                Duration::from_secs(args.warmup),
                Duration::from_secs(args.seconds),
                200,
                make.clone(),
            )
            .await?;
            ours.push(report);
            checkpoint(&database.url).await?;
            theirs.push(pgbench(&database.url, connections, args.seconds).await?);
        }
        ours.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
        theirs.sort_by(f64::total_cmp);
        rows.push((connections, ours[ours.len() / 2].clone()));
        ceilings.push(theirs[theirs.len() / 2]);
    }
    drop(server);

    println!(
        "webhook ingestion: signed user.created (~2 KiB) into latchkey on Postgres vs pgbench; median of {} alternating rounds of {} s (+{} s warm-up)",
        args.rounds, args.seconds, args.warmup
    );
    println!(
        "{:>11}  {:>12}  {:>8}  {:>8}  {:>7}  {:>12}  {:>6}",
        "connections", "latchkey r/s", "p50 ms", "p99 ms", "errors", "pgbench tps", "ratio"
    );
    for ((connections, report), ceiling) in rows.iter().zip(&ceilings) {
        println!(
            "{:>11}  {:>12.0}  {:>8.2}  {:>8.2}  {:>7}  {:>12.0}  {:>5.0}%",
            connections,
            report.per_second(),
            report.p50_ms,
            report.p99_ms,
            report.errors,
            ceiling,
            100.0 * report.per_second() / ceiling
        );
    }
    if let (Some((16, report)), Some(ceiling)) = (rows.first(), ceilings.first()) {
        let ratio = report.per_second() / ceiling;
        println!(
            "targets at 16 connections: ratio {:.0}% (target >= 70%: {}), p99 {:.2} ms (target < 10 ms: {})",
            100.0 * ratio,
            if ratio >= 0.70 { "met" } else { "missed" },
            report.p99_ms,
            if report.p99_ms < 10.0 {
                "met"
            } else {
                "missed"
            }
        );
    }
    Ok(())
}

/// Flushes dirty buffers so the next run does not pay for the previous one's writes.
async fn checkpoint(url: &str) -> Result<(), String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::raw_sql("CHECKPOINT")
        .execute(&mut conn)
        .await
        .map_err(|e| format!("CHECKPOINT failed: {e}"))?;
    let _ = conn.close().await;
    Ok(())
}

/// Transactions per second pgbench reaches with the equivalent script.
async fn pgbench(url: &str, clients: usize, seconds: u64) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let script = dir.path().join("ingest.sql");
    std::fs::write(&script, PGBENCH_SCRIPT).map_err(|e| e.to_string())?;
    let output = tokio::process::Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-j",
            "2",
            "-c",
            &clients.to_string(),
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .await
        .map_err(|e| format!("cannot run pgbench (Debian package postgresql-client): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse::<f64>().ok())
        .ok_or_else(|| format!("no tps in pgbench's output: {stdout}"))
}
