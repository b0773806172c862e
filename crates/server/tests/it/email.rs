//! The email flows end to end: verified sign-up, sign-in by code, password reset, address
//! changes, delivery over a real SMTP server on loopback, and the dev mailbox.

pub mod change;
pub mod codes;
pub mod entry;
pub mod reset;
pub mod sign_up;
pub mod smtp;

use latchkey_store::{Db, Row as _};
use latchkey_testkit::TestApp;
use latchkey_testkit::browser::{Browser, csrf_token};
use serde_json::Value;

use crate::identity::PASSWORD;

/// Posts the sign-up form as Ada Lovelace; the browser is sent to `/verify` with no session
/// yet.
pub async fn start_sign_up(app: &TestApp, email: &str) -> Browser {
    sign_up_with(app.browser(), email).await
}

/// [`start_sign_up`] with a given browser (for a server that is not a [`TestApp`]).
pub async fn sign_up_with(mut browser: Browser, email: &str) -> Browser {
    let reply = browser
        .submit(
            "/sign-up",
            "/sign-up",
            &[
                ("email_address", email),
                ("password", PASSWORD),
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
            ],
            303,
        )
        .await;
    assert_eq!(reply.header("location"), Some("/verify"));
    assert!(browser.cookie("latchkey_verification").is_some());
    assert!(browser.cookie("__client").is_none());
    browser
}

/// The text of the page's error box, or "" if it has none.
pub fn error_text(html: &str) -> String {
    let Some(start) = html.find("id=\"form-error\">") else {
        return String::new();
    };
    let start = start + "id=\"form-error\">".len();
    let end = html[start..].find("</p>").map_or(html.len(), |i| start + i);
    html[start..end].to_owned()
}

/// The CSRF token of the page at `path`.
pub async fn token_of(browser: &mut Browser, path: &str) -> String {
    csrf_token(&browser.get(path, 200).await.text())
}

/// The signed-in user's JSON.
pub async fn me(browser: &Browser) -> Value {
    browser
        .request(reqwest::Method::GET, "/v1/me")
        .expect(200)
        .await
        .json()
}

/// `(status, attempts, sealed body)` of every outbox mail to `address`, oldest first.
pub async fn outbox_rows(app: &TestApp, address: &str) -> Vec<(String, i64, String)> {
    outbox_rows_in(&app.db, address)
        .await
        .into_iter()
        .map(|row| (row.status, row.attempts, row.body_sealed))
        .collect()
}

/// One outbox mail as stored.
#[derive(Debug)]
pub struct OutboxRow {
    pub status: String,
    pub attempts: i64,
    pub body_sealed: String,
    pub last_error: Option<String>,
}

/// Every outbox mail to `address` in `db`, oldest first.
pub async fn outbox_rows_in(db: &Db, address: &str) -> Vec<OutboxRow> {
    let mut tx = db.begin_read().await.unwrap();
    let q = tx
        .query(
            "SELECT status, attempts, body_sealed, last_error FROM identity_mail_outbox \
             WHERE to_address = $1 ORDER BY created_at, id",
        )
        .bind(address);
    let rows = tx.fetch_all(q).await.unwrap();
    tx.commit().await.unwrap();
    rows.iter()
        .map(|r| OutboxRow {
            status: r.try_get("status").unwrap(),
            attempts: r.try_get("attempts").unwrap(),
            body_sealed: r.try_get("body_sealed").unwrap(),
            last_error: r.try_get("last_error").unwrap(),
        })
        .collect()
}
