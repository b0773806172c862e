//! Checking what people type into account fields, with messages fit to show them.

/// Why a field was refused; `field` names the form field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

const fn field(field: &'static str, message: &'static str) -> FieldError {
    FieldError { field, message }
}

/// A normalised email address: trimmed; `normalized` is lower-cased for uniqueness. Only
/// [`email`] makes one, so every address stored went through its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::manual_non_exhaustive,
    reason = "`#[non_exhaustive]` would still let the rest of this crate build one unchecked"
)]
pub struct Email {
    pub address: String,
    pub normalized: String,
    /// Keeps construction in this module.
    checked: (),
}

/// The one judge of an email address typed anywhere (sign-up, `/user`, sign-in by code,
/// `POST /v1/users`, `latchkey users create`): the rules below, then lettre's parsers, the
/// ones the mail worker writes the recipient with, so an address accepted here can be mailed.
///
/// # Errors
/// If `text` is not a plausible email address, or one the mailer could not write.
pub fn email(text: &str) -> Result<Email, FieldError> {
    let address = text.trim();
    let invalid = field("email_address", "Enter a valid email address.");
    if address.is_empty()
        || address.len() > 254
        || address.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid);
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(invalid);
    };
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || domain
            .chars()
            .any(|c| !(c.is_alphanumeric() || c == '.' || c == '-'))
    {
        return Err(invalid);
    }
    if !mailable(address) {
        return Err(invalid);
    }
    Ok(Email {
        address: address.to_owned(),
        normalized: address.to_lowercase(),
        checked: (),
    })
}

/// Whether the mail worker can send to `address`: lettre's `Address` (the SMTP envelope's
/// recipient) must take it, and its `Mailbox` parser (the `To:` header, what
/// `mail::worker` parses) must read back exactly this address with no display name. That
/// refuses what RFC 5322 calls specials in the local part (`a,b@x.io`,
/// `x<svg/onload=alert(8)>@example.com`) and quoted local parts, which the header parser
/// would rewrite into another address.
fn mailable(address: &str) -> bool {
    let Ok(parsed) = address.parse::<lettre::Address>() else {
        return false;
    };
    matches!(
        address.parse::<lettre::message::Mailbox>(),
        Ok(mailbox) if mailbox.name.is_none() && mailbox.email == parsed
    )
}

/// A first or last name: trimmed, at most 256 characters; empty means none.
///
/// # Errors
/// If too long or holding control characters.
pub fn name(field_name: &'static str, text: &str) -> Result<Option<String>, FieldError> {
    let text = text.trim();
    if text.chars().count() > 256 {
        return Err(field(field_name, "Names can be at most 256 characters."));
    }
    if text.chars().any(char::is_control) {
        return Err(field(
            field_name,
            "Names cannot contain control characters.",
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// A username: 3 to 64 of letters, digits, `_`, `-` and `.`; empty means none.
///
/// # Errors
/// If it breaks those rules.
pub fn username(text: &str) -> Result<Option<String>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let ok_chars = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !(3..=64).contains(&text.len()) || !ok_chars {
        return Err(field(
            "username",
            "Usernames are 3 to 64 characters: letters, digits, underscores, hyphens and dots.",
        ));
    }
    Ok(Some(text.to_owned()))
}

/// An image URL: `https://` (or `http://`) and at most 2048 characters; empty means none.
///
/// # Errors
/// If it is not such a URL.
pub fn image_url(text: &str) -> Result<Option<String>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = field("image_url", "Enter an image URL starting with https://.");
    let url = url::Url::parse(text).map_err(|_| bad.clone())?;
    if text.len() > 2048 || !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(bad);
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased_for_uniqueness() {
        let e = email("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.address, "Ada.Lovelace@Example.COM");
        assert_eq!(e.normalized, "ada.lovelace@example.com");
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@.com",
            "a@b..com",
            "a b@c.com",
            "@c.com",
            "a@c.com.",
            "a@<c>.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_the_mailer_cannot_write_are_refused() {
        for bad in [
            "a,b@x.io",
            "x<svg/onload=alert(8)>@example.com",
            "a;b@x.io",
            "a(b)@x.io",
            "a:b@x.io",
            "[a]@x.io",
            "a\\b@x.io",
            "\"ab\"@x.io",
            "\"a,b\"@x.io",
            ".a@x.io",
            "a.@x.io",
            "a..b@x.io",
            "Ada <ada@example.com>",
            "a@x_y.io",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        for good in [
            "first.last+tag@sub.example.co.uk",
            "ada@example.com",
            "o'brien@example.ie",
            "a!#$%&*/=?^_`{|}~-z@example.com",
            "x-1@a-b.example",
            "Ada.Lovelace@Example.COM",
            "jürgen@müller.example",
        ] {
            let checked = email(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(checked.address, good);
            // What the mail worker does with a stored address.
            let to: lettre::message::Mailbox = checked.address.parse().unwrap();
            assert_eq!(to.email.to_string(), good);
        }
    }

    #[test]
    fn usernames_names_and_urls() {
        assert_eq!(username("").unwrap(), None);
        assert_eq!(username("ada_l").unwrap().as_deref(), Some("ada_l"));
        assert!(username("a").is_err());
        assert!(username("<script>").is_err());
        assert_eq!(name("first_name", " Ada ").unwrap().as_deref(), Some("Ada"));
        assert!(name("first_name", &"x".repeat(257)).is_err());
        assert!(image_url("javascript:alert(1)").is_err());
        assert_eq!(
            image_url("https://img.example.com/a.png")
                .unwrap()
                .as_deref(),
            Some("https://img.example.com/a.png")
        );
    }
}
