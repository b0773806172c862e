//! OpenID Connect ID tokens: what a sign-in provider returns beside its access token, verified
//! the way OpenID Connect Core 1.0 §3.1.3.7 asks (docs/PROTOCOLS.md §11): signature through
//! the provider's JWKS, then `iss`, `aud` (and `azp` when there are several audiences), `exp`,
//! `iat` and the `nonce` the request carried.
//!
//! Only RS256 and ES256 are accepted, whatever the header or the discovery document says: no
//! `none`, and no HMAC (an HS256 token keyed with the client secret proves nothing about the
//! provider). Like session tokens, the signature is checked before any claim. No I/O: fetching
//! the key set, caching it and refetching once on [`IdTokenError::UnknownKey`] are the
//! caller's.

use base64::Engine as _;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde::Deserialize;

use super::verify::{Parts, decode};
use super::{Jwk, TokenError, URL_SAFE_STRICT, VerifyingKey};

/// The algorithms accepted for ID tokens.
pub const ID_TOKEN_ALGORITHMS: [&str; 2] = ["RS256", "ES256"];

/// Why an ID token was refused. Messages never contain the token or a claim's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("malformed ID token: {0}")]
    Malformed(&'static str),
    #[error("the ID token's algorithm is not RS256 or ES256")]
    Algorithm,
    #[error("no key of the provider matches the ID token's kid")]
    UnknownKey,
    #[error("the ID token's signature is invalid")]
    Signature,
    #[error("the ID token has no subject")]
    MissingSubject,
    #[error("the ID token was issued by someone else")]
    Issuer,
    #[error("the ID token was not issued to this client")]
    Audience,
    #[error("the ID token has no expiry or has expired")]
    Expired,
    #[error("the ID token claims to be issued in the future")]
    IssuedInFuture,
    #[error("the ID token does not carry this sign-in's nonce")]
    Nonce,
}

impl IdTokenError {
    /// A stable code for logs.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "id_token_malformed",
            Self::Algorithm => "id_token_algorithm",
            Self::UnknownKey => "id_token_unknown_key",
            Self::Signature => "id_token_signature",
            Self::MissingSubject => "id_token_subject",
            Self::Issuer => "id_token_issuer",
            Self::Audience => "id_token_audience",
            Self::Expired => "id_token_expired",
            Self::IssuedInFuture => "id_token_issued_in_future",
            Self::Nonce => "id_token_nonce",
        }
    }
}

fn malformed(error: TokenError) -> IdTokenError {
    match error {
        TokenError::Malformed(what) => IdTokenError::Malformed(what),
        _ => IdTokenError::Malformed("the token is not a compact JWS"),
    }
}

/// One key of a provider's JWKS that can verify an accepted algorithm.
#[derive(Debug, Clone)]
struct ProviderKey {
    kid: Option<String>,
    material: Material,
}

#[derive(Debug, Clone)]
enum Material {
    Rsa(VerifyingKey),
    /// An uncompressed P-256 point: `04 || x || y`.
    P256(Vec<u8>),
}

impl Material {
    fn algorithm(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RS256",
            Self::P256(_) => "ES256",
        }
    }
}

/// A JWK as providers publish them: RSA (`n`, `e`) or EC (`crv`, `x`, `y`) members.
#[derive(Deserialize)]
struct AnyJwk {
    kty: String,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: String,
    #[serde(default)]
    e: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: String,
    #[serde(default)]
    y: String,
}

#[derive(Deserialize)]
struct AnyJwks {
    keys: Vec<AnyJwk>,
}

/// A provider's signing keys: the RS256 and ES256 entries of its JWKS; others (encryption
/// keys, other curves and algorithms) are skipped, and so are entries that do not parse, so
/// one odd key cannot lock every sign-in out.
#[derive(Debug, Clone, Default)]
pub struct ProviderKeys {
    keys: Vec<ProviderKey>,
}

impl ProviderKeys {
    /// The usable keys of a JWKS document.
    ///
    /// # Errors
    /// The text is not a JWKS, or it has no usable key.
    pub fn from_json(text: &[u8]) -> Result<Self, &'static str> {
        let set: AnyJwks = serde_json::from_slice(text).map_err(|_| "not a JWK set")?;
        let keys: Vec<ProviderKey> = set
            .keys
            .into_iter()
            .filter(|jwk| jwk.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|jwk| {
                let material = match (jwk.kty.as_str(), jwk.alg.as_deref()) {
                    ("RSA", None | Some("RS256")) => Material::Rsa(
                        VerifyingKey::from_jwk(&Jwk {
                            use_: None,
                            kty: jwk.kty,
                            kid: None,
                            alg: None,
                            n: jwk.n,
                            e: jwk.e,
                        })
                        .ok()?,
                    ),
                    ("EC", None | Some("ES256")) if jwk.crv.as_deref() == Some("P-256") => {
                        let x = URL_SAFE_STRICT.decode(&jwk.x).ok()?;
                        let y = URL_SAFE_STRICT.decode(&jwk.y).ok()?;
                        if x.len() != 32 || y.len() != 32 {
                            return None;
                        }
                        let mut point = Vec::with_capacity(65);
                        point.push(4);
                        point.extend_from_slice(&x);
                        point.extend_from_slice(&y);
                        Material::P256(point)
                    }
                    _ => return None,
                };
                Some(ProviderKey {
                    kid: jwk.kid,
                    material,
                })
            })
            .collect();
        if keys.is_empty() {
            return Err("no RS256 or ES256 signing key");
        }
        Ok(Self { keys })
    }

    /// The key for a token of `alg` naming `kid`; without a kid, the only key of that
    /// algorithm, if there is exactly one.
    fn select(&self, alg: &str, kid: Option<&str>) -> Option<&ProviderKey> {
        let mut fitting = self.keys.iter().filter(|k| k.material.algorithm() == alg);
        match kid {
            Some(kid) => fitting.find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let first = fitting.next()?;
                fitting.next().is_none().then_some(first)
            }
        }
    }
}

/// What the relying party expects of an ID token.
#[derive(Debug, Clone)]
pub struct IdTokenExpectations<'a> {
    /// The issuer of the discovery document. Microsoft's multi-tenant endpoints announce
    /// `…/{tenantid}/v2.0`: the token's `tid` claim is put in its place.
    pub issuer: &'a str,
    /// Our client id: must be the audience (and the `azp` when there are several).
    pub client_id: &'a str,
    /// The nonce sent with the authorization request.
    pub nonce: &'a str,
    pub now_ms: i64,
    /// Tolerance for `exp` and `iat`, in milliseconds.
    pub clock_skew_ms: i64,
}

/// The claims latchkey reads from an ID token (OpenID Connect Core 1.0 §2 and §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "loose_bool")]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// Microsoft's tenant id.
    #[serde(default)]
    pub tid: Option<String>,
    /// Microsoft's "email domain owner verified" optional claim.
    #[serde(default, deserialize_with = "loose_bool")]
    pub xms_edov: Option<bool>,
}

/// The claims verification needs, beside the ones handed back.
#[derive(Deserialize)]
struct Checked {
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// `true`, `false`, or the strings `"true"`/`"false"` some providers send.
fn loose_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<Loose>::deserialize(d)? {
        Some(Loose::Bool(b)) => Some(b),
        Some(Loose::Text(t)) => match t.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        None => None,
    })
}

#[derive(Deserialize)]
struct IdHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Verifies an ID token: shape, algorithm (RS256/ES256), key, signature; then issuer,
/// audience, `azp`, expiry, `iat` and nonce.
///
/// # Errors
/// The first failed check.
pub fn verify_id_token(
    token: &str,
    keys: &ProviderKeys,
    expect: &IdTokenExpectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let parts = Parts::split(token).map_err(malformed)?;
    let header: IdHeader = serde_json::from_slice(
        &decode(parts.header, "the header is not base64url").map_err(malformed)?,
    )
    .map_err(|_| IdTokenError::Malformed("the header is not a JSON object with alg"))?;
    if !ID_TOKEN_ALGORITHMS.contains(&header.alg.as_str()) {
        return Err(IdTokenError::Algorithm);
    }
    let key = keys
        .select(&header.alg, header.kid.as_deref())
        .ok_or(IdTokenError::UnknownKey)?;
    let signature = decode(parts.signature, "the signature is not base64url").map_err(malformed)?;
    let message = parts.signed.as_bytes();
    let valid = match &key.material {
        Material::Rsa(rsa) => rsa.verify_raw(message, &signature),
        Material::P256(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(message, &signature)
            .is_ok(),
    };
    if !valid {
        return Err(IdTokenError::Signature);
    }

    let payload = decode(parts.payload, "the payload is not base64url").map_err(malformed)?;
    let claims: IdTokenClaims = serde_json::from_slice(&payload).map_err(|_| {
        IdTokenError::Malformed("the payload is not a JSON object with iss and sub")
    })?;
    let checked: Checked = serde_json::from_slice(&payload).map_err(|_| {
        IdTokenError::Malformed("the payload's aud, exp, iat or nonce is malformed")
    })?;
    if claims.sub.is_empty() {
        return Err(IdTokenError::MissingSubject);
    }
    let issuer = match (expect.issuer.contains("{tenantid}"), &claims.tid) {
        (true, Some(tid)) => expect.issuer.replace("{tenantid}", tid),
        (true, None) => return Err(IdTokenError::Issuer),
        (false, _) => expect.issuer.to_owned(),
    };
    if claims.iss != issuer {
        return Err(IdTokenError::Issuer);
    }
    let audiences = match checked.aud {
        Some(Audience::One(one)) => vec![one],
        Some(Audience::Many(many)) => many,
        None => Vec::new(),
    };
    if !audiences.iter().any(|a| a == expect.client_id) {
        return Err(IdTokenError::Audience);
    }
    if (audiences.len() > 1 || checked.azp.is_some())
        && checked.azp.as_deref() != Some(expect.client_id)
    {
        return Err(IdTokenError::Audience);
    }
    let exp = checked.exp.ok_or(IdTokenError::Expired)?;
    if exp.saturating_mul(1000) <= expect.now_ms.saturating_sub(expect.clock_skew_ms) {
        return Err(IdTokenError::Expired);
    }
    if let Some(iat) = checked.iat
        && iat.saturating_mul(1000) > expect.now_ms.saturating_add(expect.clock_skew_ms)
    {
        return Err(IdTokenError::IssuedInFuture);
    }
    let nonce_matches = checked.nonce.as_deref().is_some_and(|nonce| {
        subtle::ConstantTimeEq::ct_eq(nonce.as_bytes(), expect.nonce.as_bytes()).into()
    });
    if !nonce_matches {
        return Err(IdTokenError::Nonce);
    }
    Ok(claims)
}
