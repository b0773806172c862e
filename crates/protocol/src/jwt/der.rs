//! Reading an RSA public key out of an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the form of
//! Clerk's dashboard "PEM Public Key" (`CLERK_JWT_KEY`).
//!
//! A strict DER walker for exactly one shape: `SubjectPublicKeyInfo { AlgorithmIdentifier {
//! rsaEncryption, NULL }, BIT STRING { RSAPublicKey { n, e } } }`. Anything else (another
//! algorithm, PKCS#1 `RSA PUBLIC KEY` armour, indefinite or non-minimal lengths, trailing bytes)
//! is refused rather than guessed at.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use super::KeyError;

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// DER of OID 1.2.840.113549.1.1.1 (rsaEncryption), contents only.
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// PEM bodies are standard base64; pasted keys sometimes lose their final `=`.
const PEM_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The modulus and public exponent, big-endian, without sign bytes.
pub(super) struct RsaComponents {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// Decodes the armour and base64 of an SPKI PEM, then reads the key.
pub(super) fn parse_spki_pem(pem: &str) -> Result<RsaComponents, KeyError> {
    let pem = pem.trim();
    if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        return Err(KeyError::Pem(
            "PKCS#1 \"RSA PUBLIC KEY\" is not supported; use the SPKI \"PUBLIC KEY\" form",
        ));
    }
    let body = pem
        .strip_prefix(PEM_BEGIN)
        .and_then(|rest| rest.strip_suffix(PEM_END))
        .ok_or(KeyError::Pem(
            "expected one -----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY----- block",
        ))?;
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.contains('-') {
        return Err(KeyError::Pem("more than one PEM block"));
    }
    let der = PEM_BASE64
        .decode(compact)
        .map_err(|_| KeyError::Pem("the PEM body is not base64"))?;
    parse_spki_der(&der)
}

/// Reads `SubjectPublicKeyInfo` DER holding an RSA key.
pub(super) fn parse_spki_der(der: &[u8]) -> Result<RsaComponents, KeyError> {
    let mut outer = Reader::new(der);
    let spki = outer.expect(TAG_SEQUENCE)?;
    outer.finish()?;

    let mut spki = Reader::new(spki);
    let mut algorithm = Reader::new(spki.expect(TAG_SEQUENCE)?);
    if algorithm.expect(TAG_OID)? != RSA_ENCRYPTION_OID {
        return Err(KeyError::NotRsa);
    }
    // RFC 3279 §2.3.1: the parameters of rsaEncryption are NULL.
    if !algorithm.expect(TAG_NULL)?.is_empty() {
        return Err(KeyError::Der("rsaEncryption parameters are not NULL"));
    }
    algorithm.finish()?;
    let bits = spki.expect(TAG_BIT_STRING)?;
    spki.finish()?;

    let Some((&0, rsa_public_key)) = bits.split_first() else {
        return Err(KeyError::Der("the key BIT STRING has unused bits"));
    };
    parse_rsa_public_key(rsa_public_key)
}

/// Reads PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn parse_rsa_public_key(der: &[u8]) -> Result<RsaComponents, KeyError> {
    let mut outer = Reader::new(der);
    let mut key = Reader::new(outer.expect(TAG_SEQUENCE)?);
    outer.finish()?;
    let n = positive_integer(key.expect(TAG_INTEGER)?)?;
    let e = positive_integer(key.expect(TAG_INTEGER)?)?;
    key.finish()?;
    Ok(RsaComponents {
        n: n.to_vec(),
        e: e.to_vec(),
    })
}

/// The magnitude of a DER INTEGER that must be positive, without its sign byte.
fn positive_integer(contents: &[u8]) -> Result<&[u8], KeyError> {
    match contents {
        [] => Err(KeyError::Der("empty INTEGER")),
        [first, ..] if first & 0x80 != 0 => Err(KeyError::Der("negative INTEGER")),
        [0, next, ..] if next & 0x80 == 0 => Err(KeyError::Der("non-minimal INTEGER")),
        [0, rest @ ..] if !rest.is_empty() => Ok(rest),
        [0] => Err(KeyError::Der("zero INTEGER")),
        _ => Ok(contents),
    }
}

/// A cursor over DER bytes that only understands definite, minimal, short-tag TLVs.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The contents of the next element, which must have tag `tag`.
    fn expect(&mut self, tag: u8) -> Result<&'a [u8], KeyError> {
        let [found, first_len, after @ ..] = self.rest else {
            return Err(KeyError::Der("truncated"));
        };
        if *found != tag {
            return Err(KeyError::Der("unexpected element"));
        }
        let (len, after) = match *first_len {
            short @ 0..=0x7f => (usize::from(short), after),
            0x81 => match after {
                [len @ 0x80..=0xff, after @ ..] => (usize::from(*len), after),
                _ => return Err(KeyError::Der("non-minimal length")),
            },
            0x82 => match after {
                [high @ 1..=0xff, low, after @ ..] => {
                    (usize::from(*high) << 8 | usize::from(*low), after)
                }
                _ => return Err(KeyError::Der("non-minimal length")),
            },
            // 0x80 is BER's indefinite length; longer lengths exceed any RSA key we accept.
            _ => return Err(KeyError::Der("unsupported length")),
        };
        if after.len() < len {
            return Err(KeyError::Der("truncated"));
        }
        let (contents, rest) = after.split_at(len);
        self.rest = rest;
        Ok(contents)
    }

    /// Fails if anything is left.
    fn finish(&self) -> Result<(), KeyError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(KeyError::Der("trailing bytes"))
        }
    }
}
