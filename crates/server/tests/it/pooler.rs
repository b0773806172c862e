//! Through a real PgBouncer in transaction-pooling mode, every query gets its own answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_store::{Db, PoolSettings, Row as _};
use latchkey_testkit::TestContext;
use latchkey_testkit::pgbouncer::PgBouncer;

const TASKS: i64 = 32;
const QUERIES_PER_TASK: i64 = 200;

/// Result of one load run.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
    wrong: AtomicU64,
}

/// Statements of different shapes, so that a named statement left on a shared server
/// connection by one client would be found, with another meaning, by the next.
async fn one_query(db: &Db, task: i64, i: i64) -> Result<bool, latchkey_store::StoreError> {
    let key = task * 1_000_000 + i;
    match i % 4 {
        0 => {
            let mut tx = db.begin().await?;
            let q = tx
                .query("INSERT INTO pooler_check (task, i, label) VALUES ($1, $2, $3) RETURNING task, i, label")
                .bind(task)
                .bind(i)
                .bind(format!("t{task}-{i}"));
            let row = tx.fetch_one(q).await?;
            tx.commit().await?;
            Ok(row.try_get::<i64, _>("task")? == task
                && row.try_get::<i64, _>("i")? == i
                && row.try_get::<String, _>("label")? == format!("t{task}-{i}"))
        }
        1 => {
            let mut tx = db.begin_read().await?;
            let q = tx.query("SELECT $1 + 1 AS next").bind(key);
            let row = tx.fetch_one(q).await?;
            tx.commit().await?;
            Ok(row.try_get::<i64, _>("next")? == key + 1)
        }
        2 => {
            let mut tx = db.begin_read().await?;
            let q = tx
                .query("SELECT $1 || '/' || $2 AS joined")
                .bind(format!("k{key}"))
                .bind(task.to_string());
            let row = tx.fetch_one(q).await?;
            tx.commit().await?;
            Ok(row.try_get::<String, _>("joined")? == format!("k{key}/{task}"))
        }
        _ => {
            let mut tx = db.begin_read().await?;
            let q = tx
                .query("SELECT count(*) AS n FROM pooler_check WHERE task = $1 AND i < $2")
                .bind(task)
                .bind(i);
            let row = tx.fetch_one(q).await?;
            tx.commit().await?;
            // Rows 0, 4, 8, ... below i were inserted by this task, in order.
            Ok(row.try_get::<i64, _>("n")? == (i + 3) / 4)
        }
    }
}

async fn load(db: &Db) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let db = db.clone();
        let tally = tally.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..QUERIES_PER_TASK {
                match one_query(&db, task, i).await {
                    Ok(true) => tally.ok.fetch_add(1, Ordering::Relaxed),
                    Ok(false) => tally.wrong.fetch_add(1, Ordering::Relaxed),
                    Err(_) => tally.errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    tally
}

async fn prepare(ctx: &TestContext) -> (PgBouncer, String, latchkey_store::DatabaseUrl) {
    let pg = ctx.postgres().expect("postgres test");
    let direct = ctx.fresh_database().await;
    let name = direct.postgres_database().unwrap();
    let setup = Db::connect(&direct, &PoolSettings::default())
        .await
        .unwrap();
    let mut tx = setup.begin().await.unwrap();
    let q = tx.query("CREATE TABLE pooler_check (task BIGINT NOT NULL, i BIGINT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (task, i))");
    tx.execute(q).await.unwrap();
    tx.commit().await.unwrap();
    setup.close().await;
    // Four server connections for 32 clients: every server connection is shared.
    let bouncer = PgBouncer::start(pg, 4).await;
    let url = bouncer.url_for(pg, &name);
    (bouncer, url, direct)
}

/// 32 tasks × 200 checked queries through PgBouncer, on the server's own database handle
/// (migrated over the direct URL): no errors, no wrong answers.
pub async fn transaction_pooler_mode_gets_every_answer_right(ctx: TestContext) {
    let (_bouncer, pooled, direct) = prepare(&ctx).await;
    let app = ctx
        .spawn_with(|config| {
            config.database_url = pooled.parse().unwrap();
            config.direct_database_url = Some(direct.clone());
            config.database_max_connections = 32;
        })
        .await;
    assert!(app.db.url().is_pooler());
    let tally = load(&app.db).await;
    let (ok, errors, wrong) = (
        tally.ok.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
        tally.wrong.load(Ordering::Relaxed),
    );
    assert_eq!(
        (errors, wrong),
        (0, 0),
        "{ok} right, {errors} errors, {wrong} wrong answers"
    );
    assert_eq!(ok, u64::try_from(TASKS * QUERIES_PER_TASK).unwrap());
    app.get("/readyz").expect(200).await;
    app.stop().await;
}

/// The control: the same load with sqlx's defaults (named, cached statements) through the
/// same PgBouncer goes wrong, so the test above can fail.
pub async fn without_pooler_mode_the_same_load_goes_wrong(ctx: TestContext) {
    let (_bouncer, pooled, _direct) = prepare(&ctx).await;
    let plain = pooled.replace("?pgbouncer=true", "");
    let url: latchkey_store::DatabaseUrl = plain.parse().unwrap();
    assert!(!url.is_pooler());
    let db = Db::connect(
        &url,
        &PoolSettings {
            max_connections: 32,
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap();
    let tally = load(&db).await;
    let (errors, wrong) = (
        tally.errors.load(Ordering::Relaxed),
        tally.wrong.load(Ordering::Relaxed),
    );
    assert!(
        errors + wrong > 0,
        "expected failures without pooler mode, got none"
    );
    db.close().await;
}
