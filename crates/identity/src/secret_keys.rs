//! Management API secret keys (`sk_live_…`): made, listed, revoked and verified here.
//!
//! A key is `sk_live_` and 43 base62 characters (256 random bits). Only its SHA-256 (hex) is
//! stored, with its first characters to tell keys apart; the key itself is shown once, when
//! made, and never logged. Verified keys are remembered in memory for [`CACHE_TTL`] so a busy
//! client costs no database read per request; a revoked key therefore keeps working on an
//! instance for at most that long.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::audit;
use crate::state::Identity;
use latchkey_store::{Db, Row as _, StoreError, Tx};
use sha2::{Digest as _, Sha256};

/// What every secret key starts with.
pub const KEY_PREFIX: &str = "sk_live_";
/// Random base62 characters after the prefix: 43 × log2(62) ≈ 256 bits.
const RANDOM_CHARS: usize = 43;
/// Characters of a key kept in clear, to tell keys apart in listings.
const SHOWN_CHARS: usize = KEY_PREFIX.len() + 4;
const ID_PREFIX: &str = "key";
/// How long a verified key is trusted without asking the database again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A stored key, as operators see it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretKeyInfo {
    pub id: String,
    /// The key's first characters (`sk_live_AbCd`).
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn generate() -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + RANDOM_CHARS);
    key.push_str(KEY_PREFIX);
    while key.len() < KEY_PREFIX.len() + RANDOM_CHARS {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        // 248 = 4 × 62: dropping the bytes above it keeps every character equally likely.
        for byte in bytes.into_iter().filter(|b| *b < 248) {
            if key.len() == KEY_PREFIX.len() + RANDOM_CHARS {
                break;
            }
            key.push(char::from(ALPHABET[usize::from(byte % 62)]));
        }
    }
    key
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether `key` could be one of ours at all, so garbage costs no database read.
fn plausible(key: &str) -> bool {
    key.starts_with("sk_")
        && key.len() <= 128
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

async fn insert(identity: &Identity, tx: &mut Tx) -> Result<String, StoreError> {
    let key = generate();
    let id = latchkey_protocol::id::new_id(ID_PREFIX);
    let q = tx
        .query("INSERT INTO identity_api_keys (id, key_hash, prefix, created_at, revoked_at) VALUES ($1, $2, $3, $4, NULL)")
        .bind(&id)
        .bind(hash(&key))
        .bind(&key[..SHOWN_CHARS])
        .bind(latchkey_protocol::time::now_ms());
    tx.execute(q).await?;
    let entry = audit::Entry::new("secret_key.created", None)
        .with(serde_json::json!({ "key_id": id, "prefix": &key[..SHOWN_CHARS] }));
    audit::record(identity, tx, entry).await?;
    Ok(key)
}

/// Makes a new secret key and returns it: the only time it can be seen.
///
/// # Errors
/// Database failures.
pub async fn create_secret_key(identity: &Identity) -> Result<String, StoreError> {
    let mut tx = identity.db().begin().await?;
    let key = insert(identity, &mut tx).await?;
    tx.commit().await?;
    tracing::info!("created a management API secret key");
    Ok(key)
}

/// Makes the first secret key if no unrevoked key exists (first start), returning it to be
/// shown once. Two instances starting together on Postgres may each make one; both work.
///
/// # Errors
/// Database failures.
pub async fn ensure_initial_secret_key(identity: &Identity) -> Result<Option<String>, StoreError> {
    let mut tx = identity.db().begin().await?;
    let q = tx.query("SELECT id FROM identity_api_keys WHERE revoked_at IS NULL LIMIT 1");
    if tx.fetch_optional(q).await?.is_some() {
        tx.commit().await?;
        return Ok(None);
    }
    let key = insert(identity, &mut tx).await?;
    tx.commit().await?;
    tracing::info!("created the first management API secret key");
    Ok(Some(key))
}

/// Every key ever made, oldest first.
///
/// # Errors
/// Database failures.
pub async fn list_secret_keys(db: &Db) -> Result<Vec<SecretKeyInfo>, StoreError> {
    let mut tx = db.begin_read().await?;
    let q = tx.query(
        "SELECT id, prefix, created_at, revoked_at FROM identity_api_keys ORDER BY created_at, id",
    );
    let rows = tx.fetch_all(q).await?;
    tx.commit().await?;
    rows.iter()
        .map(|row| {
            Ok(SecretKeyInfo {
                id: row.try_get("id")?,
                prefix: row.try_get("prefix")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revokes the key with id `id`; returns whether an unrevoked key was found. Instances that
/// verified it within [`CACHE_TTL`] accept it until their cache entry expires.
///
/// # Errors
/// Database failures.
pub async fn revoke_secret_key(identity: &Identity, id: &str) -> Result<bool, StoreError> {
    let mut tx = identity.db().begin().await?;
    let q = tx
        .query("UPDATE identity_api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(latchkey_protocol::time::now_ms());
    let revoked = tx.execute(q).await? > 0;
    if revoked {
        let entry =
            audit::Entry::new("secret_key.revoked", None).with(serde_json::json!({ "key_id": id }));
        audit::record(identity, &mut tx, entry).await?;
    }
    tx.commit().await?;
    if revoked {
        tracing::info!(key.id = %id, "revoked a management API secret key");
    }
    Ok(revoked)
}

/// Verified keys of this instance, by hash: their id and when they were checked.
#[derive(Default)]
pub(crate) struct KeyCache {
    verified: Mutex<HashMap<String, (String, Instant)>>,
}

impl KeyCache {
    /// The id of the unrevoked key `key`, or `None` if there is no such key.
    ///
    /// # Errors
    /// Database failures.
    pub async fn verify(&self, db: &Db, key: &str) -> Result<Option<String>, StoreError> {
        if !plausible(key) {
            return Ok(None);
        }
        let digest = hash(key);
        if let Some(id) = self.cached(&digest) {
            return Ok(Some(id));
        }
        let mut tx = db.begin_read().await?;
        let q = tx
            .query("SELECT id FROM identity_api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(&digest);
        let row = tx.fetch_optional(q).await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= 1024 {
            verified.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        verified.insert(digest, (id.clone(), Instant::now()));
        Ok(Some(id))
    }

    fn cached(&self, digest: &str) -> Option<String> {
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        verified
            .get(digest)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(id, _)| id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sk_live_and_43_base62_characters() {
        let key = generate();
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), KEY_PREFIX.len() + RANDOM_CHARS);
        assert!(
            key[KEY_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert!(plausible(&key));
        assert_ne!(key, generate());
        assert_eq!(hash(&key).len(), 64);
        assert!(!plausible("sk_live_with spaces"));
        assert!(!plausible("pk_live_abc"));
    }
}
