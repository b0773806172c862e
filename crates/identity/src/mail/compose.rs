//! What each mail says, written once and rendered twice by askama: a plain-text body and an
//! HTML body (escaped, so a site name or address can never inject markup). Subjects never carry
//! codes, which lock screens and mail logs would show.

use askama::Template;

use crate::verifications::Code;

/// A link at the end of a mail.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub label: String,
    pub url: String,
}

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextBody<'a> {
    before: &'a [String],
    code: Option<&'a str>,
    after: &'a [String],
    links: &'a [Link],
    site: &'a str,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlBody<'a> {
    subject: &'a str,
    before: &'a [String],
    code: Option<&'a str>,
    after: &'a [String],
    links: &'a [Link],
    site: &'a str,
}

/// Which mail to send.
#[derive(Debug)]
pub(crate) enum MailKind<'a> {
    /// The code that finishes a sign-up.
    SignUpCode(&'a Code),
    /// A code that signs in (passwordless, or an unverified account's password sign-in).
    SignInCode(&'a Code),
    /// The code that lets someone set a new password.
    ResetCode(&'a Code),
    /// The code that verifies an address added on the account page.
    AddEmailCode(&'a Code),
    /// Someone tried to sign up with an address that already has an account.
    AccountExists,
    /// The account's primary address moved away from this one.
    PrimaryChanged,
}

/// A mail ready for the outbox.
#[derive(Debug)]
pub(crate) struct Composed {
    /// Clerk-style slug, stored with the mail.
    pub slug: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What every mail may mention.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub site: &'a str,
    /// The public URL without a trailing slash.
    pub base_url: &'a str,
    pub code_minutes: i64,
    pub reset_minutes: i64,
}

/// Renders `kind`.
///
/// # Errors
/// If a template fails to render (a bug).
pub(crate) fn compose(kind: &MailKind<'_>, ctx: Context<'_>) -> Result<Composed, askama::Error> {
    let site = ctx.site;
    let expires = |minutes: i64| format!("The code expires in {minutes} minutes.");
    let reset_link = Link {
        label: "Reset your password".to_owned(),
        url: format!("{}/forgot-password", ctx.base_url),
    };
    let (slug, subject, before, code, after, links) = match kind {
        MailKind::SignUpCode(code) => (
            "verification_code",
            format!("Verify your email address for {site}"),
            vec![format!(
                "Enter this code to finish creating your {site} account:"
            )],
            Some(*code),
            vec![
                expires(ctx.code_minutes),
                "If you did not sign up, you can ignore this email.".to_owned(),
            ],
            Vec::new(),
        ),
        MailKind::SignInCode(code) => (
            "sign_in_code",
            format!("Your {site} sign-in code"),
            vec![format!("Enter this code to sign in to {site}:")],
            Some(*code),
            vec![
                expires(ctx.code_minutes),
                "If you did not try to sign in, you can ignore this email.".to_owned(),
            ],
            Vec::new(),
        ),
        MailKind::ResetCode(code) => (
            "reset_password_code",
            format!("Reset your {site} password"),
            vec![format!(
                "Enter this code to choose a new password for your {site} account:"
            )],
            Some(*code),
            vec![
                expires(ctx.reset_minutes),
                "Setting a new password signs you out everywhere. If you did not ask for this, you can ignore this email; your password has not changed.".to_owned(),
            ],
            Vec::new(),
        ),
        MailKind::AddEmailCode(code) => (
            "verification_code",
            format!("Verify your new email address for {site}"),
            vec![format!(
                "Enter this code on your account page to add this address to your {site} account:"
            )],
            Some(*code),
            vec![
                expires(ctx.code_minutes),
                "If you did not ask for this, you can ignore this email.".to_owned(),
            ],
            Vec::new(),
        ),
        MailKind::AccountExists => (
            "account_exists",
            format!("Your {site} account"),
            vec![format!(
                "Someone, perhaps you, tried to create a {site} account with this email address. It already has an account, so nothing was created."
            )],
            None,
            vec![
                "Sign in to your account, or reset your password if you have forgotten it. If it was not you, you can ignore this email.".to_owned(),
            ],
            vec![
                Link {
                    label: "Sign in".to_owned(),
                    url: format!("{}/sign-in", ctx.base_url),
                },
                reset_link,
            ],
        ),
        MailKind::PrimaryChanged => (
            "primary_email_changed",
            format!("Your {site} email address was changed"),
            vec![format!(
                "The primary email address of your {site} account was changed, so mail about the account now goes to the new address."
            )],
            None,
            vec![
                "If you made this change, there is nothing to do. If you did not, reset your password right away.".to_owned(),
            ],
            vec![reset_link],
        ),
    };
    let code = code.map(Code::expose);
    let text = TextBody {
        before: &before,
        code,
        after: &after,
        links: &links,
        site,
    }
    .render()?;
    let html = HtmlBody {
        subject: &subject,
        before: &before,
        code,
        after: &after,
        links: &links,
        site,
    }
    .render()?;
    Ok(Composed {
        slug,
        subject,
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(site: &str) -> Context<'_> {
        Context {
            site,
            base_url: "https://auth.acme.example",
            code_minutes: 10,
            reset_minutes: 30,
        }
    }

    #[test]
    fn code_mails_carry_the_code_in_both_bodies_but_not_the_subject() {
        let code = Code::parse("042917").unwrap();
        let mail = compose(&MailKind::SignUpCode(&code), context("Acme")).unwrap();
        assert_eq!(mail.slug, "verification_code");
        assert!(!mail.subject.contains("042917"));
        assert!(mail.text.contains("\n    042917\n"), "{}", mail.text);
        assert!(mail.text.contains("expires in 10 minutes"));
        assert!(mail.html.contains(">042917</p>"));
        let reset = compose(&MailKind::ResetCode(&code), context("Acme")).unwrap();
        assert!(reset.text.contains("expires in 30 minutes"));
    }

    #[test]
    fn the_html_body_is_escaped_and_the_text_body_is_tidy() {
        let mail = compose(&MailKind::AccountExists, context("<b>Acme</b> & Co")).unwrap();
        assert!(!mail.html.contains("<b>Acme"), "{}", mail.html);
        assert!(mail.html.contains("&#60;b&#62;Acme"), "{}", mail.html);
        assert!(
            mail.text.contains("<b>Acme</b> & Co"),
            "plain text is not escaped"
        );
        assert!(
            mail.text
                .contains("Reset your password: https://auth.acme.example/forgot-password")
        );
        assert!(!mail.text.contains("\n\n\n"), "{}", mail.text);
        assert!(mail.text.starts_with("Hello,\n\n"), "{}", mail.text);
    }
}
