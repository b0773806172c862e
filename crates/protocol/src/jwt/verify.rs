//! Verifying a session token, in the order of docs/PROTOCOLS.md §4.5: shape, header, key,
//! signature, and only then the claims.

use base64::DecodeSliceError;
use base64::Engine as _;

use super::claims::{MissingClaim, RawClaims, RawHeader};
use super::{
    ALGORITHM, CATEGORY_IGNORE, CATEGORY_SESSION, KeySource, MACHINE_SUBJECT_PREFIX, MAX_RSA_BITS,
    SessionClaims, TYPE_JWT, URL_SAFE_STRICT,
};

/// Clerk's default clock skew (`DEFAULT_CLOCK_SKEW_IN_MS`).
pub const DEFAULT_CLOCK_SKEW_MS: i64 = 5_000;

/// What the caller requires of a token besides a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The current time, Unix milliseconds.
    pub now_ms: i64,
    /// Tolerance for `exp`, `nbf` and `iat`, in milliseconds; `0` means none.
    pub clock_skew_ms: i64,
    /// When set, the token's `azp` must be present and equal one entry exactly (full origin:
    /// scheme, host and port). An empty list accepts no token.
    pub authorized_parties: Option<Vec<String>>,
    /// When set, the token's `iss` must equal it. Clerk's SDK does not check `iss` by default.
    pub issuer: Option<String>,
}

impl VerifyOptions {
    /// Options at `now_ms` with Clerk's defaults: 5 s skew, no `azp` or `iss` requirement.
    #[must_use]
    pub fn new(now_ms: i64) -> Self {
        Self {
            now_ms,
            clock_skew_ms: DEFAULT_CLOCK_SKEW_MS,
            authorized_parties: None,
            issuer: None,
        }
    }

    /// Requires `azp` to be one of `parties`.
    #[must_use]
    pub fn with_authorized_parties<S: Into<String>>(
        mut self,
        parties: impl IntoIterator<Item = S>,
    ) -> Self {
        self.authorized_parties = Some(parties.into_iter().map(Into::into).collect());
        self
    }

    /// Requires `iss` to equal `issuer`.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Sets the clock skew tolerance.
    #[must_use]
    pub fn with_clock_skew_ms(mut self, clock_skew_ms: i64) -> Self {
        self.clock_skew_ms = clock_skew_ms;
        self
    }
}

/// Why a token was refused. Each variant has a stable [`TokenError::code`]. Messages never
/// contain the token; header values they quote are escaped and shortened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token category {} is not a session token", excerpt(.0))]
    Category(String),
    #[error("token type {} is not JWT (OAuth access tokens are refused)", excerpt(.0))]
    Type(String),
    #[error("token algorithm {} is not RS256", excerpt(.0))]
    Algorithm(String),
    #[error("no verification key for kid {}", .kid.as_deref().map_or_else(|| "(none)".to_owned(), excerpt))]
    UnknownKey { kid: Option<String> },
    #[error("the token signature is invalid")]
    Signature,
    #[error("the token has no sub claim, or an empty one")]
    MissingSubject,
    #[error("the token's subject is a machine (mch_), not a user")]
    MachineSubject,
    #[error("the token has no exp claim")]
    MissingExpiry,
    #[error("the token expired at {exp} (Unix seconds)")]
    Expired { exp: i64 },
    #[error("the token is not valid before {nbf} (Unix seconds)")]
    NotYetValid { nbf: i64 },
    #[error("the token claims to be issued in the future, at {iat} (Unix seconds)")]
    IssuedInFuture { iat: i64 },
    #[error("the token has no azp claim but authorized parties are configured")]
    MissingAuthorizedParty,
    #[error("the token's azp {} is not an authorized party", excerpt(.azp))]
    WrongAuthorizedParty { azp: String },
    #[error("the token's issuer is not the configured one")]
    Issuer,
}

impl TokenError {
    /// A stable machine-readable code for the error envelope and logs.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "token_malformed",
            Self::Category(_) => "token_category",
            Self::Type(_) => "token_type",
            Self::Algorithm(_) => "token_algorithm",
            Self::UnknownKey { .. } => "token_unknown_key",
            Self::Signature => "token_signature",
            Self::MissingSubject | Self::MachineSubject => "token_subject",
            Self::MissingExpiry => "token_expiry_missing",
            Self::Expired { .. } => "token_expired",
            Self::NotYetValid { .. } => "token_not_yet_valid",
            Self::IssuedInFuture { .. } => "token_issued_in_future",
            Self::MissingAuthorizedParty => "token_azp_missing",
            Self::WrongAuthorizedParty { .. } => "token_azp_mismatch",
            Self::Issuer => "token_issuer",
        }
    }
}

impl From<MissingClaim> for TokenError {
    fn from(missing: MissingClaim) -> Self {
        match missing {
            MissingClaim::Sub => Self::MissingSubject,
            MissingClaim::Exp => Self::MissingExpiry,
        }
    }
}

/// Verifies an RS256 session token and returns its claims.
///
/// Refuses, in this order: anything but three base64url segments with a JSON header; a `cat`
/// other than the session or ignore category (JWT-template and M2M tokens); a `typ` other than
/// `JWT` or absent (OAuth `at+jwt`); any `alg` but `RS256`; a kid with no key (key-set mode
/// only); a bad signature; then the claims (a JSON object with a user `sub`, `azp`, `iss`,
/// `exp`, `nbf`, `iat`; see [`VerifyOptions`]).
///
/// # Errors
/// The first failed check, as a [`TokenError`].
pub fn verify_session_token(
    token: &str,
    keys: &KeySource,
    options: &VerifyOptions,
) -> Result<SessionClaims, TokenError> {
    let parts = Parts::split(token)?;
    let header_json = decode(parts.header, "the header is not base64url")?;
    let header: RawHeader<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| TokenError::Malformed("the header is not a JSON object with alg"))?;
    let payload = decode(parts.payload, "the payload is not base64url")?;
    let mut signature = [0; MAX_RSA_BITS / 8];
    let signature_len = URL_SAFE_STRICT
        .decode_slice(parts.signature, &mut signature)
        .map_err(|error| match error {
            DecodeSliceError::OutputSliceTooSmall => {
                TokenError::Malformed("the signature is longer than any accepted key's")
            }
            DecodeSliceError::DecodeError(_) => {
                TokenError::Malformed("the signature is not base64url")
            }
        })?;

    check_header(&header)?;
    let kid = header.kid.as_deref();
    let key = keys.select(kid).ok_or_else(|| TokenError::UnknownKey {
        kid: kid.map(str::to_owned),
    })?;
    if !key.verify_raw(parts.signed.as_bytes(), &signature[..signature_len]) {
        return Err(TokenError::Signature);
    }

    let raw: RawClaims = serde_json::from_slice(&payload)
        .map_err(|_| TokenError::Malformed("the payload is not a JSON object of claims"))?;
    check_claims(&raw, options)?;
    Ok(SessionClaims::try_from(raw)?)
}

/// The claims of a token **without verifying anything**: not the signature, not a single
/// claim. For one use only: Clerk's cookie flow compares the session token's `iat` with the
/// `__client_uat` cookie *before* verifying (docs/PROTOCOLS.md §4.8 step 4) to choose between a
/// handshake and verification. Never authorise anything with the result.
///
/// # Errors
/// [`TokenError::Malformed`], [`TokenError::MissingSubject`] or [`TokenError::MissingExpiry`].
pub fn decode_unverified_claims(token: &str) -> Result<SessionClaims, TokenError> {
    let parts = Parts::split(token)?;
    let raw: RawClaims =
        serde_json::from_slice(&decode(parts.payload, "the payload is not base64url")?)
            .map_err(|_| TokenError::Malformed("the payload is not a JSON object of claims"))?;
    Ok(SessionClaims::try_from(raw)?)
}

/// The three segments of a compact JWS, still encoded.
pub(super) struct Parts<'a> {
    pub(super) header: &'a str,
    pub(super) payload: &'a str,
    pub(super) signature: &'a str,
    /// `<header>.<payload>`, the bytes the signature covers.
    pub(super) signed: &'a str,
}

impl<'a> Parts<'a> {
    pub(super) fn split(token: &'a str) -> Result<Self, TokenError> {
        let not_three = TokenError::Malformed("the token is not three dot-separated parts");
        let (signed, signature) = token.rsplit_once('.').ok_or(not_three.clone())?;
        let (header, payload) = signed.split_once('.').ok_or(not_three.clone())?;
        if payload.contains('.') {
            return Err(not_three);
        }
        Ok(Self {
            header,
            payload,
            signature,
            signed,
        })
    }
}

/// Strict base64url (see [`URL_SAFE_STRICT`]); `refusal` names the segment.
pub(super) fn decode(segment: &str, refusal: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_STRICT
        .decode(segment)
        .map_err(|_| TokenError::Malformed(refusal))
}

fn check_header(header: &RawHeader<'_>) -> Result<(), TokenError> {
    if let Some(cat) = header.cat.as_deref()
        && cat != CATEGORY_SESSION
        && cat != CATEGORY_IGNORE
    {
        return Err(TokenError::Category(cat.to_owned()));
    }
    if let Some(typ) = header.typ.as_deref()
        && typ != TYPE_JWT
    {
        return Err(TokenError::Type(typ.to_owned()));
    }
    if header.alg != ALGORITHM {
        return Err(TokenError::Algorithm(header.alg.clone().into_owned()));
    }
    Ok(())
}

/// Claim checks in Clerk's order: subject, authorized party, issuer, then times.
fn check_claims(raw: &RawClaims, options: &VerifyOptions) -> Result<(), TokenError> {
    let sub = raw
        .sub
        .as_deref()
        .filter(|sub| !sub.is_empty())
        .ok_or(TokenError::MissingSubject)?;
    if sub.starts_with(MACHINE_SUBJECT_PREFIX) {
        return Err(TokenError::MachineSubject);
    }

    if let Some(parties) = &options.authorized_parties {
        let azp = raw
            .azp
            .as_deref()
            .filter(|azp| !azp.is_empty())
            .ok_or(TokenError::MissingAuthorizedParty)?;
        if !parties.iter().any(|party| party == azp) {
            return Err(TokenError::WrongAuthorizedParty {
                azp: azp.to_owned(),
            });
        }
    }

    if let Some(issuer) = &options.issuer
        && raw.iss.as_deref() != Some(issuer.as_str())
    {
        return Err(TokenError::Issuer);
    }

    let now_ms = options.now_ms;
    let skew = options.clock_skew_ms;
    let exp = raw.exp.ok_or(TokenError::MissingExpiry)?;
    if exp.saturating_mul(1000) <= now_ms.saturating_sub(skew) {
        return Err(TokenError::Expired { exp });
    }
    if let Some(nbf) = raw.nbf
        && nbf.saturating_mul(1000) > now_ms.saturating_add(skew)
    {
        return Err(TokenError::NotYetValid { nbf });
    }
    if let Some(iat) = raw.iat
        && iat.saturating_mul(1000) > now_ms.saturating_add(skew)
    {
        return Err(TokenError::IssuedInFuture { iat });
    }
    Ok(())
}

/// A header or claim value fit for an error message: escaped, quoted, at most 64 characters.
fn excerpt(value: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut shown: String = value.chars().take(MAX_CHARS).collect();
    if value.chars().nth(MAX_CHARS).is_some() {
        shown.push('…');
    }
    format!("\"{}\"", shown.escape_debug())
}
