//! Verifying a received webhook.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq as _;

use super::{SigningSecret, TOLERANCE_SECS};

/// The three signature headers of a delivery, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The message id (`svix-id`), the same on every retry of the message.
    pub id: String,
    /// The attempt's timestamp, Unix seconds.
    pub timestamp: i64,
}

/// Why a delivery was refused. Each variant has a stable [`VerifyError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing required header svix-{0} (or webhook-{0})")]
    MissingHeader(&'static str),
    #[error("header svix-{0} is not printable ASCII")]
    InvalidHeader(&'static str),
    #[error("the timestamp header is not a non-negative integer number of seconds")]
    InvalidTimestamp,
    #[error("the message timestamp is more than 300 seconds old")]
    TimestampTooOld,
    #[error("the message timestamp is more than 300 seconds in the future")]
    TimestampTooNew,
    #[error("no v1 signature matches the body with any configured secret")]
    InvalidSignature,
}

impl VerifyError {
    /// A stable machine-readable code for the error envelope.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_signature_header",
            Self::InvalidHeader(_) => "invalid_signature_header",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampTooNew => "timestamp_too_new",
            Self::InvalidSignature => "invalid_signature",
        }
    }
}

impl<'a> WebhookHeaders<'a> {
    /// Reads the headers through `get` (a case-insensitive lookup returning raw bytes): each
    /// `svix-*` header, else its `webhook-*` twin. Values are trimmed, as Clerk's SDK does.
    ///
    /// # Errors
    /// [`VerifyError::MissingHeader`] or [`VerifyError::InvalidHeader`].
    pub fn from_lookup(get: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Self, VerifyError> {
        let read = |name: &'static str| -> Result<&'a str, VerifyError> {
            let raw = get(&format!("svix-{name}"))
                .or_else(|| get(&format!("webhook-{name}")))
                .ok_or(VerifyError::MissingHeader(name))?;
            if !raw.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
                return Err(VerifyError::InvalidHeader(name));
            }
            let text = std::str::from_utf8(raw)
                .map_err(|_| VerifyError::InvalidHeader(name))?
                .trim();
            if text.is_empty() {
                return Err(VerifyError::MissingHeader(name));
            }
            Ok(text)
        };
        Ok(Self {
            id: read("id")?,
            timestamp: read("timestamp")?,
            signature: read("signature")?,
        })
    }
}

/// Verifies deliveries against one or more secrets (several during a rotation).
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<SigningSecret>,
}

impl Verifier {
    /// A verifier accepting a signature from any of `secrets`.
    #[must_use]
    pub fn new(secrets: Vec<SigningSecret>) -> Self {
        Self { secrets }
    }

    /// Checks `headers` and `body` as of `now_secs` (Unix seconds).
    ///
    /// # Errors
    /// The first check that fails, in the order the official libraries apply them.
    pub fn verify(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<Verified, VerifyError> {
        let timestamp = parse_timestamp(headers.timestamp)?;
        if timestamp < 0 {
            return Err(VerifyError::InvalidTimestamp);
        }
        if timestamp.saturating_add(TOLERANCE_SECS) < now_secs {
            return Err(VerifyError::TimestampTooOld);
        }
        if timestamp > now_secs.saturating_add(TOLERANCE_SECS) {
            return Err(VerifyError::TimestampTooNew);
        }
        self.check_signature(headers, timestamp, body)
    }

    /// Checks the signature only, whatever the timestamp's age (for re-verifying stored
    /// messages and for fixed test vectors).
    ///
    /// # Errors
    /// [`VerifyError::InvalidTimestamp`] or [`VerifyError::InvalidSignature`].
    pub fn verify_ignoring_timestamp(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        let timestamp = parse_timestamp(headers.timestamp)?;
        self.check_signature(headers, timestamp, body)
    }

    fn check_signature(
        &self,
        headers: &WebhookHeaders<'_>,
        timestamp: i64,
        body: &[u8],
    ) -> Result<Verified, VerifyError> {
        let expected: Vec<[u8; 32]> = self
            .secrets
            .iter()
            .map(|secret| secret.tag(headers.id, timestamp, body))
            .collect();
        let mut matched = subtle::Choice::from(0);
        for entry in headers.signature.split(' ') {
            let Some(("v1", encoded)) = entry.split_once(',') else {
                continue;
            };
            let Ok(candidate) = STANDARD.decode(encoded) else {
                continue;
            };
            if candidate.len() != 32 {
                continue;
            }
            for tag in &expected {
                matched |= tag.ct_eq(candidate.as_slice());
            }
        }
        if bool::from(matched) {
            Ok(Verified {
                id: headers.id.to_owned(),
                timestamp,
            })
        } else {
            Err(VerifyError::InvalidSignature)
        }
    }
}

/// A strict decimal integer, as Rust's `str::parse::<i64>` reads it.
fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    text.parse::<i64>()
        .map_err(|_| VerifyError::InvalidTimestamp)
}
