//! What codes refuse: wrong, malformed, expired, replaced and reused ones; more than five
//! attempts, even in parallel; more than five mails an hour to one address.

use std::time::Duration;

use latchkey_store::Row as _;
use latchkey_testkit::TestContext;

use super::{error_text, start_sign_up, token_of};
use crate::identity::enter_code;

fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

pub async fn wrong_malformed_expired_replaced_and_reused_codes_are_refused(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = start_sign_up(&app, "codes@example.com").await;
    let first = app.code_for("codes@example.com").await;

    let reply = enter_code(&mut browser, "12ab56", 422).await;
    assert_eq!(
        error_text(&reply.text()),
        "Enter the 6-digit code from the email."
    );
    let reply = enter_code(&mut browser, &other_than(&first), 422).await;
    assert_eq!(
        error_text(&reply.text()),
        "That code is incorrect. 4 tries left."
    );

    // Codes live ten minutes.
    app.clock().advance(Duration::from_secs(10 * 60 + 1));
    let reply = enter_code(&mut browser, &first, 422).await;
    assert_eq!(
        error_text(&reply.text()),
        "That code has expired. Send a new one."
    );

    let reply = browser.submit("/verify", "/verify/resend", &[], 303).await;
    assert_eq!(reply.header("location"), Some("/verify?notice=sent"));
    let second = app.code_for("codes@example.com").await;
    if second != first {
        let reply = enter_code(&mut browser, &first, 422).await;
        assert_eq!(
            error_text(&reply.text()),
            "That code is incorrect. 4 tries left.",
            "a new code replaces the old one"
        );
    }
    // The same browser, as it was before the right code went in.
    let mut replay = browser.clone();
    let token = token_of(&mut replay, "/verify").await;
    let reply = enter_code(&mut browser, &second, 303).await;
    assert_eq!(reply.header("location"), Some("/"));

    let reply = replay
        .post_form("/verify", &[("csrf_token", &token), ("code", &second)], 422)
        .await;
    assert!(
        reply.text().contains("That code was already used."),
        "{}",
        reply.text()
    );
    assert!(replay.cookie("__client").is_none());
    app.stop().await;
}

pub async fn twenty_wrong_codes_in_parallel_use_up_exactly_five_attempts(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = start_sign_up(&app, "race@example.com").await;
    let code = app.code_for("race@example.com").await;
    let wrong = other_than(&code);
    let token = token_of(&mut browser, "/verify").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let b = browser.clone();
        let (token, wrong) = (token.clone(), wrong.clone());
        tasks.push(tokio::spawn(async move {
            let reply = b
                .request(reqwest::Method::POST, "/verify")
                .header("origin", &b.request_base())
                .form(&[("csrf_token", token.as_str()), ("code", wrong.as_str())])
                .send()
                .await;
            (reply.status.as_u16(), error_text(&reply.text()))
        }));
    }
    let (mut wrong_answers, mut too_many) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (422, text) if text.starts_with("That code is incorrect.") => wrong_answers += 1,
            (429, text) if text == "Too many wrong codes. Send a new one." => too_many += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(
        (wrong_answers, too_many),
        (5, 15),
        "exactly five attempts were checked"
    );
    // Now even the right code is refused.
    let reply = enter_code(&mut browser, &code, 429).await;
    assert_eq!(
        error_text(&reply.text()),
        "Too many wrong codes. Send a new one."
    );
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query("SELECT attempts FROM identity_verifications");
    let attempts: i64 = tx.fetch_one(q).await.unwrap().try_get("attempts").unwrap();
    tx.commit().await.unwrap();
    assert_eq!(attempts, 5);
    // A new code starts afresh.
    browser.submit("/verify", "/verify/resend", &[], 303).await;
    let fresh = app.code_for("race@example.com").await;
    enter_code(&mut browser, &fresh, 303).await;
    app.stop().await;
}

pub async fn codes_can_be_sent_again_until_five_mails_an_hour(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = start_sign_up(&app, "again@example.com").await;
    for _ in 0..4 {
        let reply = browser.submit("/verify", "/verify/resend", &[], 303).await;
        assert_eq!(reply.header("location"), Some("/verify?notice=sent"));
    }
    let reply = browser.submit("/verify", "/verify/resend", &[], 429).await;
    assert!(
        error_text(&reply.text()).starts_with("Too many emails were sent to this address."),
        "{}",
        reply.text()
    );
    let sent: Vec<_> = app
        .mailbox()
        .await
        .into_iter()
        .filter(|m| m.to == "again@example.com")
        .collect();
    assert_eq!(sent.len(), 5);
    // Only the newest code works.
    let newest = sent[0].code().unwrap();
    let oldest = sent[4].code().unwrap();
    if oldest != newest {
        enter_code(&mut browser, &oldest, 422).await;
    }
    enter_code(&mut browser, &newest, 303).await;
    // The limit is per address, not per account: an unknown address is limited alike.
    let mut stranger = app.browser();
    for _ in 0..5 {
        let reply = stranger
            .submit(
                "/forgot-password",
                "/forgot-password",
                &[("email_address", "ghost@example.com")],
                303,
            )
            .await;
        assert_eq!(reply.header("location"), Some("/reset-password"));
    }
    stranger
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email_address", "ghost@example.com")],
            429,
        )
        .await;
    app.stop().await;
}
