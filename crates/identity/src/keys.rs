//! Session-token signing keys: RSA-2048 (e = 65537, what Clerk's SDKs accept), generated at
//! first start, kept in the database with the private key sealed under the master secret, and
//! published at `/.well-known/jwks.json`.
//!
//! Rotation adds a key that is published at once but signs only from [`SIGN_AFTER_PUBLISHED`]
//! later, when the current one retires: every instance reloads the key set every
//! [`RELOAD_EVERY`], so by then all of them publish (and verify with) the new key before any
//! token signed with it exists. A retired key stays published for
//! [`PUBLISHED_AFTER_RETIREMENT_MS`] so tokens it signed (60 s lifetime) keep verifying.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use latchkey_protocol::jwt::{Jwk, Jwks, KeySet, KeySource, SigningKey, VerifyingKey};
use latchkey_store::{Db, Row as _, StoreError};
use rsa::pkcs8::EncodePrivateKey as _;

use crate::secrets::MasterKey;

/// How long a retired key stays in the JWKS.
pub const PUBLISHED_AFTER_RETIREMENT_MS: i64 = 10 * 60 * 1000;
/// How often instances reload keys from the database.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// How long a rotated-in key is published before it signs: two reload periods.
pub const SIGN_AFTER_PUBLISHED: Duration = Duration::from_secs(60);
const SEAL_PURPOSE: &str = "signing-key";
pub const KID_PREFIX: &str = "ins";

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the signing keys in the database were sealed under another master secret; \
         start latchkey with the LATCHKEY_SECRET (or data directory master.key) used before"
    )]
    WrongMasterKey,
    #[error("a stored signing key is unusable: {0}")]
    Corrupt(String),
    #[error("the HTTP client for sign-in providers cannot be set up: {0}")]
    HttpClient(String),
}

struct KeyState {
    current: Arc<SigningKey>,
    jwks: Jwks,
    verifying: Arc<KeySource>,
    loaded_at: Instant,
}

/// The signing keys, cached in memory and reloaded periodically.
#[derive(Clone)]
pub struct SigningKeys {
    db: Db,
    master: MasterKey,
    state: Arc<RwLock<Arc<KeyState>>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current", &self.current().kid())
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Loads the keys, generating the first one if there is none.
    ///
    /// # Errors
    /// Database failures, or keys sealed under another master secret.
    pub async fn load(db: &Db, master: &MasterKey) -> Result<Self, KeysError> {
        let state = match load_state(db, master).await? {
            Some(state) => state,
            None => {
                insert_new_key(db, master, None).await?;
                load_state(db, master)
                    .await?
                    .ok_or_else(|| KeysError::Corrupt("no key after creating one".to_owned()))?
            }
        };
        Ok(Self {
            db: db.clone(),
            master: master.clone(),
            state: Arc::new(RwLock::new(Arc::new(state))),
        })
    }

    fn state(&self) -> Arc<KeyState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The key new tokens are signed with.
    #[must_use]
    pub fn current(&self) -> Arc<SigningKey> {
        self.state().current.clone()
    }

    /// Every published public key.
    #[must_use]
    pub fn jwks(&self) -> Jwks {
        self.state().jwks.clone()
    }

    /// The published keys, for verifying tokens this identity issued.
    #[must_use]
    pub fn verifying(&self) -> Arc<KeySource> {
        self.state().verifying.clone()
    }

    /// Reloads from the database if the cache is older than [`RELOAD_EVERY`].
    ///
    /// # Errors
    /// Database failures; the old keys stay in use.
    pub async fn reload_if_stale(&self) -> Result<(), KeysError> {
        if self.state().loaded_at.elapsed() < RELOAD_EVERY {
            return Ok(());
        }
        self.reload().await
    }

    /// Reloads from the database now.
    ///
    /// # Errors
    /// Database failures; the old keys stay in use.
    pub async fn reload(&self) -> Result<(), KeysError> {
        if let Some(state) = load_state(&self.db, &self.master).await? {
            *self
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(state);
        }
        Ok(())
    }
}

/// Adds a key that signs from `sign_after` from now, when the keys signing until then retire
/// ([`SIGN_AFTER_PUBLISHED`] normally; zero to switch at once, e.g. for a leaked key, at the
/// cost of other instances refusing the new key's tokens until they reload). Returns the new
/// key's id.
///
/// # Errors
/// Database failures; [`KeysError::WrongMasterKey`] (nothing written) when `master` cannot
/// open the keys already stored: a key sealed under another secret would be one no running
/// instance can use, and retiring theirs would leave them none.
pub async fn rotate(
    db: &Db,
    master: &MasterKey,
    sign_after: Duration,
) -> Result<String, KeysError> {
    load_state(db, master).await?;
    insert_new_key(db, master, Some(sign_after)).await
}

/// Generates an RSA-2048 key off the async runtime (it takes a noticeable fraction of a second)
/// and stores it; with `retire_others_after`, it signs from that long after now, and the keys
/// signing until then retire at that moment (written in the same transaction).
async fn insert_new_key(
    db: &Db,
    master: &MasterKey,
    retire_others_after: Option<Duration>,
) -> Result<String, KeysError> {
    let kid = latchkey_protocol::id::new_id(KID_PREFIX);
    let kid_for_key = kid.clone();
    let (der, jwk) = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Jwk), KeysError> {
        let private = rsa::PrivateKey::new_with_exp(
            &mut getrandom::SysRng,
            2048,
            rsa::BoxedUint::from(65_537_u64),
        )
        .map_err(|e| KeysError::Corrupt(format!("RSA key generation failed: {e}")))?;
        let der = private
            .to_pkcs8_der()
            .map_err(|e| KeysError::Corrupt(format!("PKCS#8 encoding failed: {e}")))?
            .as_bytes()
            .to_vec();
        let signing = SigningKey::from_pkcs8_der(&der, kid_for_key)
            .map_err(|e| KeysError::Corrupt(e.to_string()))?;
        Ok((der, signing.public_jwk()))
    })
    .await
    .map_err(|e| KeysError::Corrupt(format!("key generation task failed: {e}")))??;
    let now = latchkey_protocol::time::now_ms();
    let public = serde_json::to_string(&jwk).map_err(|e| KeysError::Corrupt(e.to_string()))?;
    let sealed = master.seal(SEAL_PURPOSE, &der);
    let signs_from = now
        + retire_others_after.map_or(0, |after| {
            i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2)
        });
    let mut tx = db.begin().await?;
    if retire_others_after.is_some() {
        let q = tx
            .query(
                "UPDATE identity_signing_keys SET retired_at = $1 \
                 WHERE retired_at IS NULL OR retired_at > $1",
            )
            .bind(signs_from);
        tx.execute(q).await?;
    }
    let q = tx
        .query(
            "INSERT INTO identity_signing_keys (kid, public_jwk, private_key_sealed, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, NULL)",
        )
        .bind(&kid)
        .bind(public)
        .bind(sealed)
        // `created_at` is when it starts signing (possibly ahead); it is published from now.
        .bind(signs_from);
    tx.execute(q).await?;
    if retire_others_after.is_some() {
        let entry = crate::audit::Entry::new("signing_key.rotated", None)
            .with(serde_json::json!({ "kid": kid, "signs_from": signs_from }));
        crate::audit::record_under(master, now, &mut tx, entry).await?;
    }
    tx.commit().await?;
    tracing::info!(key.id = %kid, "created a session-token signing key");
    Ok(kid)
}

/// Reads the published keys and opens the current one; `None` if there is no usable key.
async fn load_state(db: &Db, master: &MasterKey) -> Result<Option<KeyState>, KeysError> {
    let now = latchkey_protocol::time::now_ms();
    let mut tx = db.begin_read().await?;
    let q = tx
        .query(
            "SELECT kid, public_jwk, private_key_sealed, created_at, retired_at FROM identity_signing_keys \
             WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, kid DESC",
        )
        .bind(now - PUBLISHED_AFTER_RETIREMENT_MS);
    let rows = tx.fetch_all(q).await?;
    tx.commit().await?;

    let mut current = None;
    let mut keys = Vec::new();
    for row in &rows {
        let kid: String = row.try_get("kid").map_err(StoreError::from)?;
        let public: String = row.try_get("public_jwk").map_err(StoreError::from)?;
        let jwk: Jwk =
            serde_json::from_str(&public).map_err(|e| KeysError::Corrupt(format!("{kid}: {e}")))?;
        let retired: Option<i64> = row.try_get("retired_at").map_err(StoreError::from)?;
        let signs_from: i64 = row.try_get("created_at").map_err(StoreError::from)?;
        // The newest key whose signing time has come and which has not retired yet.
        if current.is_none() && signs_from <= now && retired.is_none_or(|at| at > now) {
            let sealed: String = row
                .try_get("private_key_sealed")
                .map_err(StoreError::from)?;
            let der = master
                .open(SEAL_PURPOSE, &sealed)
                .map_err(|_| KeysError::WrongMasterKey)?;
            let key = SigningKey::from_pkcs8_der(&der, kid.clone())
                .map_err(|e| KeysError::Corrupt(format!("{kid}: {e}")))?;
            current = Some(Arc::new(key));
        }
        keys.push(jwk);
    }
    let Some(current) = current else {
        return Ok(None);
    };
    let verifying: Vec<VerifyingKey> = keys
        .iter()
        .map(|jwk| VerifyingKey::from_jwk(jwk).map_err(|e| KeysError::Corrupt(e.to_string())))
        .collect::<Result<_, _>>()?;
    Ok(Some(KeyState {
        current,
        jwks: Jwks { keys },
        verifying: Arc::new(KeySource::Set(
            KeySet::from_keys(verifying).map_err(|e| KeysError::Corrupt(e.to_string()))?,
        )),
        loaded_at: Instant::now(),
    }))
}
