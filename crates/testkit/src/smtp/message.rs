//! What the test SMTP server received: envelope, headers, and the decoded text and HTML parts
//! of a message (7bit, quoted-printable or base64), enough to read a code out of a mail.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, lines joined with CRLF.
    pub data: String,
    /// Who authenticated, if anyone.
    pub user: Option<String>,
    /// Whether the message came over TLS (implicit, or after STARTTLS).
    pub tls: bool,
}

impl Received {
    /// A header's value (the first one named `name`, unfolded).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(current) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    current.push(' ');
                    current.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_owned());
            }
        }
        value
    }

    /// The decoded `text/plain` part (or the whole body of a single-part message).
    #[must_use]
    pub fn text(&self) -> String {
        let parts = self.parts();
        parts
            .iter()
            .find(|(headers, _)| {
                headers
                    .to_ascii_lowercase()
                    .contains("content-type: text/plain")
            })
            .or_else(|| parts.first())
            .map(|(headers, body)| decode(headers, body))
            .unwrap_or_default()
    }

    /// The decoded `text/html` part, if any.
    #[must_use]
    pub fn html(&self) -> Option<String> {
        self.parts()
            .iter()
            .find(|(headers, _)| {
                headers
                    .to_ascii_lowercase()
                    .contains("content-type: text/html")
            })
            .map(|(headers, body)| decode(headers, body))
    }

    /// The first six-digit code in the text part.
    #[must_use]
    pub fn code(&self) -> Option<String> {
        first_code(&self.text())
    }

    /// (headers, body) of each leaf part; the message itself when it is not multipart.
    fn parts(&self) -> Vec<(String, String)> {
        let (head, body) = self.data.split_once("\r\n\r\n").unwrap_or((&self.data, ""));
        let boundary = self.header("content-type").and_then(|ct| {
            let at = ct.find("boundary=")? + "boundary=".len();
            Some(
                ct[at..]
                    .split(';')
                    .next()?
                    .trim()
                    .trim_matches('"')
                    .to_owned(),
            )
        });
        let Some(boundary) = boundary else {
            return vec![(head.to_owned(), body.to_owned())];
        };
        body.split(&format!("--{boundary}"))
            .filter_map(|part| {
                let part = part.strip_prefix("\r\n")?;
                let (headers, body) = part.split_once("\r\n\r\n")?;
                Some((headers.to_owned(), body.trim_end_matches("\r\n").to_owned()))
            })
            .collect()
    }
}

/// The first run of exactly six ASCII digits with no letter or digit on either side.
#[must_use]
pub fn first_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let before = start.checked_sub(1).map(|j| bytes[j]);
            let after = bytes.get(i).copied();
            let bounded = |b: Option<u8>| b.is_none_or(|b| !b.is_ascii_alphanumeric());
            if i - start == 6 && bounded(before) && bounded(after) {
                return Some(text[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    None
}

fn decode(headers: &str, body: &str) -> String {
    let lower = headers.to_ascii_lowercase();
    if lower.contains("content-transfer-encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        return String::from_utf8_lossy(&STANDARD.decode(joined).unwrap_or_default()).into_owned();
    }
    if lower.contains("content-transfer-encoding: quoted-printable") {
        let mut out = Vec::new();
        let unfolded = body.replace("=\r\n", "");
        let bytes = unfolded.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let mut byte = [0_u8];
            if bytes[i] == b'='
                && let Some(digits) = bytes.get(i + 1..i + 3)
                && hex::decode_to_slice(digits, &mut byte).is_ok()
            {
                out.extend(byte);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        return String::from_utf8_lossy(&out).into_owned();
    }
    body.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_standing_alone() {
        assert_eq!(
            first_code("Your code:\r\n\r\n    042917\r\n"),
            Some("042917".to_owned())
        );
        assert_eq!(
            first_code("boundary a1234567b then 123456."),
            Some("123456".to_owned())
        );
        assert_eq!(first_code("x123456 1234567"), None);
    }

    #[test]
    fn quoted_printable_escapes_are_two_hex_digits() {
        let headers = "Content-Transfer-Encoding: quoted-printable";
        assert_eq!(
            decode(headers, "caf=C3=A9 a=3Db =+1 soft=\r\nbreak =4"),
            "café a=b =+1 softbreak =4"
        );
    }
}
