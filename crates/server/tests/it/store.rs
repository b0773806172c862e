//! The data layer on each backend: transactions, error classes, migrations.

use latchkey_store::migrate::{self, Migration};
use latchkey_store::{Db, PoolSettings, Row as _, StoreError};
use latchkey_testkit::TestContext;

const V1: Migration = Migration {
    version: 9001,
    name: "widgets",
    sqlite: "CREATE TABLE widgets (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, made_at BIGINT NOT NULL)",
    postgres: "CREATE TABLE widgets (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, made_at BIGINT NOT NULL)",
};
const V2: Migration = Migration {
    version: 9002,
    name: "widget colour",
    sqlite: "ALTER TABLE widgets ADD COLUMN colour TEXT",
    postgres: "ALTER TABLE widgets ADD COLUMN colour TEXT",
};

async fn widgets_db(ctx: &TestContext) -> Db {
    let url = ctx.fresh_database().await;
    migrate::run(&url, &[&[V1, V2]]).await.unwrap();
    Db::connect(&url, &PoolSettings::default()).await.unwrap()
}

pub async fn migrations_apply_once_and_refuse_edits(ctx: TestContext) {
    let url = ctx.fresh_database().await;
    let first = migrate::run(&url, &[&[V1], &[V2]]).await.unwrap();
    assert_eq!(first.applied, vec![9001, 9002]);
    let again = migrate::run(&url, &[&[V2, V1]]).await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.already_applied, 2);

    let edited = Migration {
        sqlite: "ALTER TABLE widgets ADD COLUMN shade TEXT",
        postgres: "ALTER TABLE widgets ADD COLUMN shade TEXT",
        ..V2
    };
    let err = migrate::run(&url, &[&[V1, edited]]).await.unwrap_err();
    assert!(
        err.to_string().contains("changed after it was applied"),
        "{err}"
    );

    let broken = Migration {
        version: 9003,
        name: "broken",
        sqlite: "CREATE TABLE nope (",
        postgres: "CREATE TABLE nope (",
    };
    let err = migrate::run(&url, &[&[V1, V2, broken]]).await.unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err}");
    // The failed migration left nothing behind and is retried next time.
    let fixed = Migration {
        sqlite: "CREATE TABLE nope (id TEXT)",
        postgres: "CREATE TABLE nope (id TEXT)",
        ..broken
    };
    let report = migrate::run(&url, &[&[V1, V2, fixed]]).await.unwrap();
    assert_eq!(report.applied, vec![9003]);
}

pub async fn duplicate_versions_are_refused(ctx: TestContext) {
    let url = ctx.fresh_database().await;
    let twin = Migration { name: "twin", ..V1 };
    let err = migrate::run(&url, &[&[V1], &[twin]]).await.unwrap_err();
    assert!(err.to_string().contains("share version 9001"), "{err}");
}

pub async fn committed_writes_are_read_back_and_rolled_back_ones_are_not(ctx: TestContext) {
    let db = widgets_db(&ctx).await;
    let mut tx = db.begin().await.unwrap();
    let q = tx
        .query("INSERT INTO widgets (id, name, made_at) VALUES ($1, $2, $3)")
        .bind("w1")
        .bind("first")
        .bind(1_700_000_000_000_i64);
    assert_eq!(tx.execute(q).await.unwrap(), 1);
    tx.commit().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    let q = tx
        .query("INSERT INTO widgets (id, name, made_at) VALUES ($1, $2, $3)")
        .bind("w2")
        .bind("second")
        .bind(2_i64);
    tx.execute(q).await.unwrap();
    tx.rollback().await.unwrap();

    let mut tx = db.begin_read().await.unwrap();
    let q = tx.query("SELECT id, name, made_at, colour FROM widgets ORDER BY id");
    let rows = tx.fetch_all(q).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].try_get::<String, _>("name").unwrap(), "first");
    assert_eq!(
        rows[0].try_get::<i64, _>("made_at").unwrap(),
        1_700_000_000_000
    );
    assert_eq!(
        rows[0].try_get::<Option<String>, _>("colour").unwrap(),
        None
    );
}

pub async fn read_transactions_refuse_writes(ctx: TestContext) {
    let db = widgets_db(&ctx).await;
    let mut tx = db.begin_read().await.unwrap();
    let q = tx
        .query("INSERT INTO widgets (id, name, made_at) VALUES ($1, $2, $3)")
        .bind("w")
        .bind("n")
        .bind(1_i64);
    let err = tx.execute(q).await.unwrap_err();
    assert!(
        !err.is_transient(),
        "a write in a read transaction is a bug, not a retryable state: {err:?}"
    );
}

pub async fn unique_violations_are_classified(ctx: TestContext) {
    let db = widgets_db(&ctx).await;
    for id in ["a", "b"] {
        let mut tx = db.begin().await.unwrap();
        let q = tx
            .query("INSERT INTO widgets (id, name, made_at) VALUES ($1, 'same', 0)")
            .bind(id);
        match tx.execute(q).await {
            Ok(_) => tx.commit().await.unwrap(),
            Err(err) => {
                assert_eq!(id, "b");
                assert!(matches!(err, StoreError::UniqueViolation(_)), "{err:?}");
            }
        }
    }
}

pub async fn concurrent_writers_all_land(ctx: TestContext) {
    let db = widgets_db(&ctx).await;
    let mut handles = Vec::new();
    for worker in 0..16 {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            for n in 0..25 {
                let mut tx = db.begin().await.unwrap();
                let q = tx.query("SELECT count(*) AS n FROM widgets");
                let before: i64 = tx.fetch_one(q).await.unwrap().try_get("n").unwrap();
                let q = tx
                    .query("INSERT INTO widgets (id, name, made_at) VALUES ($1, $1, $2)")
                    .bind(format!("{worker}-{n}"))
                    .bind(before);
                tx.execute(q).await.unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let mut tx = db.begin_read().await.unwrap();
    let q = tx.query("SELECT count(*) AS n FROM widgets");
    let total: i64 = tx.fetch_one(q).await.unwrap().try_get("n").unwrap();
    assert_eq!(total, 400);
}
