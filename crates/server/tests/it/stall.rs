//! A database that stops answering (a stalled link, not a reset one) holds no connection
//! hostage: statements, rollbacks and requests give up within their bounds, every pool slot
//! frees, and service resumes on its own once the database answers again. Postgres only: an
//! embedded SQLite file has no link to stall.

use std::time::Duration;

use latchkey_store::{DatabaseUrl, Db, PoolSettings, StoreError};
use latchkey_testkit::TestContext;
use latchkey_testkit::pgbouncer::PgBouncer;
use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::bapi::{call, error_code, secret_key};
use crate::support::postgres_behind_a_proxy;

/// Short bounds so the test runs in seconds: statements 1 s (+1 s client grace), rollbacks 1 s.
fn short_bounds(max_connections: u32) -> PoolSettings {
    PoolSettings {
        max_connections,
        acquire_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        cleanup_timeout: Duration::from_secs(1),
    }
}

fn is_unavailable(result: &Result<impl Sized, StoreError>) -> bool {
    matches!(result, Err(StoreError::Unavailable(_)))
}

/// Every slot is held by a transaction when the database goes silent: two transactions are
/// dropped mid-way (their rollback cannot be answered), two send one more statement (it cannot
/// be answered). All four slots are free within the bound; a new transaction fails at once in
/// the Unavailable class instead of hanging; and when the database answers again the same pool
/// serves every slot, without a restart.
pub async fn a_silent_database_frees_every_slot_within_the_bound(ctx: TestContext) {
    let (proxy, through, _direct) = postgres_behind_a_proxy(&ctx).await;
    let db = Db::connect(&through, &short_bounds(4)).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tx = db.begin().await.unwrap();
        let q = tx.query("SELECT 1 AS one");
        tx.fetch_one(q).await.unwrap();
        held.push(tx);
    }
    assert_eq!(db.connections_in_use(), 4);

    proxy.stall();
    let stalled_at = Instant::now();
    let running: Vec<_> = held
        .split_off(2)
        .into_iter()
        .map(|mut tx| {
            tokio::spawn(async move {
                let q = tx.query("SELECT 2 AS two");
                tx.fetch_one(q).await.map(drop)
            })
        })
        .collect();
    drop(held);
    for task in running {
        let outcome = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a statement to a silent database hung past its bound")
            .unwrap();
        assert!(is_unavailable(&outcome), "{outcome:?}");
    }
    // Statements: 1 s + 1 s grace; rollbacks: 1 s. Allow half a second for a busy machine.
    let bound = Duration::from_millis(2_500);
    while db.connections_in_use() > 0 {
        assert!(
            stalled_at.elapsed() < bound,
            "{} slots still held {:?} after the stall",
            db.connections_in_use(),
            stalled_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let asked = Instant::now();
    let refused = db.begin().await;
    assert!(is_unavailable(&refused), "{:?}", refused.map(drop));
    assert!(
        asked.elapsed() < Duration::from_millis(1_500),
        "a new transaction took {:?} to be refused",
        asked.elapsed()
    );
    assert_eq!(db.connections_in_use(), 0);

    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut all = Vec::new();
        for _ in 0..4 {
            match db.begin().await {
                Ok(tx) => all.push(tx),
                Err(error) => {
                    assert!(Instant::now() < deadline, "no recovery: {error:?}");
                    break;
                }
            }
        }
        if all.len() == 4 {
            for mut tx in all {
                let q = tx.query("SELECT 3 AS three");
                tx.fetch_one(q).await.unwrap();
                tx.commit().await.unwrap();
            }
            break;
        }
        drop(all);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.close().await;
}

/// Postgres itself cancels a statement that runs past the statement timeout, directly (a
/// startup option) and through a real PgBouncer in transaction mode (`SET LOCAL` with each
/// `BEGIN`). The error is in the Unavailable class and the connection survives for the next
/// transaction.
pub async fn postgres_cancels_statements_past_the_statement_timeout(ctx: TestContext) {
    let pg = ctx.postgres().expect("postgres test");
    let direct = ctx.fresh_database().await;
    let bouncer = PgBouncer::start(pg, 2).await;
    let pooled: DatabaseUrl = bouncer
        .url_for(pg, &direct.postgres_database().unwrap())
        .parse()
        .unwrap();
    for url in [direct, pooled] {
        let db = Db::connect(&url, &short_bounds(1)).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let q = tx.query("SHOW statement_timeout");
        let shown: String =
            latchkey_store::Row::try_get(&tx.fetch_one(q).await.unwrap(), 0).unwrap();
        assert_eq!(shown, "1s", "{url}");

        let started = Instant::now();
        let q = tx.query("SELECT 1 AS one FROM pg_sleep(5)");
        let outcome = tx.fetch_one(q).await;
        let elapsed = started.elapsed();
        let Err(StoreError::Unavailable(error)) = &outcome else {
            panic!(
                "{url}: expected a cancelled statement, got {:?}",
                outcome.map(drop)
            );
        };
        // Cancelled by the server at 1 s, before the client's own bound (2 s).
        let code = error.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("57014"), "{url}: {error}");
        assert!(elapsed < Duration::from_millis(1_800), "{url}: {elapsed:?}");
        drop(tx);

        let mut tx = db.begin().await.unwrap();
        let q = tx.query("SELECT 1 AS one");
        tx.fetch_one(q).await.unwrap();
        tx.commit().await.unwrap();
        db.close().await;
    }
}

/// While the database is silent, management API calls and `/readyz` answer 503 with
/// `Retry-After` within the acquire timeout (1 s here) instead of hanging, and answer 200 again
/// once it is back, without a restart.
pub async fn requests_during_a_database_stall_answer_503_within_the_acquire_timeout(
    ctx: TestContext,
) {
    let (proxy, through, direct) = postgres_behind_a_proxy(&ctx).await;
    let app = ctx
        .spawn_with(|config| {
            config.database_url = through;
            config.direct_database_url = Some(direct);
            config.database_acquire_timeout = Duration::from_secs(1);
            config.database_statement_timeout = Duration::from_secs(3);
        })
        .await;
    let key = secret_key(&app).await;
    // The key is now one this instance trusts, so the call gets as far as its query.
    call(&app, Method::GET, "/v1/users", &key).expect(200).await;

    proxy.stall();
    for attempt in 0..3 {
        let started = Instant::now();
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            call(&app, Method::GET, "/v1/users", &key).send(),
        )
        .await
        .expect("a request during the stall hung");
        let elapsed = started.elapsed();
        assert_eq!(reply.status, 503, "attempt {attempt}: {}", reply.text());
        assert_eq!(error_code(&reply), "database_unavailable");
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(
            elapsed < Duration::from_millis(1_800),
            "attempt {attempt} took {elapsed:?}"
        );
    }
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(10), app.get("/readyz").send())
        .await
        .expect("/readyz hung during the stall");
    assert_eq!(reply.status, 503);
    assert!(started.elapsed() < Duration::from_millis(1_800));

    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = call(&app, Method::GET, "/v1/users", &key).send().await;
        if reply.status == 200 {
            let _: Value = reply.json();
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", reply.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
