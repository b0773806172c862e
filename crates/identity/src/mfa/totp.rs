//! Time-based one-time passwords (RFC 6238, <https://www.rfc-editor.org/rfc/rfc6238>) as every
//! authenticator app computes them: HMAC-SHA1, 6 digits, 30-second steps from the Unix epoch;
//! HOTP's dynamic truncation is RFC 4226 §5.3 (<https://www.rfc-editor.org/rfc/rfc4226#section-5.3>).
//! Also the secret's base32 text (RFC 4648 §6, no padding), the `otpauth://` URI apps scan
//! (<https://github.com/google/google-authenticator/wiki/Key-Uri-Format>) and its QR code as SVG.

use ring::hmac;
use subtle::ConstantTimeEq as _;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps either side of now whose codes are accepted (clock drift).
pub const DRIFT_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, RFC 4226 §4's recommendation).
pub const SECRET_LEN: usize = 20;

/// An authenticator app's shared secret. `Debug` shows nothing.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(redacted)")
    }
}

impl TotpSecret {
    /// A new random secret.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        Self(bytes)
    }

    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// A secret from its base32 text (RFC 4648 §6, as apps and Clerk's export show it):
    /// case, spaces and `=` padding are ignored. `None` for other characters or fewer than
    /// 10 bytes (80 bits, RFC 4226 §4's minimum would be 16; 10 is what older apps issued).
    #[must_use]
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut bytes = Vec::with_capacity(text.len() * 5 / 8);
        let mut buffer: u32 = 0;
        let mut bits = 0u32;
        for c in text.bytes().filter(|c| !matches!(c, b' ' | b'=' | b'-')) {
            let value = match c.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => return None,
            };
            buffer = (buffer << 5) | u32::from(value);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
                buffer &= (1 << bits) - 1;
            }
        }
        (bytes.len() >= 10).then_some(Self(bytes))
    }

    /// The raw bytes (to seal). Never log them.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as people type it into an app: base32, upper case, no padding.
    #[must_use]
    pub fn base32(&self) -> String {
        base32(&self.0)
    }

    /// The HOTP value for `counter` (RFC 4226 §5.3), `DIGITS` digits.
    #[must_use]
    pub fn hotp(&self, counter: u64) -> u32 {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let tag = hmac::sign(&key, &counter.to_be_bytes());
        let digest = tag.as_ref();
        let offset = usize::from(digest[digest.len() - 1] & 0x0f);
        let binary = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        binary % 10u32.pow(DIGITS)
    }

    /// The code for `step` as typed: zero-padded to `DIGITS` digits.
    #[must_use]
    pub fn code_at_step(&self, step: i64) -> String {
        format!(
            "{:0width$}",
            self.hotp(u64::try_from(step).unwrap_or(0)),
            width = DIGITS as usize
        )
    }

    /// The step whose code `code` is, within `DRIFT_STEPS` of `now_secs`'s step, if any. Every
    /// candidate is computed and compared in constant time, so timing tells nothing.
    #[must_use]
    pub fn matching_step(&self, code: &str, now_secs: i64) -> Option<i64> {
        let now = step_of(now_secs);
        let mut found = None;
        for step in (now - DRIFT_STEPS)..=(now + DRIFT_STEPS) {
            if step < 0 {
                continue;
            }
            let expected = self.code_at_step(step);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    /// The `otpauth://totp/…` URI an app reads from the QR code.
    #[must_use]
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            enc(issuer),
            enc(account),
            self.base32(),
            enc(issuer)
        )
    }
}

/// The step a Unix time falls in.
#[must_use]
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// Whether `text` has the shape of a TOTP code (after removing spaces).
#[must_use]
pub fn looks_like_code(text: &str) -> bool {
    text.len() == DIGITS as usize && text.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 4648 §6 base32 without padding.
#[must_use]
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The QR code of `text` as an SVG document (black modules on white, a quiet zone), or
/// `None` if the text is too long for a QR code.
#[must_use]
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn base32_text_reads_back_into_the_same_secret() {
        let secret = TotpSecret::generate();
        let text = secret.base32();
        let read = TotpSecret::from_base32(&text.to_lowercase()).unwrap();
        assert_eq!(read.expose(), secret.expose());
        let spaced: String = text
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            TotpSecret::from_base32(&spaced).unwrap().expose(),
            secret.expose()
        );
        // RFC 6238's test key, as apps are given it.
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
                .unwrap()
                .expose(),
            b"12345678901234567890"
        );
        assert!(
            TotpSecret::from_base32("MZXW6YTB01").is_none(),
            "0 and 1 are not base32"
        );
        assert!(TotpSecret::from_base32("MZXW6YTBOI").is_none(), "too short");
    }

    use super::*;

    /// RFC 6238 Appendix B's SHA-1 key: the ASCII "12345678901234567890".
    const RFC_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        // (Unix time, 8-digit TOTP) from Appendix B; apps use 6 digits, the last 6 of these.
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let secret = TotpSecret::from_bytes(RFC_KEY.to_vec());
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, RFC_KEY);
        for (time, eight) in vectors {
            let step = step_of(time);
            // 8 digits from the same truncation, to check the whole published value.
            let tag = hmac::sign(&key, &u64::try_from(step).unwrap().to_be_bytes());
            let d = tag.as_ref();
            let offset = usize::from(d[19] & 0x0f);
            let binary = u32::from_be_bytes([
                d[offset] & 0x7f,
                d[offset + 1],
                d[offset + 2],
                d[offset + 3],
            ]);
            assert_eq!(format!("{:08}", binary % 100_000_000), eight, "t = {time}");
            assert_eq!(secret.code_at_step(step), eight[2..], "t = {time}");
            assert_eq!(secret.matching_step(&eight[2..], time), Some(step));
        }
    }

    #[test]
    fn rfc_4226_appendix_d_hotp_vectors() {
        let secret = TotpSecret::from_bytes(RFC_KEY.to_vec());
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(secret.hotp(counter as u64), value);
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_015;
        let step = step_of(now);
        for delta in -1..=1 {
            let code = secret.code_at_step(step + delta);
            assert_eq!(secret.matching_step(&code, now), Some(step + delta));
        }
        for delta in [-2, 2] {
            let code = secret.code_at_step(step + delta);
            // A code two steps off could collide with a near one by chance (1 in 10^6).
            if (-1..=1).all(|d| secret.code_at_step(step + d) != code) {
                assert_eq!(secret.matching_step(&code, now), None);
            }
        }
        assert_eq!(secret.matching_step("12345", now), None);
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        // RFC 4648 §10, without the padding.
        for (input, output) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), output);
        }
        assert_eq!(TotpSecret::generate().base32().len(), 32);
    }

    #[test]
    fn uri_and_qr_code() {
        let secret = TotpSecret::from_bytes(RFC_KEY.to_vec());
        let uri = secret.uri("Acme App", "ada@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20App:ada%40example%2Ecom?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20App&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(
            svg.starts_with("<?xml") || svg.starts_with("<svg"),
            "{svg:.40}"
        );
        assert!(svg.contains("<svg"));
        assert_eq!(format!("{secret:?}"), "TotpSecret(redacted)");
    }
}
