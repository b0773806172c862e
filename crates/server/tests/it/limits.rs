//! The server against hostile connections and hosts: idle sockets, slowloris clients, and
//! requests for another host (DNS rebinding).

use std::net::SocketAddr;
use std::time::Duration;

use latchkey_testkit::TestContext;
use latchkey_testkit::pgbouncer::free_port;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::{LATCHKEY, Served, clean_command};

/// The header timeout the connection test sets (the default is 10 s).
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// A server limited to 256 open files, under 1,000 idle sockets and 50 slowloris clients that
/// trickle a header line every 300 ms, keeps answering `/healthz`; every idle socket is closed
/// within the header timeout, and so is every slowloris client.
pub async fn idle_and_slow_connections_cannot_exhaust_a_256_descriptor_server(ctx: TestContext) {
    // This process holds the other end of every socket.
    latchkey_server::serve::raise_descriptor_limit();
    let cwd = ctx.temp_dir();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = clean_command("sh", &cwd);
    command
        .args([
            "-c",
            "ulimit -n 256 && exec \"$0\" serve --data-dir data --addr \"$1\"",
            LATCHKEY,
            &addr,
        ])
        .env("LATCHKEY_HEADER_TIMEOUT", "2s")
        .env("LATCHKEY_IDLE_TIMEOUT", "3s");
    let served = Served::spawn(command, &addr).await;
    let target: SocketAddr = addr.parse().unwrap();

    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        idle.push(
            TcpStream::connect(target)
                .await
                .expect("the kernel takes the connection"),
        );
    }
    let idle_opened = Instant::now();
    let slow: Vec<_> = (0..50).map(|_| tokio::spawn(slowloris(target))).collect();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for round in 0..20 {
        let response = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/healthz round {round} under load: {e}"));
        assert_eq!(response.status(), 200, "/healthz round {round}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // Every idle socket is closed (EOF or reset) within the header timeout, with 1.5 s to spare
    // for a loaded machine.
    let deadline = idle_opened + HEADER_TIMEOUT + Duration::from_millis(1500);
    let mut still_open = 0;
    for mut socket in idle {
        let mut answer = Vec::new();
        if tokio::time::timeout_at(deadline, socket.read_to_end(&mut answer))
            .await
            .is_err()
        {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open,
        0,
        "idle sockets still open {:?} after they were opened",
        idle_opened.elapsed()
    );
    for (index, client) in slow.into_iter().enumerate() {
        let held = client.await.unwrap();
        assert!(
            held < HEADER_TIMEOUT + Duration::from_millis(1500),
            "slowloris client {index} was held {held:?}"
        );
    }

    let response = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "/healthz after the flood");
    let output = served.stop().await;
    assert!(
        output.matches("Too many open files").count() <= 1,
        "the server ran out of descriptors:\n{output}"
    );
}

/// Sends a request head one header line every 300 ms for up to 10 s; returns how long the
/// server kept the connection open after the first byte.
async fn slowloris(target: SocketAddr) -> Duration {
    let Ok(mut socket) = TcpStream::connect(target).await else {
        return Duration::ZERO;
    };
    let started = Instant::now();
    if socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .is_err()
    {
        return started.elapsed();
    }
    let mut buffer = [0_u8; 256];
    while started.elapsed() < Duration::from_secs(10) {
        match tokio::time::timeout(Duration::from_millis(300), socket.read(&mut buffer)).await {
            // Closed (or answered and closed): the server let go.
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => {
                if socket.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    return started.elapsed();
                }
            }
        }
    }
    started.elapsed()
}

/// `GET target` with `Host: host` over a plain socket; returns the status code.
async fn status_for_host(addr: SocketAddr, target: &str, host: &str) -> u16 {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("the server answers")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"))
}

/// A page on another name that resolves to 127.0.0.1 cannot read the dev mailbox or any page:
/// requests naming another host get 421 before any handler runs.
pub async fn requests_naming_another_host_get_421(ctx: TestContext) {
    let app = ctx.spawn().await;
    let port = app.addr.port();
    assert_eq!(
        status_for_host(app.addr, "/dev/mailbox", "evil.example:3000").await,
        421
    );
    assert_eq!(
        status_for_host(app.addr, "/dev/mailbox", &format!("evil.example:{port}")).await,
        421
    );
    assert_eq!(
        status_for_host(app.addr, "/sign-in", "localhost.evil.example").await,
        421
    );
    assert_eq!(
        status_for_host(app.addr, "/v1/users", "evil.example").await,
        421
    );
    // An absolute-form target names its host, whatever `Host` says.
    assert_eq!(
        status_for_host(app.addr, "http://evil.example/dev/mailbox", "127.0.0.1").await,
        421
    );
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(
            status_for_host(app.addr, "/dev/mailbox", &host).await,
            200,
            "{host}"
        );
    }
    // Load balancers probe health by address or any name.
    assert_eq!(
        status_for_host(app.addr, "/healthz", "evil.example").await,
        200
    );

    let named = ctx
        .spawn_with(|config| {
            config.public_url = Some(url::Url::parse("https://auth.example.com").unwrap());
            config.allowed_hosts = vec!["admin.example.com".to_owned()];
        })
        .await;
    for (host, status) in [
        ("auth.example.com", 200),
        ("AUTH.example.com.", 200),
        ("admin.example.com", 200),
        ("localhost", 421),
        ("evil.example", 421),
        ("127.0.0.1", 200),
    ] {
        assert_eq!(
            status_for_host(named.addr, "/sign-in", host).await,
            status,
            "{host}"
        );
    }
}

/// A request whose body trickles in cannot hold its connection past the request timeout: it
/// gets 408 and the connection closes.
pub async fn a_body_trickled_in_gets_408_and_the_connection_closes(ctx: TestContext) {
    let app = ctx
        .spawn_with(|config| config.connections.request_timeout = Duration::from_secs(1))
        .await;
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket
        .write_all(
            b"POST /api/webhooks/clerk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
    let started = Instant::now();
    // One byte every 200 ms (1,000 bytes would take 200 s) until the server answers, then read
    // to the end: writing on after the answer would only draw a reset.
    let (mut reader, mut writer) = socket.split();
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 1024];
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(5) && !closed {
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                Ok(0) | Err(_) => closed = true,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if answer.is_empty() {
                    let _ = writer.write_all(b" ").await;
                }
            }
        }
    }
    assert!(closed, "the connection is closed after the answer");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
