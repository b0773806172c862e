//! `/healthz` and `/readyz`.

use std::time::Duration;

use latchkey_testkit::TestContext;
use serde_json::Value;

use crate::support::{spawn_behind_a_proxy, until_ok};

pub async fn healthz_answers(ctx: TestContext) {
    let app = ctx.spawn().await;
    let body: Value = app.get("/healthz").expect(200).await.json();
    assert_eq!(body["status"], "ok");
    app.stop().await;
}

pub async fn readyz_reports_the_database(ctx: TestContext) {
    let app = ctx.spawn().await;
    let body: Value = app.get("/readyz").expect(200).await.json();
    assert_eq!(body["database"], "ok");
    app.stop().await;
}

/// The database goes away behind a running server and comes back: `/readyz` follows it, and
/// the server needs no restart.
pub async fn readyz_follows_the_database_down_and_up(ctx: TestContext) {
    let (proxy, app) = spawn_behind_a_proxy(&ctx, |_| {}).await;
    app.get("/readyz").expect(200).await;

    proxy.cut();
    let body: Value = app.get("/readyz").expect(503).await.json();
    assert_eq!(body["database"], "unreachable");
    app.get("/healthz").expect(200).await;

    proxy.restore();
    until_ok(Duration::from_secs(15), || app.get("/readyz")).await;
    app.stop().await;
}

/// A request in flight when shutdown begins still gets its answer; new connections are refused.
pub async fn shutdown_lets_in_flight_requests_finish(ctx: TestContext) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let signer = latchkey_testkit::clerk::Signer::new();
    let secret = signer.secret.clone();
    let app = ctx
        .spawn_with(|config| config.clerk_webhook_signing_secrets = vec![secret])
        .await;
    let body = serde_json::to_vec(&latchkey_testkit::clerk::user_event(
        "user.created",
        "user_inflight",
        1,
        "inflight@example.com",
        "In",
    ))
    .unwrap();
    let headers = signer.headers("msg_inflight", &body);
    let mut request = format!(
        "POST /api/webhooks/clerk HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        app.addr,
        body.len()
    );
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // A first, complete request proves the connection is accepted and being served.
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", app.addr).as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("\"ok\"") {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed early");
        seen.extend_from_slice(&chunk[..n]);
    }
    stream.write_all(request.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(first).await.unwrap();
    // Give the server time to read the headers and start the handler.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let addr = app.addr;
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    if stopping.is_finished() {
        panic!(
            "the server did not wait for the request in flight: {:?}",
            stopping.await
        );
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections once shutdown began"
    );

    stream.write_all(rest).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"applied\""), "{response}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
}
