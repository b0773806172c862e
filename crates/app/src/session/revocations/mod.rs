//! Sessions the app refuses before their tokens expire: ended, revoked or removed sessions and
//! banned users, learned from the issuer's webhooks (`session.ended`, `session.revoked`,
//! `session.removed`; `user.updated` with `banned: true`).
//!
//! A session token stays valid for its whole minute (docs/PROTOCOLS.md §4.3), so signing out
//! alone would leave a copied token working for up to 65 s. Verification stays offline; after
//! it, the extractors ask this set, held in memory on every instance, never the database.
//!
//! * The receiver records each revocation in `app_revocations` in the transaction that records
//!   the event (so exactly once), and puts it in this instance's set as soon as that commits.
//! * Every instance reads rows it has not seen by `seq` every [`REFRESH_EVERY`]
//!   ([`Refresh`], a periodic job): `seq` is handed out under a row lock held until commit
//!   (see `migrations/1004_revocations.sql`), so rows become visible in `seq` order and a
//!   cursor never skips one. It works the same on SQLite, on Postgres and through a
//!   transaction pooler, where `LISTEN` is not available (docs/PROTOCOLS.md §7.2).
//! * An entry is kept [`KEEP_MS`] after it was recorded: by then every token it could refuse
//!   has expired. Instances drop it from memory, and rows are deleted, after that.

mod rows;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use latchkey_protocol::jwt::SessionClaims;
use latchkey_protocol::time::Clock;
use latchkey_store::jobs::{Periodic, Task, Worker};
use latchkey_store::{Db, StoreError, Tx};

/// Session tokens live 60 s (docs/PROTOCOLS.md §4.3) and are accepted 5 s past `exp` (§4.5);
/// 10 s more cover a token minted just as its session ended and clocks a little apart.
pub const KEEP_MS: i64 = 60_000 + 5_000 + 10_000;
/// How often each instance reads revocations other instances recorded.
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);
/// Expired rows are deleted at most this often (by each instance's clock).
pub const PRUNE_EVERY_MS: i64 = 30_000;
/// Rows read in one query; a refresh reads on until it gets fewer.
const PAGE: i64 = 1_000;
/// How long a stop waits for a refresh in progress.
const DRAIN: Duration = Duration::from_secs(5);

/// What an event asks the app to refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Every token of the session with this id (the tokens' `sid`).
    Session(String),
    /// Tokens of this user (`sub`) issued at or before `not_after_ms` (the issuer's clock, as
    /// the tokens' `iat` is): a banned user's. Tokens minted after an unban still work.
    User { id: String, not_after_ms: i64 },
}

/// One revocation as stored and held: refused until `expires_at` (ms, the app's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub revocation: Revocation,
    pub expires_at: i64,
}

impl Entry {
    /// The entry for `revocation` recorded at `now`.
    pub(crate) fn new(revocation: Revocation, now: i64) -> Self {
        let from = match &revocation {
            Revocation::Session(_) => now,
            Revocation::User { not_after_ms, .. } => now.max(*not_after_ms),
        };
        Self {
            revocation,
            expires_at: from.saturating_add(KEEP_MS),
        }
    }
}

/// The revocations this instance knows, shared by its extractors, its webhook receiver and its
/// [`Refresh`] job. Cheap to clone.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Clock,
    entries: RwLock<Entries>,
    /// How many entries are held: the common case, none, is answered without the lock.
    held: AtomicUsize,
    /// The highest `seq` read from the database.
    cursor: AtomicI64,
    /// When (the clock's ms) expired rows are next deleted.
    next_prune: AtomicI64,
    /// Whether the last refresh failed (logged once per outage, not per attempt).
    failing: AtomicBool,
}

#[derive(Default)]
struct Entries {
    /// Session id → expiry.
    sessions: HashMap<String, i64>,
    /// User id → (tokens issued at or before this ms are refused, expiry).
    users: HashMap<String, (i64, i64)>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("held", &self.len())
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// An empty set going by `clock` (the session verifier's).
    #[must_use]
    pub fn new(clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                clock,
                entries: RwLock::default(),
                held: AtomicUsize::new(0),
                cursor: AtomicI64::new(0),
                next_prune: AtomicI64::new(0),
                failing: AtomicBool::new(false),
            }),
        }
    }

    /// Now, by the set's clock (ms).
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// How many revocations are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.held.load(Ordering::Relaxed)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a verified token with `claims` must be refused.
    #[must_use]
    pub fn refuses(&self, claims: &SessionClaims) -> bool {
        if self.is_empty() {
            return false;
        }
        let now = self.now_ms();
        let entries = self
            .inner
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = claims
            .sid
            .as_deref()
            .and_then(|sid| entries.sessions.get(sid))
            .is_some_and(|&expires| expires > now);
        session
            || entries
                .users
                .get(&claims.sub)
                .is_some_and(|&(not_after, expires)| {
                    // A token without `iat` cannot show it came after the ban.
                    expires > now
                        && claims
                            .iat
                            .is_none_or(|iat| iat.saturating_mul(1000) <= not_after)
                })
    }

    /// Holds `entry` (unless it has expired).
    pub(crate) fn insert(&self, entry: Entry) {
        if entry.expires_at <= self.now_ms() {
            return;
        }
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match entry.revocation {
            Revocation::Session(id) => {
                let expires = entries.sessions.entry(id).or_insert(entry.expires_at);
                *expires = (*expires).max(entry.expires_at);
            }
            Revocation::User { id, not_after_ms } => {
                let held = entries.users.entry(id).or_insert((not_after_ms, 0));
                *held = (held.0.max(not_after_ms), held.1.max(entry.expires_at));
            }
        }
        self.inner.held.store(entries.len(), Ordering::Relaxed);
    }

    /// Records `revocation` in `tx`, and holds it here once `tx` has committed.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record(&self, tx: &mut Tx, revocation: Revocation) -> Result<(), StoreError> {
        let now = self.now_ms();
        let entry = Entry::new(revocation, now);
        rows::insert(tx, &entry, now).await?;
        let set = self.clone();
        tx.on_commit(move || set.insert(entry));
        Ok(())
    }

    /// Reads every live revocation, before serving: afterwards [`Revocations::refresh`] reads
    /// only what is newer.
    ///
    /// # Errors
    /// Database failures.
    pub async fn load(&self, db: &Db) -> Result<(), StoreError> {
        let (cursor, live) = rows::live(db, self.now_ms()).await?;
        for entry in live {
            self.insert(entry);
        }
        self.inner.cursor.fetch_max(cursor, Ordering::Relaxed);
        Ok(())
    }

    /// Reads the revocations recorded since the last read, drops expired entries, and now and
    /// then deletes expired rows. Returns how many rows were read.
    ///
    /// # Errors
    /// Database failures.
    pub async fn refresh(&self, db: &Db) -> Result<usize, StoreError> {
        let mut read = 0;
        loop {
            let cursor = self.inner.cursor.load(Ordering::Relaxed);
            let page = rows::after(db, cursor, PAGE).await?;
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= PAGE;
            read += page.len();
            for (seq, entry) in page {
                if let Some(entry) = entry {
                    self.insert(entry);
                }
                self.inner.cursor.fetch_max(seq, Ordering::Relaxed);
            }
            if !full {
                break;
            }
        }
        let now = self.now_ms();
        self.forget_expired(now);
        if now >= self.inner.next_prune.load(Ordering::Relaxed) {
            self.inner
                .next_prune
                .store(now.saturating_add(PRUNE_EVERY_MS), Ordering::Relaxed);
            rows::delete_expired(db, now).await?;
        }
        Ok(read)
    }

    fn forget_expired(&self, now: i64) {
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.sessions.retain(|_, expires| *expires > now);
        entries.users.retain(|_, (_, expires)| *expires > now);
        self.inner.held.store(entries.len(), Ordering::Relaxed);
    }

    /// The job that keeps this set in step with the database, every [`REFRESH_EVERY`].
    #[must_use]
    pub fn refresher(&self, db: Db) -> Worker<Periodic<Refresh>> {
        let job = Periodic::new(
            Refresh {
                set: self.clone(),
                db,
            },
            REFRESH_EVERY,
            false,
        );
        let settings = job.settings(DRAIN);
        Worker::new(job, settings)
    }
}

impl Entries {
    fn len(&self) -> usize {
        self.sessions.len() + self.users.len()
    }
}

/// [`Revocations::refresh`] as a periodic task.
pub struct Refresh {
    set: Revocations,
    db: Db,
}

impl Task for Refresh {
    type Error = std::convert::Infallible;
    const NAME: &'static str = "revocation refresh";

    async fn run(&self) -> Result<(), Self::Error> {
        let failing = &self.set.inner.failing;
        match self.set.refresh(&self.db).await {
            Ok(_) => {
                if failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("revocations are read from the database again");
                }
            }
            Err(error) => {
                if !failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %latchkey_web::ErrorChain(&error),
                        "cannot read revocations; sessions ended on other instances are not refused until this recovers"
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
