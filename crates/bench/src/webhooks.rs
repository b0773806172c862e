//! Webhook ingestion: signed `user.created` events with unique ids into a running latchkey on
//! Postgres, against two ceilings measured by pgbench on the same database in the same run:
//! latchkey's one-event transaction (record the message id, upsert the user) and the seed
//! stack's single upsert statement.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use latchkey_protocol::webhook::SigningSecret;

use crate::load::{self, MakeRequest};
use crate::machine::median_range;
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
    /// Alternating rounds (latchkey, then each pgbench script) per connection count; medians
    /// and ranges are reported
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

/// The seed stack's whole database work for one event: Prisma's `user.upsert` by
/// `clerkUserId`, one statement (Prisma 7 sends it as one `INSERT … ON CONFLICT`).
const SEED_SCRIPT: &str = r#"\set r random(1, 9000000000000000000)
INSERT INTO "User" (id, "createdAt", "updatedAt", "clerkUserId") VALUES ('c' || :r, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'user_pgb_' || :r) ON CONFLICT ("clerkUserId") DO UPDATE SET "clerkUserId" = excluded."clerkUserId", "updatedAt" = CURRENT_TIMESTAMP RETURNING id, "createdAt", "updatedAt", "clerkUserId";
"#;

pub async fn run(args: Args) -> Result<(), String> {
    let database = BenchDatabase::create(&args.postgres_url).await?;
    let result = run_on(&args, &database).await;
    database.drop_now().await;
    result
}

async fn run_on(args: &Args, database: &BenchDatabase) -> Result<(), String> {
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".to_owned());
    }
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
    seed_table(&database.url).await?;
    let idle_rss = server.rss_mib();
    // latchkey and the two pgbench scripts take turns, each run after a checkpoint and on a
    // quiet machine, so table growth, WAL and background work fall on all alike.
    let mut rows = Vec::new();
    for &connections in &args.connections {
        let mut row = Row {
            connections,
            ..Row::default()
        };
        for round in 1..=args.rounds {
            println!(
                "connections {connections}, round {round} of {}",
                args.rounds
            );
            checkpoint(&database.url).await?;
            crate::machine::wait_for_quiet("latchkey").await;
            let report = load::run(
                &addr,
                connections,
                Duration::from_secs(args.warmup),
                Duration::from_secs(args.seconds),
                200,
                make.clone(),
            )
            .await?;
            println!(
                "  latchkey {:.0} r/s, p99 {:.2} ms",
                report.per_second(),
                report.p99_ms
            );
            row.rss.push(server.rss_mib().unwrap_or(f64::NAN));
            row.errors += report.errors;
            row.ours.push(report.per_second());
            row.p50.push(report.p50_ms);
            row.p99.push(report.p99_ms);
            for (script, tps) in [
                (PGBENCH_SCRIPT, &mut row.transaction),
                (SEED_SCRIPT, &mut row.seed),
            ] {
                checkpoint(&database.url).await?;
                crate::machine::wait_for_quiet("pgbench").await;
                let measured = pgbench(&database.url, script, connections, args.seconds).await?;
                println!("  pgbench {measured:.0} tps");
                tps.push(measured);
            }
        }
        rows.push(row);
    }
    drop(server);

    println!();
    println!(
        "webhook ingestion: signed user.created (~2 KiB) into latchkey on Postgres; {} alternating rounds of {} s (+{} s warm-up), each on a quiet machine after a CHECKPOINT; median [range]",
        args.rounds, args.seconds, args.warmup
    );
    println!(
        "ceilings, on the same database in the same run: pgbench running latchkey's one-event transaction (BEGIN; record the message id; guarded upsert; COMMIT), and the seed stack's single upsert statement (Prisma's `user.upsert` on its User model)"
    );
    if let Some(rss) = idle_rss {
        println!("latchkey RSS before load: {rss:.1} MiB");
    }
    for row in &rows {
        let ratio = |ceiling: &[f64]| -> Vec<f64> {
            row.ours
                .iter()
                .zip(ceiling)
                .map(|(ours, theirs)| 100.0 * ours / theirs)
                .collect()
        };
        println!("{} connections:", row.connections);
        println!(
            "  latchkey             {} r/s, p50 {} ms, p99 {} ms, errors {}, RSS after {} MiB",
            median_range(&row.ours, 0),
            median_range(&row.p50, 2),
            median_range(&row.p99, 2),
            row.errors,
            median_range(&row.rss, 1),
        );
        println!(
            "  pgbench transaction  {} tps; latchkey / it: {} %",
            median_range(&row.transaction, 0),
            median_range(&ratio(&row.transaction), 0)
        );
        println!(
            "  pgbench seed upsert  {} tps; latchkey / it: {} %",
            median_range(&row.seed, 0),
            median_range(&ratio(&row.seed), 0)
        );
    }
    if let Some(row) = rows.iter().find(|row| row.connections == 16) {
        let ours = crate::machine::median(&row.ours);
        let p99 = crate::machine::median(&row.p99);
        println!(
            "targets at 16 connections: >= {SEED_STACK_TARGET:.0} r/s (8x the seed stack's 845 r/s measured on this kind of machine): {ours:.0} {}; p99 < 10 ms: {p99:.2} {}",
            if ours >= SEED_STACK_TARGET {
                "met"
            } else {
                "missed"
            },
            if p99 < 10.0 { "met" } else { "missed" }
        );
    }
    if let Some(row) = rows.iter().find(|row| row.connections == 64) {
        let rss = row.rss.iter().copied().fold(f64::NAN, f64::max);
        println!(
            "target at 64 connections: RSS under load < 80 MiB: {rss:.1} {}",
            if rss < 80.0 { "met" } else { "missed" }
        );
    }
    Ok(())
}

/// 8x the seed stack's signed route at 16 connections (845 r/s, Next.js 16 + Prisma 7 on the
/// 2-core machine this benchmark was written on; issue 17).
const SEED_STACK_TARGET: f64 = 6_760.0;

/// One connection count's figures, one entry per round.
#[derive(Debug, Default)]
struct Row {
    connections: usize,
    ours: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    errors: u64,
    rss: Vec<f64>,
    transaction: Vec<f64>,
    seed: Vec<f64>,
}

/// The seed stack's table: Prisma's `User` model from the article (id, createdAt, updatedAt,
/// clerkUserId unique).
async fn seed_table(url: &str) -> Result<(), String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::raw_sql(
        r#"CREATE TABLE "User" (id TEXT PRIMARY KEY, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL, "clerkUserId" TEXT UNIQUE)"#,
    )
    .execute(&mut conn)
    .await
    .map_err(|e| format!("cannot create the seed's table: {e}"))?;
    let _ = conn.close().await;
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
async fn pgbench(url: &str, sql: &str, clients: usize, seconds: u64) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let script = dir.path().join("ingest.sql");
    std::fs::write(&script, sql).map_err(|e| e.to_string())?;
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
