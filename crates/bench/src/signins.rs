//! Sign-ins under load: sign-ins per second through the pages against raw argon2id
//! verifications per second on the same machine, while a paced stream of cheap requests shows
//! whether hashing starves the rest of the server.

use std::sync::Arc;
use std::time::Duration;

use argon2::{PasswordHasher as _, PasswordVerifier as _};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::load::{self, MakeRequest};
use crate::machine::{median, median_range};
use crate::server::Server;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Measured seconds per phase
    #[arg(long, default_value_t = 6)]
    seconds: u64,
    /// Concurrent sign-in connections
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Interval of the cheap request stream, milliseconds
    #[arg(long, default_value_t = 5)]
    interval_ms: u64,
    /// Alternating rounds; medians and ranges are reported
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

const USERS: usize = 16;
const PASSWORD: &str = "bench mark pass phrase";

/// The CSRF cookie and token a browser would get from the sign-in page.
async fn csrf(addr: &str) -> Result<(String, String), String> {
    let request = Request::get("/sign-in")
        .header("host", addr)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let (_, headers, body) = load::once(addr, request).await?;
    let cookie = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("latchkey_csrf="))
        .and_then(|c| c.split(';').next())
        .ok_or("no CSRF cookie")?
        .to_owned();
    let html = String::from_utf8_lossy(&body);
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).ok_or("no CSRF field")? + marker.len();
    let end = html[start..].find('"').ok_or("no CSRF field end")? + start;
    Ok((cookie, html[start..end].to_owned()))
}

fn form_post(addr: &str, path: &str, cookie: &str, body: String) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", addr)
        .header("origin", format!("http://{addr}"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request")
}

/// Finishes a sign-up: reads the code mailed to `email` from the dev mailbox (the server runs
/// without SMTP, and this process is on loopback) and enters it with the verification cookie
/// the sign-up set.
async fn verify(
    addr: &str,
    csrf_cookie: &str,
    token: &str,
    sign_up_headers: &hyper::HeaderMap,
    email: &str,
) -> Result<(), String> {
    let verification = sign_up_headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("latchkey_verification="))
        .and_then(|c| c.split(';').next())
        .ok_or("the sign-up set no verification cookie")?
        .to_owned();
    let request = Request::get("/dev/mailbox")
        .header("host", addr)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let (status, _, body) = load::once(addr, request).await?;
    if status != 200 {
        return Err(format!("/dev/mailbox answered {status}"));
    }
    let html = String::from_utf8_lossy(&body);
    let mail = html
        .split(&format!("class=\"mail-to\">{email}</td>"))
        .nth(1)
        .ok_or_else(|| format!("no mail to {email} in the dev mailbox"))?;
    let text = mail
        .split("<pre class=\"mail-text\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .ok_or("the mail has no text")?;
    let code = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|word| word.len() == 6 && word.bytes().all(|b| b.is_ascii_digit()))
        .ok_or("the mail has no code")?;
    let body = format!("csrf_token={}&code={code}", encode(token));
    let cookies = format!("{csrf_cookie}; {verification}");
    let (status, _, _) = load::once(addr, form_post(addr, "/verify", &cookies, body)).await?;
    if status == 303 {
        Ok(())
    } else {
        Err(format!("/verify answered {status}"))
    }
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Raw argon2id verifications per second with `threads` threads, the server's parameters.
fn raw_verifications(threads: usize, seconds: u64) -> f64 {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("OWASP parameters");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let hash = argon
        .hash_password_with_salt(PASSWORD.as_bytes(), b"saltsaltsaltsalt")
        .expect("hash")
        .to_string();
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let done: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (argon, hash) = (&argon, &hash);
                scope.spawn(move || {
                    let parsed: argon2::password_hash::phc::PasswordHash =
                        hash.parse().expect("a PHC string");
                    let mut n = 0u64;
                    while std::time::Instant::now() < deadline {
                        assert!(argon.verify_password(PASSWORD.as_bytes(), &parsed).is_ok());
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    #[expect(clippy::cast_precision_loss, reason = "counts are small")]
    let done = done as f64;
    done / started.elapsed().as_secs_f64()
}

pub async fn run(args: Args) -> Result<(), String> {
    let server = Server::start(&[
        ("LATCHKEY_SIGN_IN_ATTEMPTS_PER_IP", "100000000".to_owned()),
        ("LATCHKEY_SIGN_UPS_PER_IP", "100000000".to_owned()),
    ])
    .await?;
    let addr = server.addr.clone();
    // Idle: started, ready, and nothing asked of it yet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = server.rss_mib();
    let (cookie, token) = csrf(&addr).await?;
    for i in 0..USERS {
        let body = format!(
            "csrf_token={}&email_address={}&password={}",
            encode(&token),
            encode(&format!("bench{i}@example.com")),
            encode(PASSWORD)
        );
        let (status, headers, _) =
            load::once(&addr, form_post(&addr, "/sign-up", &cookie, body)).await?;
        if status != 303 {
            return Err(format!("sign-up answered {status}"));
        }
        verify(
            &addr,
            &cookie,
            &token,
            &headers,
            &format!("bench{i}@example.com"),
        )
        .await?;
    }
    let interval = Duration::from_millis(args.interval_ms);
    let seconds = Duration::from_secs(args.seconds);
    let cheap: MakeRequest = {
        let addr = addr.clone();
        Arc::new(move |_, _| {
            Request::get("/healthz")
                .header("host", &addr)
                .body(Full::new(Bytes::new()))
                .expect("a valid request")
        })
    };
    let sign_in: MakeRequest = {
        let (addr, cookie, token) = (addr.clone(), cookie.clone(), token.clone());
        Arc::new(move |conn, n| {
            let user = (conn + usize::try_from(n).unwrap_or(0)) % USERS;
            let body = format!(
                "csrf_token={}&email_address={}&password={}",
                encode(&token),
                encode(&format!("bench{user}@example.com")),
                encode(PASSWORD)
            );
            form_post(&addr, "/sign-in", &cookie, body)
        })
    };
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);

    // The three measurements take turns, so a slow spell of this shared machine falls on all of
    // them alike; medians are compared.
    let (mut raws, mut rates, mut idle_p99s, mut busy_p99s, mut errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
    let mut last = None;
    for round in 1..=args.rounds {
        println!("round {round} of {}", args.rounds);
        crate::machine::wait_for_quiet("the round").await;
        let idle = load::paced(&addr, interval, seconds, cheap.clone()).await?;
        idle_p99s.push(idle.p99_ms);
        let secs = args.seconds;
        raws.push(
            tokio::task::spawn_blocking(move || raw_verifications(workers, secs))
                .await
                .map_err(|e| e.to_string())?,
        );
        let (signins, busy) = tokio::join!(
            load::run(
                &addr,
                args.connections,
                Duration::from_secs(1),
                seconds,
                303,
                sign_in.clone()
            ),
            async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                load::paced(&addr, interval, seconds, cheap.clone()).await
            }
        );
        let (signins, busy) = (signins?, busy?);
        rates.push(signins.per_second());
        busy_p99s.push(busy.p99_ms);
        errors += signins.errors + busy.errors;
        last = Some(signins);
    }
    // What the burst left behind, and what is left of it a minute later.
    let after_burst = server.rss_mib();
    let mut settled = Vec::new();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        settled.push(server.rss_mib().unwrap_or(f64::NAN));
    }
    drop(server);
    let signins = last.ok_or("no rounds were run")?;
    let (raw, rate, idle_p99, busy_p99) = (
        median(&raws),
        median(&rates),
        median(&idle_p99s),
        median(&busy_p99s),
    );

    println!(
        "sign-ins through POST /sign-in ({} connections, {} users, SQLite) against raw argon2id (m=19 MiB, t=2, p=1) verifications on {workers} threads; {} alternating rounds of {} s, each on a quiet machine; median [range]",
        args.connections, USERS, args.rounds, args.seconds
    );
    println!(
        "  raw argon2id verifications: {} /s",
        median_range(&raws, 1)
    );
    println!(
        "  sign-ins:                   {} /s  (last round: p50 {:.1} ms, p99 {:.1} ms; {errors} errors in all rounds)",
        median_range(&rates, 1),
        signins.p50_ms,
        signins.p99_ms
    );
    let ratio = rate / raw;
    println!(
        "  ratio {:.1}% (target >= 90%: {})",
        100.0 * ratio,
        if ratio >= 0.90 { "met" } else { "missed" }
    );
    println!(
        "  GET /healthz every {} ms: p99 {} ms idle, {} ms during sign-ins ({:.2}x; target < 2x: {})",
        args.interval_ms,
        median_range(&idle_p99s, 2),
        median_range(&busy_p99s, 2),
        busy_p99 / idle_p99,
        if busy_p99 < 2.0 * idle_p99 {
            "met"
        } else {
            "missed"
        },
    );
    let mib = |rss: Option<f64>| rss.map_or_else(|| "?".to_owned(), |r| format!("{r:.1}"));
    println!(
        "  RSS: {} MiB idle at start (target < 30: {}); {} MiB right after the last burst; {} MiB a minute later (target < 50: {})",
        mib(idle_rss),
        if idle_rss.is_some_and(|r| r < 30.0) {
            "met"
        } else {
            "missed"
        },
        mib(after_burst),
        mib(settled.last().copied()),
        if settled.last().is_some_and(|r| *r < 50.0) {
            "met"
        } else {
            "missed"
        },
    );
    if let Some(under) = settled.iter().position(|r| *r < 50.0) {
        println!("  RSS under 50 MiB {} s after the burst", 5 * (under + 1));
    }
    Ok(())
}
