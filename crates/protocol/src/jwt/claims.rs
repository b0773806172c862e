//! The JSON inside a session token: its JOSE header and its claims (docs/PROTOCOLS.md §4.2, §4.3).

use std::borrow::Cow;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The JOSE header. Unknown parameters (Clerk adds e.g. `oiat`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Clerk's token category; see [`CATEGORY_SESSION`](super::CATEGORY_SESSION).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cat: Option<String>,
}

/// The header as verification reads it: borrowed from the decoded bytes, so the common case
/// allocates nothing.
#[derive(Deserialize)]
pub(super) struct RawHeader<'a> {
    #[serde(borrow)]
    pub alg: Cow<'a, str>,
    #[serde(default, borrow)]
    pub kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub typ: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub cat: Option<Cow<'a, str>>,
}

/// The claims of a Clerk session token (v2). Times are Unix seconds.
///
/// Claims latchkey does not interpret (`fva`, `pla`, `fea`, `o`, `act`, custom claims from the
/// session-token template) are kept in `extra`, in their JSON form, and written back out when
/// minting. `extra` must not repeat the names of the typed fields. Deserialising refuses a
/// payload without `sub` or `exp`, or with a claim name given twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawClaims")]
pub struct SessionClaims {
    /// The user id, `user_…`.
    pub sub: String,
    /// The session id, `sess_…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The Frontend API URL of the instance that minted the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The origin the token was minted for (checked against authorized parties).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token format version; Clerk's current session tokens carry `2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Session status, present e.g. as `pending` while an organization must be chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The payload as it arrives, before `sub` and `exp` are known to be there; verification reads
/// this so that a missing `sub` or `exp` gets its own error rather than "malformed".
///
/// Deserialised by hand rather than with `#[serde(flatten)]`, which buffers every value and
/// costs as much as a tenth of the RSA verification. A repeated claim name is refused: JSON
/// parsers disagree on which copy wins, and a signer and verifier must not.
#[derive(Default)]
pub(super) struct RawClaims {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub iss: Option<String>,
    pub azp: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub v: Option<i64>,
    pub jti: Option<String>,
    pub sts: Option<String>,
    pub extra: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Sub,
    Sid,
    Iss,
    Azp,
    Exp,
    Iat,
    Nbf,
    V,
    Jti,
    Sts,
    Other(String),
}

impl<'de> Deserialize<'de> for RawClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RawClaimsVisitor)
    }
}

struct RawClaimsVisitor;

impl<'de> Visitor<'de> for RawClaimsVisitor {
    type Value = RawClaims;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
        let mut raw = RawClaims::default();
        let mut seen = 0_u16;
        let seen = &mut seen;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Sub => raw.sub = read_once(&mut map, seen, 0, "sub")?,
                Field::Sid => raw.sid = read_once(&mut map, seen, 1, "sid")?,
                Field::Iss => raw.iss = read_once(&mut map, seen, 2, "iss")?,
                Field::Azp => raw.azp = read_once(&mut map, seen, 3, "azp")?,
                Field::Exp => raw.exp = read_once(&mut map, seen, 4, "exp")?,
                Field::Iat => raw.iat = read_once(&mut map, seen, 5, "iat")?,
                Field::Nbf => raw.nbf = read_once(&mut map, seen, 6, "nbf")?,
                Field::V => raw.v = read_once(&mut map, seen, 7, "v")?,
                Field::Jti => raw.jti = read_once(&mut map, seen, 8, "jti")?,
                Field::Sts => raw.sts = read_once(&mut map, seen, 9, "sts")?,
                Field::Other(name) => {
                    let value = map.next_value::<Value>()?;
                    if raw.extra.insert(name, value).is_some() {
                        return Err(de::Error::custom("duplicate claim"));
                    }
                }
            }
        }
        Ok(raw)
    }
}

/// The value of registered claim number `index` (`null` reads as absent), refusing a second
/// occurrence of the name.
fn read_once<'de, A, T>(
    map: &mut A,
    seen: &mut u16,
    index: u16,
    name: &'static str,
) -> Result<Option<T>, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    let bit = 1 << index;
    if *seen & bit != 0 {
        return Err(de::Error::duplicate_field(name));
    }
    *seen |= bit;
    map.next_value()
}

/// Why a payload is not a [`SessionClaims`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum MissingClaim {
    #[error("missing sub claim")]
    Sub,
    #[error("missing exp claim")]
    Exp,
}

impl TryFrom<RawClaims> for SessionClaims {
    type Error = MissingClaim;

    fn try_from(raw: RawClaims) -> Result<Self, MissingClaim> {
        Ok(Self {
            sub: raw.sub.ok_or(MissingClaim::Sub)?,
            sid: raw.sid,
            iss: raw.iss,
            azp: raw.azp,
            exp: raw.exp.ok_or(MissingClaim::Exp)?,
            iat: raw.iat,
            nbf: raw.nbf,
            v: raw.v,
            jti: raw.jti,
            sts: raw.sts,
            extra: raw.extra,
        })
    }
}

impl SessionClaims {
    /// Claims for `sub` expiring at `exp`, everything else absent.
    #[must_use]
    pub fn new(sub: impl Into<String>, exp: i64) -> Self {
        Self {
            sub: sub.into(),
            sid: None,
            iss: None,
            azp: None,
            exp,
            iat: None,
            nbf: None,
            v: None,
            jti: None,
            sts: None,
            extra: Map::new(),
        }
    }
}
