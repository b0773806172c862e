//! `/healthz` and `/readyz`.

use std::time::Duration;

use latchkey_testkit::TestContext;
use latchkey_testkit::proxy::TcpProxy;
use serde_json::Value;

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
    let pg = ctx.postgres().expect("postgres test").clone();
    let (host, port) = pg.host_port();
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    let direct = ctx.fresh_database().await;
    let name = direct.postgres_database().unwrap();
    let through_proxy = format!("postgres://{}@{}/{name}", pg.user(), proxy.addr);
    let app = ctx
        .spawn_with(|config| {
            config.database_url = through_proxy.parse().unwrap();
            config.direct_database_url = Some(direct.clone());
        })
        .await;
    app.get("/readyz").expect(200).await;

    proxy.cut();
    let body: Value = app.get("/readyz").expect(503).await.json();
    assert_eq!(body["database"], "unreachable");
    app.get("/healthz").expect(200).await;

    proxy.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let reply = app.get("/readyz").send().await;
        if reply.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz did not recover: {}",
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
