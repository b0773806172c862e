//! The pending round trips to a provider. Starting one writes a row keyed by the SHA-256 of
//! its `state` parameter, bound to the browser by the SHA-256 of an `HttpOnly` cookie
//! (`latchkey_oauth`), with the PKCE verifier (RFC 7636) and the OpenID Connect nonce. The
//! callback spends it once, within [`LIFETIME_MS`], from the same browser only; a row of
//! another browser is left as it is, so a forged callback cannot spoil its owner's sign-in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_store::{DbRow, Row as _, StoreError, Tx};
use sha2::{Digest as _, Sha256};

use crate::cookie_token::{CookieToken, Kind};

/// How long a round trip to a provider may take.
pub const LIFETIME_MS: i64 = 10 * 60 * 1000;
/// The cookie that binds a round trip to its browser.
pub const COOKIE: &str = "latchkey_oauth";

/// Marks the `state` parameter.
#[derive(Debug)]
pub enum State {}
impl Kind for State {
    const NAME: &'static str = "OAuthState";
}
/// Marks the browser's `latchkey_oauth` cookie.
#[derive(Debug)]
pub enum Browser {}
impl Kind for Browser {
    const NAME: &'static str = "OAuthBrowser";
}
/// Marks a PKCE code verifier or a nonce: 43 URL-safe characters, as RFC 7636 §4.1 allows.
#[derive(Debug)]
pub enum Secret {}
impl Kind for Secret {
    const NAME: &'static str = "OAuthSecret";
}

pub type StateToken = CookieToken<State>;
pub type BrowserToken = CookieToken<Browser>;

/// A round trip about to start: what goes to the provider and into the browser's cookie.
#[derive(Debug)]
pub struct Started {
    pub state: StateToken,
    pub browser: BrowserToken,
    /// `BASE64URL(SHA256(code_verifier))`, the `code_challenge` (RFC 7636 §4.2, S256).
    pub code_challenge: String,
    pub nonce: String,
}

/// A round trip as stored.
#[derive(Debug, Clone)]
pub struct Pending {
    pub provider: String,
    pub code_verifier: String,
    pub nonce: String,
    pub redirect_url: String,
    pub link_user_id: Option<String>,
}

/// Why a callback's `state` was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No such round trip (forged, or swept).
    Unknown,
    /// The round trip was started by another browser (or this one lost its cookie).
    OtherBrowser,
    /// Already spent: a replayed callback.
    Used,
    Expired,
}

/// Writes a round trip to `provider`.
///
/// # Errors
/// Database failures.
pub async fn create(
    tx: &mut Tx,
    provider: &str,
    redirect_url: &str,
    link_user_id: Option<&str>,
    now: i64,
) -> Result<Started, StoreError> {
    let state = StateToken::generate();
    let browser = BrowserToken::generate();
    let verifier = CookieToken::<Secret>::generate();
    let nonce = CookieToken::<Secret>::generate();
    let q = tx
        .query(
            "INSERT INTO identity_oauth_states (state_hash, browser_hash, provider, code_verifier, \
                 nonce, redirect_url, link_user_id, expire_at, consumed_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
        )
        .bind(state.hash())
        .bind(browser.hash())
        .bind(provider)
        .bind(verifier.expose())
        .bind(nonce.expose())
        .bind(redirect_url)
        .bind(link_user_id)
        .bind(now + LIFETIME_MS)
        .bind(now);
    tx.execute(q).await?;
    Ok(Started {
        code_challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes())),
        nonce: nonce.expose().to_owned(),
        state,
        browser,
    })
}

fn from_row(row: &DbRow) -> Result<Pending, StoreError> {
    Ok(Pending {
        provider: row.try_get("provider")?,
        code_verifier: row.try_get("code_verifier")?,
        nonce: row.try_get("nonce")?,
        redirect_url: row.try_get("redirect_url")?,
        link_user_id: row.try_get("link_user_id")?,
    })
}

/// Spends the round trip `state` names, if `browser` started it, it is unspent and in time.
///
/// # Errors
/// Database failures.
pub async fn take(
    tx: &mut Tx,
    state: &StateToken,
    browser: Option<&BrowserToken>,
    now: i64,
) -> Result<Result<Pending, Refused>, StoreError> {
    let q = tx
        .query(
            "SELECT browser_hash, expire_at, consumed_at FROM identity_oauth_states \
             WHERE state_hash = $1",
        )
        .bind(state.hash());
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(Err(Refused::Unknown));
    };
    let browser_hash: String = row.try_get("browser_hash")?;
    let same_browser = browser.is_some_and(|b| {
        subtle::ConstantTimeEq::ct_eq(b.hash().as_bytes(), browser_hash.as_bytes()).into()
    });
    if row.try_get::<Option<i64>, _>("consumed_at")?.is_some() {
        return Ok(Err(Refused::Used));
    }
    if row.try_get::<i64, _>("expire_at")? <= now {
        return Ok(Err(Refused::Expired));
    }
    if !same_browser {
        return Ok(Err(Refused::OtherBrowser));
    }
    let q = tx
        .query(
            "UPDATE identity_oauth_states SET consumed_at = $2 \
             WHERE state_hash = $1 AND consumed_at IS NULL \
             RETURNING provider, code_verifier, nonce, redirect_url, link_user_id",
        )
        .bind(state.hash())
        .bind(now);
    match tx.fetch_optional(q).await? {
        Some(row) => Ok(Ok(from_row(&row)?)),
        None => Ok(Err(Refused::Used)),
    }
}

/// Deletes round trips that expired before `before` (the hourly sweep).
///
/// # Errors
/// Database failures.
pub async fn sweep(tx: &mut Tx, before: i64) -> Result<u64, StoreError> {
    let q = tx
        .query("DELETE FROM identity_oauth_states WHERE expire_at < $1")
        .bind(before);
    tx.execute(q).await
}
