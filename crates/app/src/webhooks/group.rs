//! Group commit for the receiver's common case: `user.created` / `user.updated` events that
//! touch nothing but the app's users table (no ban to record, no shadow copy to keep).
//!
//! Concurrent requests queue their event; a couple of workers each take what is waiting (up
//! to [`MAX_BATCH`]) and apply it at once. On Postgres a batch is one statement, its own
//! transaction: one round trip and one WAL flush for the lot, where one event used to cost four
//! round trips and a flush. On SQLite it is one transaction of a multi-row claim, a multi-row
//! upsert and the stale marks. Either way the rules are the one-event path's, sharing its
//! clauses: a message is claimed as in [`super::inbox::claim`], a user changes only under the
//! order guard of [`crate::users::upsert_from_source`]. Each request is answered only after its
//! batch committed. If a batch fails, each of its events is applied again on its own through
//! [`super::apply`], so one bad event fails alone and a lost race is retried as before.
//!
//! Within a batch message ids and user ids are distinct (a second event for the same user waits
//! for the next batch: one statement cannot change a row twice), and rows are written in id
//! order, so concurrent batches take row locks in the same order.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_protocol::clerk::{Event, EventAttributes, EventData, EventType, User};
use latchkey_store::{Backend, Db, Row as _, StoreError, Tx};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::apply::{Delivery, Targets, apply, revocation};
use super::inbox::{self, Outcome};
use crate::session::Auth;
use crate::users::{self, Upserted};

/// Most events applied in one transaction. Each batch size is its own statement text, which
/// the driver prepares once per connection and keeps in a cache of 100: 32 sizes of the two
/// statements a batch runs fit in it beside the rest of latchkey's statements.
pub const MAX_BATCH: usize = 32;

/// Events waiting for a worker before new ones wait for room (back-pressure on the senders).
const QUEUE: usize = 1024;

/// Batches committed since start, and the events in them (for `/metrics`).
static BATCHES: AtomicU64 = AtomicU64::new(0);
static BATCHED_EVENTS: AtomicU64 = AtomicU64::new(0);

/// `(batches, events)` committed together since the process started.
#[must_use]
pub fn totals() -> (u64, u64) {
    (
        BATCHES.load(Ordering::Relaxed),
        BATCHED_EVENTS.load(Ordering::Relaxed),
    )
}

/// The queue in front of the batching workers.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
    db: Db,
    auth: Auth,
}

struct Job {
    svix_id: String,
    /// The event's parts, its user taken out so the batch can read it without a check.
    kind: EventType,
    timestamp_ms: Option<i64>,
    instance_id: Option<String>,
    event_attributes: Option<EventAttributes>,
    user: Box<User>,
    reply: oneshot::Sender<Result<Delivery, StoreError>>,
}

impl Job {
    /// The event again, for applying it on its own.
    fn into_event(self) -> (String, Event, oneshot::Sender<Result<Delivery, StoreError>>) {
        let event = Event {
            kind: self.kind,
            timestamp_ms: self.timestamp_ms,
            instance_id: self.instance_id,
            event_attributes: self.event_attributes,
            data: EventData::User(self.user),
        };
        (self.svix_id, event, self.reply)
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the workers on the current Tokio runtime: one on SQLite (its single writer
    /// serialises transactions anyway), two on Postgres. They stop when the last
    /// [`GroupCommit`] is dropped, after finishing what was queued.
    #[must_use]
    pub fn start(db: Db, auth: Auth) -> Self {
        let workers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        };
        let (queue, jobs) = mpsc::channel(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..workers {
            tokio::spawn(work(db.clone(), auth.clone(), Arc::clone(&jobs)));
        }
        Self { queue, db, auth }
    }

    /// Whether `event` can take the batched path: a user version with no ban (a ban also
    /// records a revocation, which takes the one-event path).
    #[must_use]
    pub fn takes(event: &Event) -> bool {
        matches!(event.data, EventData::User(_)) && revocation(event).is_none()
    }

    /// Applies `event` (message `svix_id`) exactly once: in a batch with whatever else is
    /// waiting if [`GroupCommit::takes`] it, else on its own (with no shadow copy); returns
    /// once it committed.
    ///
    /// # Errors
    /// Database failures that persisted through the one-event retry.
    pub async fn apply(&self, svix_id: &str, event: Event) -> Result<Delivery, StoreError> {
        if !Self::takes(&event) {
            return apply(&self.db, targets(&self.auth), svix_id, &event).await;
        }
        let Event {
            kind,
            timestamp_ms,
            instance_id,
            event_attributes,
            data: EventData::User(user),
        } = event
        else {
            return Err(StoreError::Invariant(
                "a user event lost its user".to_owned(),
            ));
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            svix_id: svix_id.to_owned(),
            kind,
            timestamp_ms,
            instance_id,
            event_attributes,
            user,
            reply,
        };
        if self.queue.send(job).await.is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The error a request gets if the workers are gone (shutting down): transient, so the sender
/// retries against another instance or later.
fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}

async fn work(db: Db, auth: Auth, jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut carried: Vec<Job> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut carried);
        // With jobs carried over, never wait for the queue: another worker may be holding it
        // while it waits for work that is not coming.
        let queue = if batch.is_empty() {
            Some(jobs.lock().await)
        } else {
            jobs.try_lock().ok()
        };
        if let Some(mut queue) = queue {
            if batch.is_empty() {
                match queue.recv().await {
                    Some(job) => batch.push(job),
                    None => return,
                }
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let (now, later) = split_distinct(batch);
        carried = later;
        run(&db, &auth, now).await;
    }
}

/// The jobs that can share one batch (first of each message id and each user), and the rest,
/// which go in the next one.
fn split_distinct(batch: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut svix_ids = HashSet::new();
    let mut users = HashSet::new();
    let (mut now, mut later) = (Vec::with_capacity(batch.len()), Vec::new());
    for job in batch {
        let user = job.user.id.clone();
        if svix_ids.contains(&job.svix_id) || users.contains(&user) {
            later.push(job);
        } else {
            svix_ids.insert(job.svix_id.clone());
            users.insert(user);
            now.push(job);
        }
    }
    (now, later)
}

fn targets(auth: &Auth) -> Targets<'_> {
    Targets {
        revocations: auth.revocations(),
        shadow: None,
    }
}

async fn run(db: &Db, auth: &Auth, mut batch: Vec<Job>) {
    batch.sort_by(|a, b| a.user.id.cmp(&b.user.id));
    match commit_batch(db, &batch).await {
        Ok(deliveries) => {
            BATCHES.fetch_add(1, Ordering::Relaxed);
            BATCHED_EVENTS.fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (job, delivery) in batch.into_iter().zip(deliveries) {
                let _ = job.reply.send(Ok(delivery));
            }
        }
        Err(error) => {
            if batch.len() > 1 {
                tracing::debug!(events = batch.len(), %error, "a batch failed; applying its events one by one");
            }
            for job in batch {
                let (svix_id, event, reply) = job.into_event();
                let _ = reply.send(apply(db, targets(auth), &svix_id, &event).await);
            }
        }
    }
}

/// One transaction for the whole batch; the deliveries in the batch's order.
async fn commit_batch(db: &Db, batch: &[Job]) -> Result<Vec<Delivery>, StoreError> {
    match db.backend() {
        Backend::Postgres => one_statement(db, batch).await,
        Backend::Sqlite => in_transaction(db, batch).await,
    }
}

/// The batch as one Postgres statement, its own transaction, one round trip outside a pooler:
/// data-modifying CTEs upsert the users (rows in id order) and then record the messages (in id
/// order), each message's outcome `applied` if its user changed, else `stale`.
///
/// The users come first, before it is known which messages are duplicates. That is safe: the
/// upsert changes a row only for a strictly newer version of a live user, so a copy of a
/// message already applied (or being applied by another batch, whose row lock it then waits
/// for) changes nothing; its claim finds the message recorded and it is answered as a
/// duplicate.
async fn one_statement(db: &Db, batch: &[Job]) -> Result<Vec<Delivery>, StoreError> {
    let now = latchkey_protocol::time::now_ms();
    let new_ids: Vec<String> = batch
        .iter()
        .map(|_| latchkey_protocol::id::new_id(users::ID_PREFIX))
        .collect();
    let single = db.write_one().await?;
    let mut q = single.query_owned(one_statement_sql(batch.len())).bind(now);
    for (job, new_id) in batch.iter().zip(&new_ids) {
        q = q
            .bind(job.svix_id.clone())
            .bind(job.kind.as_str().to_owned())
            .bind(new_id.clone());
        q = users::bind_user_fields(q, &job.user, None);
    }
    let mut outcomes = HashMap::with_capacity(batch.len());
    for row in single.fetch_all(q).await? {
        let svix_id: String = row.try_get("svix_id")?;
        let outcome = match row.try_get::<String, _>("outcome")?.as_str() {
            "applied" => Outcome::Applied,
            _ => Outcome::Stale,
        };
        outcomes.insert(svix_id, outcome);
    }
    Ok(batch
        .iter()
        .map(|job| match outcomes.get(&job.svix_id) {
            Some(outcome) => Delivery::Processed(*outcome),
            None => Delivery::Duplicate,
        })
        .collect())
}

/// [`one_statement`]'s SQL for `rows` events: `$1` is the time received, then 12 parameters
/// per event (message id, event type, new row id, and the user's fields as
/// [`users::bind_user_fields`] binds them without a time).
fn one_statement_sql(rows: usize) -> String {
    let mut sql = String::from(
        "WITH batch (svix_id, event_type, new_id, clerk_user_id, email, first_name, last_name, \
             username, image_url, public_metadata, source_updated_at, email_verified) AS (VALUES ",
    );
    for row in 0..rows {
        let p = 2 + row * 12;
        if row > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "(");
        for column in 0..10 {
            let _ = write!(sql, "${}::text, ", p + column);
        }
        let _ = write!(sql, "${}::bigint, ${}::bigint)", p + 10, p + 11);
    }
    sql.push_str(
        "), upserted AS (INSERT INTO users (id, clerk_user_id, email, first_name, last_name, \
             username, image_url, public_metadata, created_at, updated_at, source_updated_at, \
             deleted_at, email_verified) \
         SELECT new_id, clerk_user_id, email, first_name, last_name, username, image_url, \
             public_metadata, $1::bigint, $1::bigint, source_updated_at, NULL, email_verified \
         FROM batch ORDER BY clerk_user_id",
    );
    sql.push_str(users::UPSERT_ON_CONFLICT);
    sql.push_str(
        " RETURNING clerk_user_id), \
         claimed AS (INSERT INTO clerk_webhook_events (svix_id, event_type, outcome, detail, \
             received_at, attempts) \
         SELECT b.svix_id, b.event_type, \
             CASE WHEN u.clerk_user_id IS NULL THEN 'stale' ELSE 'applied' END, NULL, $1::bigint, 1 \
         FROM batch b LEFT JOIN upserted u ON u.clerk_user_id = b.clerk_user_id \
         ORDER BY b.svix_id",
    );
    sql.push_str(inbox::CLAIM_ON_CONFLICT);
    sql.push_str(" RETURNING svix_id, outcome) SELECT svix_id, outcome FROM claimed");
    sql
}

/// The batch as one transaction of the same clauses as separate statements (SQLite, which has
/// no data-modifying CTEs): claim the messages, upsert the claimed users, mark the stale. A
/// failed batch is rolled back before its events are retried one by one.
async fn in_transaction(db: &Db, batch: &[Job]) -> Result<Vec<Delivery>, StoreError> {
    let mut tx: Tx = db.begin().await?;
    match write_batch(&mut tx, batch).await {
        Ok(deliveries) => {
            tx.commit().await?;
            Ok(deliveries)
        }
        Err(error) => {
            // The batch already failed; a failed rollback drops the connection, which ends
            // the transaction on the server too.
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

async fn write_batch(tx: &mut Tx, batch: &[Job]) -> Result<Vec<Delivery>, StoreError> {
    let now = latchkey_protocol::time::now_ms();
    let mut messages: Vec<(&str, &str)> = batch
        .iter()
        .map(|job| (job.svix_id.as_str(), job.kind.as_str()))
        .collect();
    messages.sort_unstable();
    let claimed = inbox::claim_many(tx, &messages, now).await?;
    let fresh: Vec<&Job> = batch
        .iter()
        .filter(|job| claimed.contains(&job.svix_id))
        .collect();
    let users: Vec<&User> = fresh.iter().map(|job| &*job.user).collect();
    let upserted = users::upsert_many(tx, &users, now).await?;
    let stale: Vec<&str> = fresh
        .iter()
        .zip(&upserted)
        .filter(|(_, upserted)| **upserted == Upserted::Stale)
        .map(|(job, _)| job.svix_id.as_str())
        .collect();
    inbox::set_stale(tx, &stale).await?;
    let outcomes: HashMap<&str, Outcome> = fresh
        .iter()
        .zip(&upserted)
        .map(|(job, upserted)| {
            let outcome = match upserted {
                Upserted::Inserted | Upserted::Updated => Outcome::Applied,
                Upserted::Stale | Upserted::Tombstoned => Outcome::Stale,
            };
            (job.svix_id.as_str(), outcome)
        })
        .collect();
    Ok(batch
        .iter()
        .map(|job| match outcomes.get(job.svix_id.as_str()) {
            Some(outcome) => Delivery::Processed(*outcome),
            None => Delivery::Duplicate,
        })
        .collect())
}
