//! Passkeys: WebAuthn credentials registered to an account, and the rows that keep them.
//!
//! The cryptography (attestation and assertion checks, CBOR, COSE keys, signature counters) is
//! the `webauthn_rp` crate's, wrapped in [`rp`]; a ceremony waiting for the browser's answer is
//! in [`ceremony`]. Here: the account's user handle, the credentials as stored, and the changes
//! people make to them (name, rename, remove). Each function runs inside the caller's
//! transaction.

pub mod ceremony;
pub mod rp;

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_store::{DbRow, Row as _, StoreError, Tx};

/// Clerk keeps passkeys among a user's identifications, whose ids start `idn_`.
pub const PREFIX: &str = "idn";
/// Passkeys one account may register.
pub const MAX_PER_USER: i64 = 10;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A passkey as the account page and Clerk's User JSON show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: String,
    pub name: String,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What checking an assertion needs: the credential's keys and counter, and whose it is.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub passkey_id: String,
    pub user_id: String,
    /// The account's user handle (64 bytes).
    pub user_handle: Vec<u8>,
    pub static_state: Vec<u8>,
    pub dynamic_state: Vec<u8>,
}

/// A name people typed, trimmed; `None` if empty or too long.
#[must_use]
pub fn clean_name(typed: &str) -> Option<String> {
    let name = typed.trim();
    (!name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.chars().any(char::is_control))
    .then(|| name.to_owned())
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(row: &DbRow, column: &str) -> Result<Vec<u8>, StoreError> {
    let text: String = row.try_get(column)?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| StoreError::Invariant(format!("{column} is not base64url")))
}

fn record(row: &DbRow) -> Result<PasskeyRecord, StoreError> {
    Ok(PasskeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        last_used_at: row.try_get("last_used_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The account's user handle, made (64 random bytes) if it has none yet.
///
/// # Errors
/// Database failures.
pub async fn user_handle(tx: &mut Tx, user_id: &str, now: i64) -> Result<Vec<u8>, StoreError> {
    let mut fresh = [0u8; 64];
    getrandom::fill(&mut fresh).expect("the operating system's random number generator failed");
    let q = tx
        .query(
            "INSERT INTO identity_webauthn_users (user_id, user_handle, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(b64(&fresh))
        .bind(now);
    tx.execute(q).await?;
    let q = tx
        .query("SELECT user_handle FROM identity_webauthn_users WHERE user_id = $1")
        .bind(user_id);
    unb64(&tx.fetch_one(q).await?, "user_handle")
}

/// The raw ids of the account's passkeys (so the browser does not register one twice).
///
/// # Errors
/// Database failures.
pub async fn credential_ids(tx: &mut Tx, user_id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let q = tx
        .query("SELECT credential_id FROM identity_passkeys WHERE user_id = $1")
        .bind(user_id);
    tx.fetch_all(q)
        .await?
        .iter()
        .map(|row| unb64(row, "credential_id"))
        .collect()
}

/// A new passkey for `user_id`; `false` (nothing written) if the credential is already
/// registered, to this account or another.
///
/// # Errors
/// Database failures.
pub async fn insert(
    tx: &mut Tx,
    user_id: &str,
    credential_id: &[u8],
    static_state: &[u8],
    dynamic_state: &[u8],
    name: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let id = latchkey_protocol::id::new_id(PREFIX);
    let q = tx
        .query(
            "INSERT INTO identity_passkeys (id, user_id, credential_id, static_state, dynamic_state, \
                 name, last_used_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(user_id)
        .bind(b64(credential_id))
        .bind(b64(static_state))
        .bind(b64(dynamic_state))
        .bind(name)
        .bind(now);
    Ok((tx.execute(q).await? == 1).then_some(id))
}

/// The passkey with this raw credential id, with its account's user handle.
///
/// # Errors
/// Database failures.
pub async fn by_credential_id(
    tx: &mut Tx,
    credential_id: &[u8],
) -> Result<Option<StoredCredential>, StoreError> {
    let q = tx
        .query(
            "SELECT p.id, p.user_id, p.static_state, p.dynamic_state, w.user_handle \
             FROM identity_passkeys p JOIN identity_webauthn_users w ON w.user_id = p.user_id \
             WHERE p.credential_id = $1",
        )
        .bind(b64(credential_id));
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    Ok(Some(StoredCredential {
        passkey_id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        user_handle: unb64(&row, "user_handle")?,
        static_state: unb64(&row, "static_state")?,
        dynamic_state: unb64(&row, "dynamic_state")?,
    }))
}

/// Records a sign-in with the passkey: its new counter and flags, if the state it was checked
/// against is still the stored one (so two sign-ins racing with one assertion cannot both
/// pass). `false` if another request changed it first.
///
/// # Errors
/// Database failures.
pub async fn record_use(
    tx: &mut Tx,
    passkey_id: &str,
    checked: &[u8],
    dynamic_state: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "UPDATE identity_passkeys SET dynamic_state = $3, last_used_at = $4, updated_at = $4 \
             WHERE id = $1 AND dynamic_state = $2",
        )
        .bind(passkey_id)
        .bind(b64(checked))
        .bind(b64(dynamic_state))
        .bind(now);
    Ok(tx.execute(q).await? == 1)
}

/// The account's passkeys, oldest first.
///
/// # Errors
/// Database failures.
pub async fn list(tx: &mut Tx, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
    Ok(of_users(tx, &[user_id])
        .await?
        .remove(user_id)
        .unwrap_or_default())
}

/// How many passkeys the account has.
///
/// # Errors
/// Database failures.
pub async fn count(tx: &mut Tx, user_id: &str) -> Result<i64, StoreError> {
    let q = tx
        .query("SELECT count(*) AS n FROM identity_passkeys WHERE user_id = $1")
        .bind(user_id);
    Ok(tx.fetch_one(q).await?.try_get("n")?)
}

/// Passkeys of several accounts, by user id.
///
/// # Errors
/// Database failures.
pub async fn of_users(
    tx: &mut Tx,
    user_ids: &[&str],
) -> Result<HashMap<String, Vec<PasskeyRecord>>, StoreError> {
    let mut by_user: HashMap<String, Vec<PasskeyRecord>> = HashMap::new();
    for chunk in user_ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let mut q = tx.query_owned(format!(
            "SELECT id, user_id, name, last_used_at, created_at, updated_at FROM identity_passkeys \
             WHERE user_id IN ({}) ORDER BY created_at, id",
            placeholders.join(", ")
        ));
        for id in chunk {
            q = q.bind(*id);
        }
        for row in tx.fetch_all(q).await? {
            let user_id: String = row.try_get("user_id")?;
            by_user.entry(user_id).or_default().push(record(&row)?);
        }
    }
    Ok(by_user)
}

/// Renames one of the account's passkeys; `false` if it has none with this id.
///
/// # Errors
/// Database failures.
pub async fn rename(
    tx: &mut Tx,
    user_id: &str,
    passkey_id: &str,
    name: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query("UPDATE identity_passkeys SET name = $3, updated_at = $4 WHERE id = $1 AND user_id = $2")
        .bind(passkey_id)
        .bind(user_id)
        .bind(name)
        .bind(now);
    Ok(tx.execute(q).await? == 1)
}

/// Removes one of the account's passkeys; `false` if it has none with this id.
///
/// # Errors
/// Database failures.
pub async fn remove(tx: &mut Tx, user_id: &str, passkey_id: &str) -> Result<bool, StoreError> {
    let q = tx
        .query("DELETE FROM identity_passkeys WHERE id = $1 AND user_id = $2")
        .bind(passkey_id)
        .bind(user_id);
    Ok(tx.execute(q).await? == 1)
}

#[cfg(test)]
mod tests {
    use super::clean_name;
    use super::rp::RelyingParty;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("  Laptop ").as_deref(), Some("Laptop"));
        assert_eq!(clean_name("   "), None);
        assert_eq!(clean_name("a\u{0}b"), None);
        assert!(clean_name(&"é".repeat(64)).is_some());
        assert_eq!(clean_name(&"é".repeat(65)), None);
    }

    #[test]
    fn the_relying_party_is_the_public_urls_domain_never_an_address() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert!(RelyingParty::new(&url("https://auth.example.com")).is_some());
        assert!(RelyingParty::new(&url("http://localhost:3000")).is_some());
        assert!(RelyingParty::new(&url("http://127.0.0.1:3000")).is_none());
        assert!(RelyingParty::new(&url("http://[::1]:3000")).is_none());
    }

    #[test]
    fn options_ask_for_a_discoverable_verified_passkey_for_five_minutes() {
        let rp = RelyingParty::new(&url::Url::parse("https://auth.example.com").unwrap()).unwrap();
        let started = rp.start_sign_in().unwrap();
        assert_eq!(started.options["rpId"], "auth.example.com");
        assert_eq!(started.options["userVerification"], "required");
        assert_eq!(started.options["timeout"], 300_000);
        let handle = [7u8; 64];
        let created = rp
            .start_registration(&handle, "ada@example.com", "Ada", Vec::new())
            .unwrap();
        assert_eq!(
            created.options["authenticatorSelection"]["residentKey"],
            "required"
        );
        assert_ne!(created.challenge, started.challenge);
        assert!(!created.server_state.is_empty());
    }
}
