//! A WebAuthn ceremony waiting for the browser's answer: written when the options are sent,
//! taken (deleted) when the answer comes, whether it is right or not, so each challenge is
//! used once. It is bound to the browser that asked by an `HttpOnly` cookie (`latchkey_webauthn`)
//! whose SHA-256 is kept, and lasts five minutes (the `timeout` the options tell the browser).

use latchkey_store::{Row as _, StoreError, Tx};

use crate::cookie_token::{CookieToken, Kind};

/// How long a ceremony waits for its answer.
pub const LIFETIME_MS: i64 = 5 * 60 * 1000;
/// The cookie that ties a ceremony to its browser.
pub const COOKIE: &str = "latchkey_webauthn";

/// Marks the token of a ceremony's cookie.
#[derive(Debug)]
pub enum Browser {}

impl Kind for Browser {
    const NAME: &'static str = "WebAuthnBrowserToken";
}

/// The value of a `latchkey_webauthn` cookie. `Debug` shows nothing.
pub type BrowserToken = CookieToken<Browser>;

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Registering a passkey to the signed-in account.
    Register,
    /// Signing in with a discoverable passkey.
    SignIn,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
        }
    }
}

/// A ceremony taken from the table.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The account registering (`None` for a sign-in).
    pub user_id: Option<String>,
    /// webauthn_rp's encoded server state.
    pub server_state: Vec<u8>,
    pub expire_at: i64,
}

/// The key a challenge is stored under: its 128 bits in hex.
#[must_use]
pub fn key(challenge: u128) -> String {
    format!("{challenge:032x}")
}

/// Writes a ceremony for `challenge`.
///
/// # Errors
/// Database failures.
pub async fn create(
    tx: &mut Tx,
    challenge: u128,
    browser: &BrowserToken,
    purpose: Purpose,
    user_id: Option<&str>,
    server_state: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_webauthn_ceremonies (challenge, browser_hash, purpose, user_id, \
                 server_state, expire_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key(challenge))
        .bind(browser.hash())
        .bind(purpose.as_str())
        .bind(user_id)
        .bind(super::b64(server_state))
        .bind(now + LIFETIME_MS)
        .bind(now);
    tx.execute(q).await?;
    Ok(())
}

/// Takes (deletes) the ceremony for `challenge` started by this browser for `purpose`, expired
/// or not; `None` if there is none (wrong challenge, another browser's, already used).
///
/// # Errors
/// Database failures.
pub async fn take(
    tx: &mut Tx,
    challenge: u128,
    browser: &BrowserToken,
    purpose: Purpose,
) -> Result<Option<Taken>, StoreError> {
    let q = tx
        .query(
            "DELETE FROM identity_webauthn_ceremonies \
             WHERE challenge = $1 AND browser_hash = $2 AND purpose = $3 \
             RETURNING user_id, server_state, expire_at",
        )
        .bind(key(challenge))
        .bind(browser.hash())
        .bind(purpose.as_str());
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    let text: String = row.try_get("server_state")?;
    let server_state =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, text).map_err(
            |_| StoreError::Invariant("a ceremony's server state is not base64url".to_owned()),
        )?;
    Ok(Some(Taken {
        user_id: row.try_get("user_id")?,
        server_state,
        expire_at: row.try_get("expire_at")?,
    }))
}

/// Deletes ceremonies that expired before `before` (the hourly sweep).
///
/// # Errors
/// Database failures.
pub async fn sweep(tx: &mut Tx, before: i64) -> Result<u64, StoreError> {
    let q = tx
        .query("DELETE FROM identity_webauthn_ceremonies WHERE expire_at < $1")
        .bind(before);
    tx.execute(q).await
}
