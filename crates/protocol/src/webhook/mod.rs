//! Svix / Standard Webhooks signatures: what Clerk sends and what latchkey's identity signs.
//!
//! A message is signed as `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where
//! the key is the base64-decoded part of a `whsec_…` secret, the timestamp is Unix seconds of
//! the delivery attempt, and the body is the exact bytes sent. The signature header is a
//! space-separated list; during a secret rotation it carries one `v1` entry per secret.
//!
//! [`Verifier`] reproduces the official libraries' checks (docs/PROTOCOLS.md §1.5): `svix-*`
//! headers first, `webhook-*` as fallback; a strict integer timestamp within 300 s either way;
//! only `v1` entries count and any one matching wins; comparison in constant time.

mod secret;
mod verify;

pub use secret::{SecretError, SigningSecret};
pub use verify::{Verified, Verifier, VerifyError, WebhookHeaders};

/// How far (seconds) a delivery's timestamp may be from now, in either direction.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The `svix-signature` value for a message signed by every secret in `secrets`, in order.
#[must_use]
pub fn sign_all(secrets: &[SigningSecret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut header = String::new();
    for secret in secrets {
        if !header.is_empty() {
            header.push(' ');
        }
        header.push_str(&secret.sign(msg_id, timestamp, body));
    }
    header
}

#[cfg(test)]
mod tests;
