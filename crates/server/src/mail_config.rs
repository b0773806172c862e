//! The mail settings: the SMTP relay, the sender, the retry schedule and how long codes live.
//! Resolved from the same layers as every other setting (see [`crate::config`]).

use std::time::Duration;

use latchkey_identity::mail::{Sender, SmtpUrl, default_retry_schedule};

use crate::config::{ConfigError, Sources, settings};

/// How mail leaves latchkey.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The relay (`LATCHKEY_SMTP_URL`); `None` keeps mail in the dev mailbox.
    pub smtp_url: Option<SmtpUrl>,
    /// The `From` (`LATCHKEY_MAIL_FROM`); `None` for `<app name> <no-reply@public host>`.
    pub from: Option<Sender>,
    /// Delays before each retry of a failed delivery.
    pub retry_schedule: Vec<Duration>,
    /// How long a sign-up, sign-in or new-address code is valid.
    pub code_lifetime: Duration,
    /// How long a password-reset code is valid.
    pub reset_code_lifetime: Duration,
}

impl Default for MailConfig {
    /// The dev mailbox, the default sender, 10-minute codes and 30-minute reset codes: the
    /// declared defaults of [`crate::config::settings`] (a test there checks they agree).
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: None,
            retry_schedule: default_retry_schedule(),
            code_lifetime: Duration::from_secs(10 * 60),
            reset_code_lifetime: Duration::from_secs(30 * 60),
        }
    }
}

/// Validates the mail settings.
///
/// # Errors
/// The first setting that does not validate.
pub fn resolve(sources: &Sources) -> Result<MailConfig, ConfigError> {
    Ok(MailConfig {
        smtp_url: sources.given(&settings::SMTP_URL)?,
        from: sources.given(&settings::MAIL_FROM)?,
        retry_schedule: sources.value(&settings::MAIL_RETRY_SCHEDULE)?,
        code_lifetime: sources.value(&settings::EMAIL_CODE_LIFETIME)?,
        reset_code_lifetime: sources.value(&settings::RESET_CODE_LIFETIME)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn env(pairs: &[(&str, &str)]) -> Sources {
        Sources {
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Sources::default()
        }
    }

    #[test]
    fn mail_defaults_to_the_dev_mailbox() {
        let config = Config::resolve(&Sources::default()).unwrap();
        assert!(config.mail.smtp_url.is_none());
        assert_eq!(config.mail.code_lifetime, Duration::from_secs(600));
        assert_eq!(config.mail.reset_code_lifetime, Duration::from_secs(1800));
    }

    #[test]
    fn a_bad_smtp_url_is_named_without_its_password() {
        let error = Config::resolve(&env(&[(
            "LATCHKEY_SMTP_URL",
            "smtp://user:hunter2hunter2@mail.example.com:25",
        )]))
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("invalid LATCHKEY_SMTP_URL: "), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let config = Config::resolve(&env(&[
            ("LATCHKEY_SMTP_URL", "smtps://user:pw@mail.example.com:465"),
            ("LATCHKEY_MAIL_FROM", "Acme <no-reply@acme.example>"),
            ("LATCHKEY_EMAIL_CODE_LIFETIME", "2s"),
        ]))
        .unwrap();
        assert!(config.mail.smtp_url.is_some());
        assert_eq!(config.mail.code_lifetime, Duration::from_secs(2));
        let error = Config::resolve(&env(&[("LATCHKEY_RESET_CODE_LIFETIME", "2d")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("invalid LATCHKEY_RESET_CODE_LIFETIME"),
            "{error}"
        );
    }
}
