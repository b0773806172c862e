//! Server-side sessions: the record behind a browser's `__client` cookie.
//!
//! The cookie holds 32 random bytes; the database keeps only their SHA-256, so a copy of the
//! database cannot be replayed as cookies. A session is active until it expires (sliding: each
//! use pushes `expire_at` out by the lifetime) or is ended, revoked or removed; only an active,
//! unexpired session lets a browser in or gets a new session token minted.

pub mod lifecycle;
pub mod token;

pub use lifecycle::SignedIn;

use crate::cookie_token::{CookieToken, Kind};
use latchkey_protocol::clerk;
use latchkey_store::{DbRow, RowExt as _, StoreError, Tx};

pub const SESSION_PREFIX: &str = "sess";
pub const CLIENT_PREFIX: &str = "client";

/// Activity is written at most this often per session, not on every request.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Marks the token of a `__client` cookie.
#[derive(Debug)]
pub enum Client {}

impl Kind for Client {
    const NAME: &'static str = "ClientToken";
}

/// The value of a `__client` cookie. `Debug` shows nothing.
pub type ClientToken = CookieToken<Client>;

/// Why a session stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The user signed out.
    Ended,
    /// The user (or an operator) revoked it, or a password change ended it.
    Revoked,
    /// The user was deleted.
    Removed,
}

impl EndReason {
    #[must_use]
    pub fn status(self) -> &'static str {
        match self {
            Self::Ended => "ended",
            Self::Revoked => "revoked",
            Self::Removed => "removed",
        }
    }
}

/// A session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub status: String,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_active_at: i64,
    pub expire_at: i64,
    pub ended_at: Option<i64>,
    /// When the holder last proved a first factor; `None`: at `created_at`.
    pub first_factor_at: Option<i64>,
    /// When the holder last proved a second factor; `None`: never.
    pub second_factor_at: Option<i64>,
    /// The operator acting as the user (impersonation), if any.
    pub actor_id: Option<String>,
}

impl SessionRecord {
    /// When the holder last proved a first factor.
    #[must_use]
    pub fn first_factor_ms(&self) -> i64 {
        self.first_factor_at.unwrap_or(self.created_at)
    }

    /// When the holder last proved any factor (step-up goes by this).
    #[must_use]
    pub fn last_factor_ms(&self) -> i64 {
        self.first_factor_ms()
            .max(self.second_factor_at.unwrap_or(i64::MIN))
    }
}

impl SessionRecord {
    /// Whether the session still lets its browser in and gets tokens: not ended, not expired.
    #[must_use]
    pub fn is_active(&self, now: i64) -> bool {
        self.status == "active" && self.expire_at > now
    }
}

const COLUMNS: &str = "id, user_id, client_id, status, user_agent, ip_address, created_at, updated_at, \
    last_active_at, expire_at, ended_at, first_factor_at, second_factor_at, actor_id";

fn from_row(row: &DbRow) -> Result<SessionRecord, StoreError> {
    row.decode()
}

/// Starts a session for `user_id`; returns it with the cookie value to hand the browser.
///
/// # Errors
/// Database failures.
pub async fn create(
    tx: &mut Tx,
    user_id: &str,
    user_agent: Option<&str>,
    ip_address: Option<&str>,
    now: i64,
    lifetime_ms: i64,
) -> Result<(SessionRecord, ClientToken), StoreError> {
    let token = ClientToken::generate();
    let id = latchkey_protocol::id::new_id(SESSION_PREFIX);
    let client_id = latchkey_protocol::id::new_id(CLIENT_PREFIX);
    let user_agent = user_agent.map(|ua| ua.chars().take(512).collect::<String>());
    let q = tx
        .query(
            "INSERT INTO identity_sessions (id, user_id, client_id, token_hash, status, user_agent, \
                 ip_address, created_at, updated_at, last_active_at, expire_at, ended_at) \
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $7, $7, $8, NULL)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(&client_id)
        .bind(token.hash())
        .bind(user_agent.as_deref())
        .bind(ip_address)
        .bind(now)
        .bind(now + lifetime_ms);
    tx.execute(q).await?;
    let session = get(tx, &id)
        .await?
        .ok_or_else(|| StoreError::Invariant("a session vanished".to_owned()))?;
    Ok((session, token))
}

/// The session behind a `__client` cookie, if it is active and unexpired.
///
/// # Errors
/// Database failures.
pub async fn find_active(
    tx: &mut Tx,
    token: &ClientToken,
    now: i64,
) -> Result<Option<SessionRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_sessions WHERE token_hash = $1 AND status = 'active' AND expire_at > $2"
        ))
        .bind(token.hash())
        .bind(now);
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// One session by id, whatever its state.
///
/// # Errors
/// Database failures.
pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<SessionRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_sessions WHERE id = $1"
        ))
        .bind(id);
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Whether a session's activity is due to be recorded (at most once a minute).
#[must_use]
pub fn needs_touch(session: &SessionRecord, now: i64) -> bool {
    now - session.last_active_at >= TOUCH_EVERY_MS
}

/// Deletes sessions that ended, or expired, before `before` (ms): they open nothing and only
/// remain listed (`GET /v1/sessions`) until then.
///
/// # Errors
/// Database failures.
pub async fn sweep(tx: &mut Tx, before: i64) -> Result<u64, StoreError> {
    let q = tx
        .query(
            "DELETE FROM identity_sessions WHERE (ended_at IS NOT NULL AND ended_at < $1) \
             OR expire_at < $1",
        )
        .bind(before);
    tx.execute(q).await
}

/// Records activity and slides the expiry (an impersonation's stays where it was set).
///
/// # Errors
/// Database failures.
pub async fn touch(tx: &mut Tx, id: &str, now: i64, lifetime_ms: i64) -> Result<(), StoreError> {
    let q = tx
        .query(
            "UPDATE identity_sessions SET last_active_at = $2, \
                 expire_at = CASE WHEN actor_id IS NULL THEN $3 ELSE expire_at END \
             WHERE id = $1 AND status = 'active' AND last_active_at < $2",
        )
        .bind(id)
        .bind(now)
        .bind(now + lifetime_ms);
    tx.execute(q).await?;
    Ok(())
}

/// Ends one active session; returns it as it now is, or `None` if it was not active.
///
/// # Errors
/// Database failures.
pub async fn end(
    tx: &mut Tx,
    id: &str,
    reason: EndReason,
    now: i64,
) -> Result<Option<SessionRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "UPDATE identity_sessions SET status = $2, ended_at = $3, updated_at = $3 \
             WHERE id = $1 AND status = 'active' RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(reason.status())
        .bind(now);
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Ends every active session of `user_id` except `keep`; returns those ended.
///
/// # Errors
/// Database failures.
pub async fn end_all(
    tx: &mut Tx,
    user_id: &str,
    keep: Option<&str>,
    reason: EndReason,
    now: i64,
) -> Result<Vec<SessionRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "UPDATE identity_sessions SET status = $2, ended_at = $3, updated_at = $3 \
             WHERE user_id = $1 AND status = 'active' AND id <> $4 RETURNING {COLUMNS}"
        ))
        .bind(user_id)
        .bind(reason.status())
        .bind(now)
        .bind(keep.unwrap_or(""));
    tx.fetch_all(q).await?.iter().map(from_row).collect()
}

/// A user's active, unexpired sessions, most recently active first.
///
/// # Errors
/// Database failures.
pub async fn list_active(
    tx: &mut Tx,
    user_id: &str,
    now: i64,
) -> Result<Vec<SessionRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_sessions WHERE user_id = $1 AND status = 'active' AND expire_at > $2 \
             ORDER BY last_active_at DESC, id DESC"
        ))
        .bind(user_id)
        .bind(now);
    tx.fetch_all(q).await?.iter().map(from_row).collect()
}

/// A user's sessions of any state, newest first (for the management API).
///
/// # Errors
/// Database failures.
pub async fn list_all(
    tx: &mut Tx,
    user_id: &str,
    limit: i64,
) -> Result<Vec<SessionRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit);
    tx.fetch_all(q).await?.iter().map(from_row).collect()
}

/// The session as Clerk describes it, with the full user when given.
#[must_use]
pub fn to_clerk(session: &SessionRecord, user: Option<clerk::User>, now: i64) -> clerk::Session {
    let status = if session.status == "active" && !session.is_active(now) {
        "expired".to_owned()
    } else {
        session.status.clone()
    };
    let agent = session.user_agent.as_deref().map(describe_agent);
    clerk::Session {
        id: session.id.clone(),
        object: "session".to_owned(),
        user_id: session.user_id.clone(),
        client_id: Some(session.client_id.clone()),
        status,
        actor: None,
        last_active_organization_id: None,
        last_active_at: Some(session.last_active_at),
        expire_at: Some(session.expire_at),
        abandon_at: Some(session.expire_at),
        created_at: Some(session.created_at),
        updated_at: Some(session.updated_at),
        latest_activity: Some(clerk::SessionActivity {
            object: "session_activity".to_owned(),
            id: Some(format!(
                "sess_activity_{}",
                session.id.trim_start_matches("sess_")
            )),
            device_type: agent.as_ref().map(|a| a.device.to_owned()),
            is_mobile: agent.as_ref().map(|a| a.mobile),
            browser_name: agent.as_ref().map(|a| a.browser.to_owned()),
            browser_version: None,
            ip_address: session.ip_address.clone(),
            city: None,
            country: None,
        }),
        user: user.map(Box::new),
    }
}

/// What a user agent string says, roughly: enough to tell sessions apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    pub browser: &'static str,
    pub os: &'static str,
    pub device: &'static str,
    pub mobile: bool,
}

/// Reads a user agent string.
#[must_use]
pub fn describe_agent(user_agent: &str) -> Agent {
    let has = |needle: &str| user_agent.contains(needle);
    let browser = if has("Edg/") {
        "Edge"
    } else if has("OPR/") {
        "Opera"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chrome/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else if has("curl/") {
        "curl"
    } else {
        "Unknown browser"
    };
    let os = if has("Android") {
        "Android"
    } else if has("iPhone") || has("iPad") {
        "iOS"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("Linux") {
        "Linux"
    } else {
        "Unknown OS"
    };
    let mobile = has("Mobile") || has("Android") || has("iPhone");
    Agent {
        browser,
        os,
        device: if mobile { "mobile" } else { "desktop" },
        mobile,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_recognised() {
        let chrome = describe_agent(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36",
        );
        assert_eq!(
            (chrome.browser, chrome.os, chrome.mobile),
            ("Chrome", "Linux", false)
        );
        let iphone = describe_agent(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(
            (iphone.browser, iphone.os, iphone.mobile),
            ("Safari", "iOS", true)
        );
    }

    #[test]
    fn client_tokens_are_43_url_safe_characters_and_hidden_from_debug() {
        let token = ClientToken::generate();
        assert_eq!(token.expose().len(), 43);
        assert!(ClientToken::from_cookie(token.expose()).is_some());
        assert!(ClientToken::from_cookie("short").is_none());
        assert_eq!(format!("{token:?}"), "ClientToken(redacted)");
        assert_eq!(token.hash().len(), 64);
    }
}
