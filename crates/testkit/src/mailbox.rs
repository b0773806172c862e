//! Reading the dev mailbox (`/dev/mailbox`) the way a developer does: over HTTP from loopback,
//! from the page's HTML.

use std::time::Duration;

use crate::TestApp;

/// One mail as the dev mailbox page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxMail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl MailboxMail {
    /// The first six-digit code in the text.
    #[must_use]
    pub fn code(&self) -> Option<String> {
        crate::smtp::first_code(&self.text)
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// The mails listed on a `/dev/mailbox` page, newest first.
#[must_use]
pub fn parse(html: &str) -> Vec<MailboxMail> {
    html.split("<article class=\"panel mail\"")
        .skip(1)
        .filter_map(|article| {
            let heading = &article[article.find("<h2")?..];
            let subject = between(heading, ">", "</h2>")?;
            let to = between(article, "class=\"mail-to\">", "</td>")?;
            let text = between(article, "<pre class=\"mail-text\">", "</pre>")?;
            Some(MailboxMail {
                to: unescape(to),
                subject: unescape(subject),
                text: unescape(text),
            })
        })
        .collect()
}

impl TestApp {
    /// Every mail in the dev mailbox, newest first, read from `/dev/mailbox`.
    pub async fn mailbox(&self) -> Vec<MailboxMail> {
        parse(&self.get("/dev/mailbox").expect(200).await.text())
    }

    /// The newest mail to `address` (any case) in the dev mailbox, waiting up to 5 s for one.
    ///
    /// # Panics
    /// If none arrives.
    pub async fn latest_mail_to(&self, address: &str) -> MailboxMail {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(mail) = self
                .mailbox()
                .await
                .into_iter()
                .find(|m| m.to.eq_ignore_ascii_case(address))
            {
                return mail;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no mail to {address} in the dev mailbox"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The code in the newest mail to `address`.
    ///
    /// # Panics
    /// If that mail carries no code.
    pub async fn code_for(&self, address: &str) -> String {
        let mail = self.latest_mail_to(address).await;
        mail.code()
            .unwrap_or_else(|| panic!("the newest mail to {address} has no code: {mail:?}"))
    }
}
