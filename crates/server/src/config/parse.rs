//! How each setting's text becomes its value. Every parser takes the trimmed text and returns
//! the value or a one-line reason; [`super::Sources`] adds which setting, as written, it was.
//! Reasons never repeat a secret.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use latchkey_protocol::webhook::SigningSecret;
use latchkey_store::DatabaseUrl;

use super::{LogFormat, Secret};

pub(super) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!("\"{s}\" is not an address; expected host:port such as 127.0.0.1:3000")
    })
}

pub(super) fn data_dir(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        Err("the data directory cannot be empty".to_owned())
    } else {
        Ok(PathBuf::from(s))
    }
}

pub(super) fn public_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the public URL must start with http:// or https://".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the public URL needs a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the public URL cannot have a query or fragment".to_owned());
    }
    Ok(url)
}

pub(super) fn database_url(s: &str) -> Result<DatabaseUrl, String> {
    s.parse::<DatabaseUrl>().map_err(|e| e.to_string())
}

/// A database URL that does not go through a transaction pooler: migrations need a session.
pub(super) fn direct_database_url(s: &str) -> Result<DatabaseUrl, String> {
    let url = database_url(s)?;
    if url.is_pooler() {
        return Err("the direct URL is for migrations and cannot go through a transaction pooler (remove pgbouncer=true)".to_owned());
    }
    Ok(url)
}

/// A whole number from `min` to `max`.
pub(super) fn number_from<T: FromStr + PartialOrd + Display>(
    s: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("\"{s}\" is not a number from {min} to {max}")),
    }
}

pub(super) fn positive(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("\"{s}\" is not a positive whole number")),
    }
}

pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("\"{other}\" is not true or false")),
    }
}

pub(super) fn log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!(
            "\"{other}\" is not a log format; expected text or json"
        )),
    }
}

/// A comma-separated list of `whsec_` secrets; errors name the position, never the secret.
pub(super) fn signing_secrets(text: &str) -> Result<Vec<SigningSecret>, String> {
    let mut secrets = Vec::new();
    for (index, part) in text.split(',').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let secret =
            SigningSecret::parse(part).map_err(|e| format!("secret #{}: {e}", index + 1))?;
        secrets.push(secret);
    }
    if secrets.is_empty() {
        return Err(
            "no secret given; expected whsec_... (comma-separated during a rotation)".to_owned(),
        );
    }
    Ok(secrets)
}

pub(super) fn app_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().count() > 60 || s.chars().any(char::is_control) {
        Err("the app name is 1 to 60 printable characters".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

/// A comma-separated list of at least one origin (`scheme://host[:port]`).
pub(super) fn origins(s: &str) -> Result<Vec<String>, String> {
    let parties: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    for party in &parties {
        let url = url::Url::parse(party)
            .map_err(|_| format!("\"{party}\" is not an origin such as https://app.example.com"))?;
        if url.origin().ascii_serialization() != *party {
            return Err(format!(
                "\"{party}\" is not an origin (scheme://host[:port], no path or slash)"
            ));
        }
    }
    if parties.is_empty() {
        return Err("list at least one origin".to_owned());
    }
    Ok(parties)
}

/// A comma-separated list of host names (no scheme or port), lowercased.
pub(super) fn host_names(s: &str) -> Result<Vec<String>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let valid = h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
            if valid {
                Ok(h.to_ascii_lowercase())
            } else {
                Err(format!(
                    "\"{h}\" is not a host name such as auth.example.com (no scheme or port)"
                ))
            }
        })
        .collect()
}

/// The host a publishable key encodes: a host name with a dot, an optional port.
pub(super) fn frontend_api_host(s: &str) -> Result<String, String> {
    let (host, port) = s.split_once(':').map_or((s, None), |(h, p)| (h, Some(p)));
    let host_ok = host.contains('.')
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    if host_ok && port_ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "\"{s}\" is not a host name with a dot such as clerk.example.com or clerk.localhost (no scheme)"
        ))
    }
}

pub(super) fn clerk_publishable_key(s: &str) -> Result<String, String> {
    latchkey_app::session::clerk_frontend_api(s)
        .map(|_| s.to_owned())
        .ok_or_else(|| "not a Clerk publishable key (pk_live_… or pk_test_…)".to_owned())
}

pub(super) fn clerk_secret_key(s: &str) -> Result<Secret, String> {
    if s.starts_with("sk_") && s.len() > 10 {
        Ok(Secret(s.to_owned()))
    } else {
        Err("not a Clerk secret key (sk_live_… or sk_test_…)".to_owned())
    }
}

/// A PEM public key, whose line breaks may be written `\n` (as environment files often do).
pub(super) fn pem_public_key(s: &str) -> Result<String, String> {
    let pem = s.replace("\\n", "\n");
    latchkey_protocol::jwt::VerifyingKey::from_spki_pem(&pem)
        .map_err(|e| format!("not a PEM public key: {e}"))?;
    Ok(pem)
}

/// An http(s) URL, without a trailing slash.
pub(super) fn http_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(s.trim_end_matches('/').to_owned())
    } else {
        Err("expected an http(s) URL".to_owned())
    }
}

/// Comma-separated durations, 1 to `most` of them; `example` shows a valid list.
pub(super) fn delays(s: &str, most: usize, example: &str) -> Result<Vec<Duration>, String> {
    let delays = s
        .split(',')
        .map(|d| parse_duration(d.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() || delays.len() > most {
        return Err(format!("give 1 to {most} delays, e.g. {example}"));
    }
    Ok(delays)
}

/// A timeout from 100ms to `max` (written as the message shows it).
pub(super) fn timeout(s: &str, max: &str) -> Result<Duration, String> {
    let timeout = parse_duration(s)?;
    if timeout < Duration::from_millis(100) || timeout > parse_duration(max)? {
        return Err(format!("the timeout must be between 100ms and {max}"));
    }
    Ok(timeout)
}

/// How long a mailed code lives: 1s to 24h.
pub(super) fn code_lifetime(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(24 * 60 * 60) {
        return Err("a code lives between 1s and 24h".to_owned());
    }
    Ok(duration)
}

/// A duration from `min` to `max`, both given as written (`100ms`, `24h`) for the message.
pub(super) fn duration_from(text: &str, min: &str, max: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < parse_duration(min)? || duration > parse_duration(max)? {
        return Err(format!("\"{text}\" is out of range; give {min} to {max}"));
    }
    Ok(duration)
}

/// Longest duration any setting or age takes: ten years. Longer is a typo, and staying far
/// from the integer limits means adding it to a clock reading can never overflow.
const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// `250ms`, `5s`, `5m`, `2h`, `1d`, or a plain number of seconds, up to 3650d.
///
/// Strict on purpose: ASCII digits, then at most one of those units; no sign, space, fraction
/// or compound (`1h30m`). Friendlier parsers (jiff's, humantime's) accept many more spellings,
/// which would widen what the settings documented in the README accept for no gain.
///
/// # Errors
/// Anything else, or more than 3650 days, with a one-line reason.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let not_a_duration = || format!("\"{text}\" is not a duration such as 250ms, 5s, 5m, 2h or 1d");
    let too_long = || format!("\"{text}\" is longer than the longest accepted duration, 3650d");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(not_a_duration()),
    };
    if number.is_empty() {
        return Err(not_a_duration());
    }
    // `number` is ASCII digits, so parsing fails only when it overflows.
    let value: u64 = number.parse().map_err(|_| too_long())?;
    let millis = value.checked_mul(millis_per_unit).ok_or_else(too_long)?;
    let duration = Duration::from_millis(millis);
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

/// A comma-separated list of durations; panics on bad input (for tests and fixed strings).
///
/// # Panics
/// If any item is not a duration.
#[must_use]
pub fn parse_duration_list(text: &str) -> Vec<Duration> {
    text.split(',')
        .map(|d| parse_duration(d.trim()).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// An OAuth client id: 1 to 256 printable ASCII characters, no spaces.
pub(super) fn oauth_client_id(s: &str) -> Result<String, String> {
    if (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 256 printable characters without spaces".to_owned())
    }
}

/// An OAuth client secret. The message never shows it.
pub(super) fn oauth_client_secret(s: &str) -> Result<Secret, String> {
    if (1..=1024).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(Secret(s.to_owned()))
    } else {
        Err("expected 1 to 1024 printable characters without spaces".to_owned())
    }
}

/// A custom provider's id, as in Clerk's `oauth_custom_<id>`.
pub(super) fn oauth_custom_id(s: &str) -> Result<String, String> {
    if latchkey_identity::oauth::valid_custom_id(s) {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 32 lowercase letters and digits".to_owned())
    }
}

/// What a provider's button calls it.
pub(super) fn display_name(s: &str) -> Result<String, String> {
    if (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control) {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 64 characters".to_owned())
    }
}

/// An OpenID Connect issuer: `https://…` (or `http://` on a loopback host), no query or
/// fragment; a trailing slash is dropped.
pub(super) fn issuer_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s.trim_end_matches('/'))
        .map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("expected an https:// URL (http:// only on a loopback host)".to_owned()),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an issuer URL has no query or fragment".to_owned());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_documented_forms() {
        for (text, millis) in [
            ("250ms", 250),
            ("5s", 5_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("90", 90_000),
            (" 7d ", 604_800_000),
            ("0", 0),
            ("3650d", 315_360_000_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn garbage_and_overflowing_durations_are_refused() {
        for garbage in [
            "", "s", "ms", "-5s", "+5s", "5 s", "1.5h", "1h30m", "5x", "5S", "five", "٣s", "5sec",
        ] {
            let err = parse_duration(garbage).unwrap_err();
            assert!(
                err.contains("is not a duration such as"),
                "{garbage:?}: {err}"
            );
        }
        for huge in [
            "3651d",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999d",
            "213503982334601d",
            "18446744073709551615ms",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(err.contains("longer than the longest"), "{huge}: {err}");
        }
    }
}
