//! The operators' console at a million accounts: the accounts are written by SQL into a fresh
//! Postgres database (the server migrated it first), an operator signs in, and each kind of
//! page is asked for one request at a time on a keep-alive connection: the first page, a page
//! deep in the list (keyset), a search by a whole address and by an id (index lookups), a
//! search for text inside names and addresses (a scan), the banned filter, and the overview.
//! p50, p99 and the slowest of each are printed.

use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use sqlx::Connection as _;

use crate::app::{create_user, sign_in};
use crate::load::Conn;
use crate::server::{BenchDatabase, Server};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Postgres server a fresh database is made on
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres_url: String,
    /// Accounts written before measuring
    #[arg(long, default_value_t = 1_000_000)]
    users: u32,
    /// Measured requests per page kind (after 3 unmeasured ones)
    #[arg(long, default_value_t = 50)]
    requests: usize,
}

const OPERATOR: &str = "operator@bench.example";

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        clippy::cast_sign_loss,
        reason = "an index into a short list"
    )]
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

async fn fill(url: &str, users: u32) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let statements = [
        format!(
            "INSERT INTO identity_users (id, first_name, last_name, primary_email_address_id, \
                 created_at, updated_at) \
             SELECT 'user_bench' || lpad(g::text, 7, '0'), 'First' || g, 'Last' || g, \
                 'idn_bench' || lpad(g::text, 7, '0'), 1700000000000 + g * 1000, \
                 1700000000000 + g * 1000 \
             FROM generate_series(1, {users}) g"
        ),
        format!(
            "INSERT INTO identity_email_addresses (id, user_id, email_address, email_normalized, \
                 verification_status, verification_strategy, created_at, updated_at) \
             SELECT 'idn_bench' || lpad(g::text, 7, '0'), 'user_bench' || lpad(g::text, 7, '0'), \
                 'user' || g || '@bench.example', 'user' || g || '@bench.example', 'verified', \
                 'admin', 1700000000000 + g * 1000, 1700000000000 + g * 1000 \
             FROM generate_series(1, {users}) g"
        ),
        format!(
            "UPDATE identity_users SET operator_at = 1 WHERE id IN (SELECT user_id FROM identity_email_addresses WHERE email_normalized = '{OPERATOR}')"
        ),
        "ANALYZE".to_owned(),
    ];
    for sql in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("filling the database: {e}"))?;
    }
    Ok(())
}

fn page(addr: &str, path: &str, client: &str, session: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", addr)
        .header("cookie", format!("__client={client}; __session={session}"))
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

pub async fn run(args: Args) -> Result<(), String> {
    let database = BenchDatabase::create(&args.postgres_url).await?;
    let result = async {
        let server = Server::start(&[("DATABASE_URL", database.url.clone())]).await?;
        create_user(&server, OPERATOR, 0).await?;
        let started = Instant::now();
        fill(&database.url, args.users).await?;
        println!(
            "wrote {} accounts with their addresses by SQL in {:.1} s",
            args.users,
            started.elapsed().as_secs_f64()
        );
        let (client, session) = sign_in(&server.addr, OPERATOR).await?;
        let middle = format!("user_bench{:07}", args.users / 2);
        let cases = [
            ("first page", "/admin/users".to_owned()),
            (
                "a page deep in the list",
                format!("/admin/users?after={middle}"),
            ),
            (
                "search by a whole address",
                format!("/admin/users?q=user{}%40bench.example", args.users / 3),
            ),
            ("search by id", format!("/admin/users?q={middle}")),
            (
                "search for text inside",
                "/admin/users?q=irst4242".to_owned(),
            ),
            ("the banned filter", "/admin/users?filter=banned".to_owned()),
            ("overview", "/admin".to_owned()),
        ];
        println!(
            "page kind, {} requests each: p50, p99, slowest (ms)",
            args.requests
        );
        let mut conn = Conn::open(&server.addr).await?;
        for (name, path) in cases {
            let mut times = Vec::with_capacity(args.requests);
            for i in 0..args.requests + 3 {
                // The session token lives 60 s; the server re-mints it from __client.
                let request = page(&server.addr, &path, &client, &session);
                let start = Instant::now();
                let (status, _) = conn.send(request).await?;
                let took = start.elapsed().as_secs_f64() * 1000.0;
                if status != 200 {
                    return Err(format!("{path} answered {status}"));
                }
                if i >= 3 {
                    times.push(took);
                }
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{name:<26} {:>8.2} {:>8.2} {:>8.2}   {path}",
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                times.last().copied().unwrap_or(0.0)
            );
        }
        Ok(())
    }
    .await;
    database.drop_now().await;
    result
}
