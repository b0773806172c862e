//! How soon a revoked session's token stops working, and what checking for revocations costs.
//!
//! Latency: sessions are signed in on instance A, one after another; each session's token is
//! first accepted by `GET /api/session` on instance B (which verifies and caches it), then the
//! session is revoked through A's management API (`POST /v1/sessions/{id}/revoke`), and B is
//! asked every millisecond until it refuses the token. In between: the identity writes
//! `session.revoked` in the revocation's transaction, a delivery worker posts it to an app
//! receiver, which records the revocation, and B reads it on its next refresh. Each
//! revocation waits a random 0 to 500 ms first, so it falls anywhere between two of B's
//! refreshes (every 250 ms): one right after a refusal would come at the same point of B's cycle
//! every time. With
//! `--postgres-url`, A and B are two processes on one fresh Postgres database (one public URL,
//! one secret, as behind a load balancer); without, one process on SQLite is both. B's
//! identity (`GET /v1/me`) is asked right after the revocation's answer, and must refuse at
//! once.
//!
//! Cost (with `--baseline`, a `latchkey` binary without revocation checks): both binaries
//! serve on their own fresh database at once, and take turns under the same load as the `app`
//! benchmark: `GET /healthz`, `GET /api/session` and `GET /v1/me`, each connection with its own
//! user's Bearer token. Before each round, each server revokes sessions (signed in beforehand),
//! so the current binary holds revocations while it is measured.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::app::{create_user, get, median, session_token, sign_in};
use crate::load::{self, Conn, MakeRequest};
use crate::server::{BenchDatabase, Server, free_port, latchkey_binary};
use crate::signup_latency::Summary;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Two instances on a fresh database on this Postgres server, instead of one on SQLite
    #[arg(long)]
    postgres_url: Option<String>,
    /// Measured revocations
    #[arg(long, default_value_t = 200)]
    revocations: usize,
    /// Unmeasured revocations first
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// A `latchkey` binary without revocation checks (say, built from the commit before), to
    /// measure their cost on GET /api/session and GET /v1/me against it
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Measured seconds per throughput run
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Alternating throughput rounds; medians are reported
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Keep-alive connections of the throughput runs; each signs in as its own user
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

/// Gives up on one revocation after this long.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Accounts the measured sessions belong to.
const USERS: usize = 4;
/// The longest random wait before a revocation: two of B's refresh periods.
const MAX_PHASE_MS: u64 = 500;
/// Sessions each server revokes before each throughput round.
const REVOKED_PER_ROUND: usize = 20;

pub async fn run(args: Args) -> Result<(), String> {
    let mut databases = Vec::new();
    if let Some(url) = &args.postgres_url {
        let count = if args.baseline.is_some() { 3 } else { 1 };
        for _ in 0..count {
            databases.push(BenchDatabase::create(url).await?);
        }
    }
    let result = async {
        latency(&args, databases.first()).await?;
        if let Some(baseline) = &args.baseline {
            cost(&args, baseline, databases.get(1..).unwrap_or_default()).await?;
        }
        Ok(())
    }
    .await;
    for database in databases {
        database.drop_now().await;
    }
    result
}

fn backend(database: Option<&BenchDatabase>) -> &'static str {
    if database.is_some() {
        "Postgres"
    } else {
        "SQLite"
    }
}

/// Settings every server of this benchmark gets: no sign-in throttle, and `database`.
fn base_env(database: Option<&BenchDatabase>) -> Vec<(&'static str, String)> {
    let mut env = vec![("LATCHKEY_SIGN_IN_ATTEMPTS_PER_IP", "100000000".to_owned())];
    if let Some(database) = database {
        env.push(("DATABASE_URL", database.url.clone()));
    }
    env
}

/// A master secret for instances that share a database.
fn shared_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random wait of 0 to [`MAX_PHASE_MS`].
fn random_phase() -> Duration {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator");
    Duration::from_millis(u64::from_le_bytes(bytes) % MAX_PHASE_MS)
}

/// The `sid` claim of a session token (unverified).
fn sid_of(token: &str) -> Result<String, String> {
    let payload = token.split('.').nth(1).ok_or("not a JWT")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| format!("not a JWT payload: {e}"))?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    claims["sid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the token has no sid".to_owned())
}

fn revoke(server: &Server, sid: &str) -> Request<Full<Bytes>> {
    Request::post(format!("/v1/sessions/{sid}/revoke"))
        .header("host", &server.addr)
        .header("authorization", format!("Bearer {}", server.secret_key))
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

async fn latency(args: &Args, database: Option<&BenchDatabase>) -> Result<(), String> {
    let binary = latchkey_binary()?;
    let port = free_port()?;
    let mut env = base_env(database);
    env.push(("LATCHKEY_PUBLIC_URL", format!("http://127.0.0.1:{port}")));
    env.push(("LATCHKEY_SECRET", shared_secret()));
    let a = Server::launch(&binary, Some(port), &env, true).await?;
    let b = match database {
        Some(_) => Some(Server::launch(&binary, None, &env, false).await?),
        None => None,
    };
    let b_addr = b.as_ref().unwrap_or(&a).addr.clone();
    for n in 0..USERS {
        create_user(&a, &format!("revoke{n}@example.com"), n).await?;
    }
    let mut on_a = Conn::open(&a.addr).await?;
    let mut on_b = Conn::open(&b_addr).await?;
    let (mut refused, mut answered) = (Vec::new(), Vec::new());
    let mut identity_late = 0;
    for n in 0..args.warmup + args.revocations {
        let (_, token) = sign_in(&a.addr, &format!("revoke{}@example.com", n % USERS)).await?;
        let sid = sid_of(&token)?;
        let (status, _) = on_b
            .send(get(&b_addr, "/api/session", Some(&token)))
            .await?;
        if status != 200 {
            return Err(format!("a fresh token was answered {status}"));
        }
        tokio::time::sleep(random_phase()).await;
        let started = Instant::now();
        let (status, body) = on_a.send(revoke(&a, &sid)).await?;
        let answer = started.elapsed();
        if status != 200 {
            return Err(format!(
                "the revocation answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let (me, _) = on_b.send(get(&b_addr, "/v1/me", Some(&token))).await?;
        if me != 401 {
            identity_late += 1;
        }
        loop {
            let (status, _) = on_b
                .send(get(&b_addr, "/api/session", Some(&token)))
                .await?;
            match status {
                401 => break,
                200 if started.elapsed() < REFUSAL_TIMEOUT => {}
                200 => return Err(format!("still accepted {REFUSAL_TIMEOUT:?} after revoking")),
                other => return Err(format!("GET /api/session answered {other}")),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if n >= args.warmup {
            answered.push(answer);
            refused.push(started.elapsed());
        }
    }
    drop((a, b));
    println!(
        "revocation (POST /v1/sessions/{{id}}/revoke on A) to refusal (GET /api/session on {}), {} revocations one after another on {}",
        if database.is_some() {
            "a second instance B"
        } else {
            "the same instance"
        },
        args.revocations,
        backend(database),
    );
    let over_2s = refused
        .iter()
        .filter(|d| **d > Duration::from_secs(2))
        .count();
    for (name, values) in [
        ("revocation answered", answered),
        ("token refused", refused),
    ] {
        let summary = Summary::of(values);
        println!(
            "  {name:<20} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  over 500 ms: {}",
            summary.p50, summary.p99, summary.max, summary.over_500
        );
    }
    println!(
        "  refused after more than 2 s: {over_2s}; GET /v1/me still accepting right after the answer: {identity_late}"
    );
    if identity_late > 0 {
        return Err(format!(
            "{identity_late} revoked tokens were still accepted by the identity"
        ));
    }
    Ok(())
}

/// A server for the cost runs, its users signed in, and sessions to revoke round by round.
struct Measured {
    name: &'static str,
    server: Server,
    clients: Vec<String>,
    to_revoke: Vec<String>,
}

impl Measured {
    async fn start(
        name: &'static str,
        binary: &std::path::Path,
        args: &Args,
        database: Option<&BenchDatabase>,
    ) -> Result<Self, String> {
        let server = Server::launch(binary, None, &base_env(database), true).await?;
        let mut clients = Vec::with_capacity(args.connections);
        for n in 0..args.connections {
            let email = format!("bench{n}@example.com");
            create_user(&server, &email, n).await?;
            clients.push(sign_in(&server.addr, &email).await?.0);
        }
        create_user(&server, "revoked@example.com", args.connections).await?;
        let mut to_revoke = Vec::new();
        for _ in 0..args.rounds * REVOKED_PER_ROUND {
            let (_, token) = sign_in(&server.addr, "revoked@example.com").await?;
            to_revoke.push(sid_of(&token)?);
        }
        Ok(Self {
            name,
            server,
            clients,
            to_revoke,
        })
    }

    /// One round: revoke this round's sessions, then `/healthz`, `/api/session`, `/v1/me`.
    async fn round(&mut self, args: &Args) -> Result<[load::Report; 3], String> {
        let addr = self.server.addr.clone();
        let mut api = Conn::open(&addr).await?;
        let split = self.to_revoke.len().saturating_sub(REVOKED_PER_ROUND);
        for sid in self.to_revoke.split_off(split) {
            let (status, _) = api.send(revoke(&self.server, &sid)).await?;
            if status != 200 {
                return Err(format!("{}: revoking answered {status}", self.name));
            }
        }
        let mut tokens = Vec::with_capacity(self.clients.len());
        for client in &self.clients {
            tokens.push(session_token(&addr, client).await?);
        }
        let tokens = Arc::new(tokens);
        let (warmup, seconds) = (Duration::from_secs(1), Duration::from_secs(args.seconds));
        let mut reports = Vec::with_capacity(3);
        for path in ["/healthz", "/api/session", "/v1/me"] {
            let make: MakeRequest = {
                let (addr, tokens) = (addr.clone(), tokens.clone());
                Arc::new(move |conn, _| {
                    let bearer = (path != "/healthz").then(|| tokens[conn % tokens.len()].as_str());
                    get(&addr, path, bearer)
                })
            };
            reports.push(load::run(&addr, args.connections, warmup, seconds, 200, make).await?);
        }
        reports.try_into().map_err(|_| "three reports".to_owned())
    }
}

async fn cost(
    args: &Args,
    baseline: &std::path::Path,
    databases: &[BenchDatabase],
) -> Result<(), String> {
    let current = latchkey_binary()?;
    let mut servers = [
        Measured::start("baseline", baseline, args, databases.first()).await?,
        Measured::start("current", &current, args, databases.get(1)).await?,
    ];
    // rounds × servers × routes
    let mut reports: Vec<[Vec<load::Report>; 3]> = vec![Default::default(), Default::default()];
    for _ in 0..args.rounds {
        for (slot, server) in servers.iter_mut().enumerate() {
            for (route, report) in server.round(args).await?.into_iter().enumerate() {
                reports[slot][route].push(report);
            }
        }
    }
    drop(servers);
    let errors: u64 = reports.iter().flatten().flatten().map(|r| r.errors).sum();
    let rate = |slot: usize, route: usize| {
        median(
            reports[slot][route]
                .iter()
                .map(load::Report::per_second)
                .collect(),
        )
    };
    println!(
        "throughput, this build against {} on {} ({} connections, Bearer tokens, {} sessions revoked before each round), medians of {} alternating rounds of {} s",
        baseline.display(),
        backend(databases.first()),
        args.connections,
        REVOKED_PER_ROUND,
        args.rounds,
        args.seconds
    );
    for (route, name) in ["GET /healthz", "GET /api/session", "GET /v1/me"]
        .into_iter()
        .enumerate()
    {
        let (before, after) = (rate(0, route), rate(1, route));
        let p99 = |slot: usize| median(reports[slot][route].iter().map(|r| r.p99_ms).collect());
        println!(
            "  {name:<17} baseline {before:>8.0} req/s (p99 {:.2} ms)  this build {after:>8.0} req/s (p99 {:.2} ms)  {:+.1}%",
            p99(0),
            p99(1),
            100.0 * (after / before - 1.0)
        );
    }
    let relative = |slot: usize| rate(slot, 1) / rate(slot, 0);
    println!(
        "  GET /api/session as a share of its own server's /healthz: baseline {:.1}%, this build {:.1}%; {errors} errors",
        100.0 * relative(0),
        100.0 * relative(1)
    );
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    Ok(())
}
