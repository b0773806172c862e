//! The runner against a real SQLite file: a small outbox table, claimed and recorded as the
//! parts' jobs do it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::Row as _;
use tokio_util::sync::CancellationToken;

use super::{Job, Lease, Periodic, Task, Wake, Worker, WorkerSettings};
use crate::{DatabaseUrl, Db, PoolSettings, StoreError};

/// A fresh database with the test table, and the directory to remove afterwards.
async fn database() -> (Db, std::path::PathBuf) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "latchkey-jobs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let url = DatabaseUrl::sqlite_file(&dir.join("jobs.db")).unwrap();
    let db = Db::connect(&url, &PoolSettings::default()).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let q = tx.query(
        "CREATE TABLE test_jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, \
         attempts BIGINT NOT NULL, lease_until BIGINT)",
    );
    tx.execute(q).await.unwrap();
    tx.commit().await.unwrap();
    (db, dir)
}

async fn insert(tx: &mut crate::Tx, id: &str) {
    let q = tx
        .query("INSERT INTO test_jobs (id, status, attempts) VALUES ($1, 'pending', 0)")
        .bind(id.to_owned());
    tx.execute(q).await.unwrap();
}

async fn done(db: &Db) -> i64 {
    let mut tx = db.begin_read().await.unwrap();
    let q = tx.query("SELECT COUNT(*) AS n FROM test_jobs WHERE status = 'done'");
    let n = tx.fetch_one(q).await.unwrap().get("n");
    tx.commit().await.unwrap();
    n
}

/// Waits until `n` rows are done; how long that took.
async fn until_done(db: &Db, n: i64, within: Duration) -> Duration {
    let started = Instant::now();
    while done(db).await < n {
        assert!(started.elapsed() < within, "not done within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[derive(Debug)]
struct Claimed {
    id: String,
    lease: Lease,
}

impl std::fmt::Display for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id)
    }
}

/// Leases rows, "runs" each for `attempt`, marks it done.
struct TestJob {
    db: Db,
    attempt: Duration,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    leases: std::sync::Mutex<Vec<Lease>>,
}

impl TestJob {
    fn new(db: &Db, attempt: Duration) -> Self {
        Self {
            db: db.clone(),
            attempt,
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            leases: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Job for Arc<TestJob> {
    type Item = Claimed;
    type Outcome = ();
    type Error = StoreError;
    const NAME: &'static str = "test";

    async fn claim(&self, lease: Lease, max: usize) -> Result<Vec<Claimed>, StoreError> {
        self.leases.lock().unwrap().push(lease);
        let mut tx = self.db.begin().await?;
        let q = tx
            .query(
                "SELECT id FROM test_jobs WHERE status = 'pending' \
                 AND (lease_until IS NULL OR lease_until < $1) ORDER BY id LIMIT $2",
            )
            .bind(lease.now)
            .bind(i64::try_from(max).unwrap());
        let mut claimed = Vec::new();
        for row in tx.fetch_all(q).await? {
            let id: String = row.get("id");
            let q = tx
                .query("UPDATE test_jobs SET lease_until = $2 WHERE id = $1")
                .bind(id.clone())
                .bind(lease.until);
            tx.execute(q).await?;
            claimed.push(Claimed { id, lease });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn run(&self, _item: &Claimed) -> Result<Option<()>, StoreError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.attempt).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(Some(()))
    }

    async fn record(&self, item: &Claimed, (): ()) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let q = tx
            .query(
                "UPDATE test_jobs SET status = 'done', attempts = attempts + 1, lease_until = NULL \
                 WHERE id = $1 AND lease_until = $2",
            )
            .bind(item.id.clone())
            .bind(item.lease.until);
        tx.execute(q).await?;
        tx.commit().await
    }
}

fn settings(concurrency: usize, poll: Duration, drain: Duration) -> WorkerSettings {
    WorkerSettings {
        concurrency,
        batch: 64,
        lease: Duration::from_secs(60),
        poll_interval: poll,
        drain,
    }
}

#[tokio::test]
async fn callbacks_run_after_commit_and_never_after_rollback_or_drop() {
    let (db, dir) = database().await;
    let ran = Arc::new(AtomicUsize::new(0));
    let count = |ran: &Arc<AtomicUsize>| {
        let ran = ran.clone();
        move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }
    };
    let mut tx = db.begin().await.unwrap();
    tx.on_commit(count(&ran));
    tx.rollback().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    tx.on_commit(count(&ran));
    drop(tx);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let mut tx = db.begin().await.unwrap();
    tx.on_commit(count(&ran));
    tx.on_commit(count(&ran));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "not before the commit");
    tx.commit().await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_wake_rings_once_the_writing_transaction_committed_and_the_rows_are_visible() {
    let (db, dir) = database().await;
    let wake = Wake::new();
    let reader = {
        let (db, wake) = (db.clone(), wake.clone());
        tokio::spawn(async move {
            wake.rung().await;
            // Rung: the row must be there for a reader that looks right away.
            let mut tx = db.begin_read().await.unwrap();
            let q = tx.query("SELECT COUNT(*) AS n FROM test_jobs");
            let n: i64 = tx.fetch_one(q).await.unwrap().get("n");
            tx.commit().await.unwrap();
            n
        })
    };
    let mut tx = db.begin().await.unwrap();
    insert(&mut tx, "a").await;
    wake.after_commit(&mut tx);
    // A slow commit: nobody is woken meanwhile.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reader.is_finished(), "woken before the commit");
    tx.commit().await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("woken after the commit")
        .unwrap();
    assert_eq!(seen, 1);

    let mut tx = db.begin().await.unwrap();
    insert(&mut tx, "b").await;
    wake.after_commit(&mut tx);
    tx.rollback().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), wake.rung())
            .await
            .is_err(),
        "a rolled-back write wakes nobody"
    );
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_woken_worker_runs_every_item_within_its_concurrency_and_records_it() {
    let (db, dir) = database().await;
    let job = Arc::new(TestJob::new(&db, Duration::from_millis(50)));
    let wake = Wake::new();
    let stop = CancellationToken::new();
    // The poll is far off: only the wake can explain a prompt start.
    let worker = Worker::new(
        job.clone(),
        settings(3, Duration::from_secs(60), Duration::from_secs(5)),
    )
    .woken_by(wake.clone());
    let running = tokio::spawn(worker.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tx = db.begin().await.unwrap();
    for n in 0..10 {
        insert(&mut tx, &format!("item{n:02}")).await;
    }
    wake.after_commit(&mut tx);
    tx.commit().await.unwrap();
    let took = until_done(&db, 10, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(job.most_in_flight.load(Ordering::SeqCst), 3);
    for lease in job.leases.lock().unwrap().iter() {
        assert_eq!(lease.until - lease.now, 60_000);
    }
    stop.cancel();
    running.await.unwrap();
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_a_wake_the_poll_finds_the_work() {
    let (db, dir) = database().await;
    let job = Arc::new(TestJob::new(&db, Duration::ZERO));
    let stop = CancellationToken::new();
    let worker = Worker::new(
        job,
        settings(4, Duration::from_millis(100), Duration::from_secs(5)),
    );
    let running = tokio::spawn(worker.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tx = db.begin().await.unwrap();
    insert(&mut tx, "polled").await;
    tx.commit().await.unwrap();
    until_done(&db, 1, Duration::from_secs(5)).await;
    stop.cancel();
    running.await.unwrap();
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_stop_lets_attempts_finish_within_the_drain_bound_and_abandons_the_rest() {
    let (db, dir) = database().await;
    let mut tx = db.begin().await.unwrap();
    insert(&mut tx, "quick").await;
    tx.commit().await.unwrap();
    let job = Arc::new(TestJob::new(&db, Duration::from_millis(300)));
    let stop = CancellationToken::new();
    let worker = Worker::new(
        job.clone(),
        settings(4, Duration::from_millis(20), Duration::from_secs(5)),
    );
    let running = tokio::spawn(worker.run(stop.clone()));
    while job.in_flight.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    running.await.unwrap();
    assert_eq!(
        done(&db).await,
        1,
        "the attempt in flight finished and was recorded"
    );

    let mut tx = db.begin().await.unwrap();
    insert(&mut tx, "slow").await;
    tx.commit().await.unwrap();
    let job = Arc::new(TestJob::new(&db, Duration::from_secs(30)));
    let stop = CancellationToken::new();
    let worker = Worker::new(
        job.clone(),
        settings(4, Duration::from_millis(20), Duration::from_millis(200)),
    );
    let running = tokio::spawn(worker.run(stop.clone()));
    while job.in_flight.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopping = Instant::now();
    stop.cancel();
    running.await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "the drain is bounded"
    );
    assert_eq!(done(&db).await, 1, "the abandoned attempt keeps its lease");
    db.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

struct Counter(Arc<AtomicUsize>);

impl Task for Counter {
    type Error = StoreError;
    const NAME: &'static str = "counter";

    async fn run(&self) -> Result<(), StoreError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_periodic_task_runs_at_start_if_asked_then_every_period() {
    let stop = CancellationToken::new();
    let mut runs = Vec::new();
    let mut handles = Vec::new();
    for at_start in [true, false] {
        let count = Arc::new(AtomicUsize::new(0));
        let periodic = Periodic::new(Counter(count.clone()), Duration::from_millis(200), at_start);
        let settings = periodic.settings(Duration::from_secs(1));
        handles.push(tokio::spawn(
            Worker::new(periodic, settings).run(stop.clone()),
        ));
        runs.push(count);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs[0].load(Ordering::SeqCst), 1, "at once");
    assert_eq!(runs[1].load(Ordering::SeqCst), 0, "not before a period");
    tokio::time::sleep(Duration::from_millis(850)).await;
    assert!(runs[0].load(Ordering::SeqCst) >= 3);
    assert!(runs[1].load(Ordering::SeqCst) >= 2);
    stop.cancel();
    for handle in handles {
        handle.await.unwrap();
    }
}
