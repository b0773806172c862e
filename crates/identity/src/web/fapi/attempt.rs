//! The browser's Clerk client between requests: its id and its in-progress sign-in or
//! sign-up, held in one `HttpOnly` cookie, JSON under an HMAC keyed from the master secret.
//!
//! Nothing here is trusted beyond "this browser was told so earlier": every rule (codes,
//! attempts, lockout, throttles, single use) is enforced by the flows against the database,
//! so a cookie replayed or rolled back gains nothing, and one from another instance (or
//! tampered with) fails its HMAC and counts as no client at all. The pending code's
//! verification is tied to the browser by the same `BrowserToken` the hosted pages keep in
//! their verification cookie; here it rides in this cookie.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit as _, Mac as _};
use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::state::Identity;
use crate::verifications::BrowserToken;

pub(crate) const COOKIE: &str = "__latchkey_fapi";

/// How long a client's cookie lasts without use.
const LIFETIME_SECS: i64 = 30 * 24 * 60 * 60;

/// An in-progress sign-in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SignInState {
    pub id: String,
    pub identifier: String,
    /// Clerk's status: `needs_first_factor`, `needs_new_password`, `complete`.
    pub status: String,
    /// The code strategy prepared (`email_code`, `reset_password_email_code`), if any.
    #[serde(default)]
    pub prepared: Option<String>,
    /// The pending verification of the prepared code (a `BrowserToken`).
    #[serde(default)]
    pub verification: Option<String>,
    /// A reset code given, kept until the new password comes with it.
    #[serde(default)]
    pub reset_code: Option<String>,
    #[serde(default)]
    pub created_session_id: Option<String>,
    pub created_at: i64,
}

/// An in-progress sign-up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SignUpState {
    pub id: String,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// The account was created and its code mailed (the flow ran).
    #[serde(default)]
    pub submitted: bool,
    /// `prepare_verification` has been called since (the first call's code is the flow's).
    #[serde(default)]
    pub prepared: bool,
    #[serde(default)]
    pub verification: Option<String>,
    /// Clerk's status: `missing_requirements`, `complete`.
    pub status: String,
    #[serde(default)]
    pub created_session_id: Option<String>,
    #[serde(default)]
    pub created_user_id: Option<String>,
    pub created_at: i64,
}

/// The client as the browser holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClientState {
    pub id: String,
    pub created_at: i64,
    #[serde(default)]
    pub sign_in: Option<SignInState>,
    #[serde(default)]
    pub sign_up: Option<SignUpState>,
}

impl ClientState {
    pub fn new(now: i64) -> Self {
        Self {
            id: latchkey_protocol::id::new_id("client"),
            created_at: now,
            sign_in: None,
            sign_up: None,
        }
    }

    /// The browser's client, or a new one when it has none (or a forged one).
    pub fn read(identity: &Identity, headers: &HeaderMap) -> Self {
        latchkey_web::cookies::get(headers, COOKIE)
            .and_then(|value| open(identity, value))
            .unwrap_or_else(|| Self::new(identity.now_ms()))
    }

    /// The `Set-Cookie` value holding this state.
    pub fn cookie(&self, identity: &Identity) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = URL_SAFE_NO_PAD.encode(mac(identity, body.as_bytes()));
        latchkey_web::cookies::build(
            COOKIE,
            &format!("{body}.{tag}"),
            identity.config().secure_cookies(),
            true,
            Some(LIFETIME_SECS),
        )
    }
}

/// The token of a pending verification kept in the state.
pub(crate) fn browser_token(value: Option<&str>) -> Option<BrowserToken> {
    value.and_then(BrowserToken::from_cookie)
}

fn mac(identity: &Identity, body: &[u8]) -> Vec<u8> {
    let key = identity.master().derive("fapi client cookie");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn open(identity: &Identity, value: &str) -> Option<ClientState> {
    let (body, tag) = value.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let key = identity.master().derive("fapi client cookie");
    let mut check = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    check.update(body.as_bytes());
    // Constant time.
    check.verify_slice(&tag).ok()?;
    let json = URL_SAFE_NO_PAD.decode(body).ok()?;
    serde_json::from_slice(&json).ok()
}
