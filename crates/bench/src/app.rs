//! The app's protected JSON routes against a hello route on the same server, over the same
//! number of keep-alive connections, each with its own user's session token in
//! `Authorization: Bearer`:
//!
//! * `GET /api/session`: the session middleware alone (token verification, the app's user
//!   row) and a JSON answer; the route the ≥ 60 % target is judged on;
//! * `GET /api/me`: the same plus a database read per request (preferences, note count).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::load::{self, MakeRequest};
use crate::server::{BenchDatabase, Server};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run on a fresh database on this Postgres server instead of the default SQLite file
    #[arg(long)]
    postgres_url: Option<String>,
    /// Measured seconds per run
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Unmeasured warm-up seconds before each run
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Keep-alive connections; each signs in as its own user
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Alternating rounds (hello, then protected); medians are reported
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub(crate) const PASSWORD: &str = "bench mark pass phrase";

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The value of cookie `name` among the response's `set-cookie` headers.
fn cookie(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name && !value.is_empty()).then(|| value.to_owned())
        })
}

/// Creates user `email` (password [`PASSWORD`]) through the management API.
pub(crate) async fn create_user(server: &Server, email: &str, n: usize) -> Result<(), String> {
    let addr = &server.addr;
    let body = serde_json::json!({
        "email_address": [email],
        "password": PASSWORD,
        "first_name": "Bench",
        "last_name": format!("User {n}"),
    });
    let request = server.create_user(&body)?;
    let (status, _, body) = load::once(addr, request).await?;
    if status != 200 {
        return Err(format!(
            "POST /v1/users answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

/// Signs `email` in through the page on `addr`: a new session's `__client` and `__session`.
pub(crate) async fn sign_in(addr: &str, email: &str) -> Result<(String, String), String> {
    let request = Request::get("/sign-in")
        .header("host", addr)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let (_, headers, page) = load::once(addr, request).await?;
    let csrf_cookie = cookie(&headers, "latchkey_csrf").ok_or("no CSRF cookie")?;
    let html = String::from_utf8_lossy(&page);
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).ok_or("no CSRF field")? + marker.len();
    let end = html[start..].find('"').ok_or("no CSRF field end")? + start;
    let form = format!(
        "csrf_token={}&email_address={}&password={}",
        encode(&html[start..end]),
        encode(email),
        encode(PASSWORD)
    );
    let request = Request::post("/sign-in")
        .header("host", addr)
        .header("origin", format!("http://{addr}"))
        .header("cookie", format!("latchkey_csrf={csrf_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| e.to_string())?;
    let (status, headers, _) = load::once(addr, request).await?;
    match (cookie(&headers, "__client"), cookie(&headers, "__session")) {
        (Some(client), Some(session)) if status == 303 => Ok((client, session)),
        _ => Err(format!("sign-in answered {status} without a session")),
    }
}

/// Creates user `n` and signs it in; the `__client` cookie of its session.
async fn signed_in_user(server: &Server, n: usize) -> Result<String, String> {
    let email = format!("bench{n}@example.com");
    create_user(server, &email, n).await?;
    Ok(sign_in(&server.addr, &email).await?.0)
}

/// A fresh 60-second session token for the session behind `client`.
pub(crate) async fn session_token(addr: &str, client: &str) -> Result<String, String> {
    let request = Request::post("/v1/client/session-token")
        .header("host", addr)
        .header("origin", format!("http://{addr}"))
        .header("cookie", format!("__client={client}"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let (status, _, body) = load::once(addr, request).await?;
    if status != 200 {
        return Err(format!("session-token answered {status}"));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    value["jwt"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no jwt in the session-token answer".to_owned())
}

pub(crate) fn get(addr: &str, path: &str, bearer: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = Request::get(path).header("host", addr);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

pub async fn run(args: Args) -> Result<(), String> {
    BenchDatabase::around(args.postgres_url.as_deref(), async |database| {
        run_on(&args, database).await
    })
    .await
}

async fn run_on(args: &Args, database: Option<&BenchDatabase>) -> Result<(), String> {
    let mut env = vec![("LATCHKEY_SIGN_IN_ATTEMPTS_PER_IP", "100000000".to_owned())];
    if let Some(database) = database {
        env.push(("DATABASE_URL", database.url.clone()));
    }
    let server = Server::start(&env).await?;
    let addr = server.addr.clone();
    let mut clients = Vec::with_capacity(args.connections);
    for n in 0..args.connections {
        clients.push(signed_in_user(&server, n).await?);
    }
    let (warmup, seconds) = (
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.seconds),
    );
    let hello: MakeRequest = {
        let addr = addr.clone();
        Arc::new(move |_, _| get(&addr, "/healthz", None))
    };

    // The three routes take turns, so a slow spell of this shared machine falls on all alike.
    let mut reports: [Vec<load::Report>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..args.rounds {
        reports[0]
            .push(load::run(&addr, args.connections, warmup, seconds, 200, hello.clone()).await?);
        // Session tokens live 60 s: each round gets fresh ones, one per connection's user.
        let mut tokens = Vec::with_capacity(clients.len());
        for client in &clients {
            tokens.push(session_token(&addr, client).await?);
        }
        let tokens = Arc::new(tokens);
        for (slot, path) in [(1, "/api/session"), (2, "/api/me")] {
            let protected: MakeRequest = {
                let (addr, tokens) = (addr.clone(), tokens.clone());
                Arc::new(move |conn, _| get(&addr, path, Some(&tokens[conn % tokens.len()])))
            };
            reports[slot]
                .push(load::run(&addr, args.connections, warmup, seconds, 200, protected).await?);
        }
    }
    drop(server);

    let errors: u64 = reports.iter().flatten().map(|r| r.errors).sum();
    let [hello, session, me] = reports.map(|runs| {
        (
            median(runs.iter().map(load::Report::per_second).collect()),
            median(runs.iter().map(|r| r.p50_ms).collect()),
            median(runs.iter().map(|r| r.p99_ms).collect()),
        )
    });
    println!(
        "protected JSON routes (Bearer session token) against GET /healthz on one latchkey ({}), {} connections, {} users; medians of {} alternating rounds of {} s",
        if database.is_some() {
            "Postgres"
        } else {
            "SQLite"
        },
        args.connections,
        args.connections,
        args.rounds,
        args.seconds
    );
    for (name, (rate, p50, p99)) in [
        ("GET /healthz (hello)", hello),
        ("GET /api/session", session),
        ("GET /api/me", me),
    ] {
        println!(
            "  {name:<21} {rate:>9.0} req/s  {:>5.1}% of hello  p50 {p50:.2} ms  p99 {p99:.2} ms",
            100.0 * rate / hello.0
        );
    }
    let ratio = session.0 / hello.0;
    println!(
        "  session middleware route: {:.1}% of hello (target >= 60%: {}); /api/me adds one database read per request; {errors} errors in all rounds",
        100.0 * ratio,
        if ratio >= 0.60 { "met" } else { "missed" }
    );
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    Ok(())
}
