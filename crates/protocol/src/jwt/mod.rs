//! Clerk session tokens: RS256 JWTs that latchkey's identity mints and latchkey's app verifies,
//! whether ours or real Clerk's (docs/PROTOCOLS.md §4.2–§4.9).
//!
//! This module owns the token format, the key formats (Clerk's JWK shape, the dashboard's SPKI
//! PEM, a PKCS#8 signing key) and the verification rules. It does no I/O: fetching a JWKS,
//! caching it and refetching once on [`TokenError::UnknownKey`] belong to the caller, as does
//! reading the clock (pass it in [`VerifyOptions::now_ms`]).
//!
//! Session tokens accept only RS256, whatever the header asks for (OpenID Connect ID tokens
//! from sign-in providers, in `id_token`, also ES256); the signature is checked before any
//! claim, so a forged token learns nothing about which claim it would have failed.

mod claims;
mod der;
mod id_token;
mod key;
mod keyset;
mod signing;
mod verify;

pub use claims::{Header, SessionClaims};
pub use id_token::{
    ID_TOKEN_ALGORITHMS, IdTokenClaims, IdTokenError, IdTokenExpectations, ProviderKeys,
    verify_id_token,
};
pub use key::{Jwk, Jwks, KeyError, MAX_RSA_BITS, MIN_RSA_BITS, VerifyingKey};
pub use keyset::{KeySet, KeySource};
pub use signing::SigningKey;
pub use verify::{
    DEFAULT_CLOCK_SKEW_MS, TokenError, VerifyOptions, decode_unverified_claims,
    verify_session_token,
};

use base64::engine::GeneralPurpose;

/// The only signature algorithm minted or accepted.
pub const ALGORITHM: &str = "RS256";
/// The `typ` of a session token.
pub const TYPE_JWT: &str = "JWT";
/// `cat` of a session token.
pub const CATEGORY_SESSION: &str = "cl_B7d4PD111AAA";
/// `cat` of a JWT-template token (refused as a session token).
pub const CATEGORY_TEMPLATE: &str = "cl_B7d4PD222AAA";
/// `cat` of a machine-to-machine token (refused as a session token).
pub const CATEGORY_M2M: &str = "cl_B7d4PD333AAA";
/// `cat` marker that asks for the category check to be skipped.
pub const CATEGORY_IGNORE: &str = "cl_I7d4PD111III";
/// `sub` prefix of machine identities (M2M tokens), refused as session subjects.
pub const MACHINE_SUBJECT_PREFIX: &str = "mch_";

/// Base64url as RFC 7515 §2 defines it for JWS segments and RFC 7518 §6.3.1 for JWK members:
/// no padding, and the unused bits of the last character zero. A token has one spelling, so
/// a padded or otherwise re-spelled copy of a valid token is refused rather than verified.
const URL_SAFE_STRICT: GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[cfg(test)]
mod tests;
