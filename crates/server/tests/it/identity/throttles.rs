//! Abuse: answers that reveal nothing, lockouts after wrong passwords (also in parallel),
//! throttles with `retry-after`, and the sweep of stale counters and old sessions.

use latchkey_store::Row as _;
use latchkey_testkit::TestContext;
use latchkey_testkit::browser::csrf_token;

use super::{PASSWORD, sign_in, sign_up};
use crate::email::error_text;

pub async fn wrong_passwords_and_unknown_emails_answer_alike(ctx: TestContext) {
    let app = ctx.spawn().await;
    sign_up(&app, "known@example.com").await;
    let mut browser = app.browser();
    let wrong = sign_in(&mut browser, "known@example.com", "not the password", 401).await;
    let unknown = sign_in(&mut browser, "nobody@example.com", "not the password", 401).await;
    let malformed = sign_in(&mut browser, "not-an-email", "not the password", 401).await;
    assert_eq!(error_text(&wrong.text()), error_text(&unknown.text()));
    assert_eq!(error_text(&wrong.text()), error_text(&malformed.text()));
    assert_eq!(
        error_text(&wrong.text()),
        "The email address or password is incorrect."
    );
    assert!(browser.cookie("__client").is_none());
    app.stop().await;
}

pub async fn ten_failures_lock_the_account_even_when_they_arrive_in_parallel(ctx: TestContext) {
    let app = ctx.spawn_with(|c| c.sign_in_attempts_per_ip = 1000).await;
    sign_up(&app, "target@example.com").await;
    let mut browser = app.browser();
    let page = browser.get("/sign-in", 200).await;
    let token = csrf_token(&page.text());
    let mut handles = Vec::new();
    for _ in 0..20 {
        let mut b = browser.clone();
        let token = token.clone();
        handles.push(tokio::spawn(async move {
            let reply = b
                .request(reqwest::Method::POST, "/sign-in")
                .header("origin", &b.request_base())
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("email_address", "target@example.com"),
                    ("password", "wrong password!"),
                ])
                .send()
                .await;
            b.absorb(&reply);
            (reply.status.as_u16(), error_text(&reply.text()))
        }));
    }
    let mut wrong = 0;
    let mut locked = 0;
    for handle in handles {
        let (status, text) = handle.await.unwrap();
        match status {
            401 => wrong += 1,
            429 => {
                assert!(text.contains("locked"), "{text}");
                locked += 1;
            }
            other => panic!("unexpected status {other}: {text}"),
        }
    }
    assert_eq!(
        (wrong, locked),
        (10, 10),
        "exactly 10 attempts were checked"
    );
    // Now even the right password is refused, with a message that says why.
    let reply = sign_in(&mut browser, "target@example.com", PASSWORD, 429).await;
    assert!(
        reply
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() > 3000)
    );
    assert!(error_text(&reply.text()).contains("locked"));
    // Unknown addresses lock the same way, so the lock reveals nothing.
    for _ in 0..10 {
        sign_in(&mut browser, "ghost@example.com", "wrong password!", 401).await;
    }
    let reply = sign_in(&mut browser, "ghost@example.com", "wrong password!", 429).await;
    assert!(error_text(&reply.text()).contains("locked"));
    app.stop().await;
}

pub async fn wrong_current_passwords_on_the_account_page_lock_password_changes(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = sign_up(&app, "guess@example.com").await;
    let token = csrf_token(&browser.get("/user", 200).await.text());
    // Twelve wrong guesses in parallel, as a stolen session would send them: ten are checked,
    // the rest refused, however they interleave.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (b, token) = (browser.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let reply = b
                .request(reqwest::Method::POST, "/user/password")
                .header("origin", &b.request_base())
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("current_password", "wrong guess!"),
                    ("new_password", "a guessed-at new passphrase"),
                ])
                .send()
                .await;
            (reply.status.as_u16(), error_text(&reply.text()))
        }));
    }
    let (mut wrong, mut locked) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (401, text) if text == "The current password is incorrect." => wrong += 1,
            (429, text) if text.starts_with("Too many wrong passwords.") => locked += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((wrong, locked), (10, 2));
    // Now even the right password is refused for a while.
    let refused = browser
        .submit(
            "/user",
            "/user/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a guessed-at new passphrase"),
            ],
            429,
        )
        .await;
    assert!(
        refused
            .header("retry-after")
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s > 0)
    );
    // The password did not change, and the session still works.
    browser.get("/user", 200).await;
    sign_in(&mut app.browser(), "guess@example.com", PASSWORD, 303).await;
    app.stop().await;
}

pub async fn throttles_answer_429_with_retry_after(ctx: TestContext) {
    let app = ctx
        .spawn_with(|c| {
            // Entering the sign-up's code is the first sign-in attempt; three wrong passwords
            // use up the rest.
            c.sign_in_attempts_per_ip = 4;
            c.sign_ups_per_ip = 1;
        })
        .await;
    sign_up(&app, "first@example.com").await;
    let mut second = app.browser();
    let reply = second
        .submit(
            "/sign-up",
            "/sign-up",
            &[
                ("email_address", "second@example.com"),
                ("password", PASSWORD),
            ],
            429,
        )
        .await;
    assert!(reply.header("retry-after").is_some());
    let mut browser = app.browser();
    for _ in 0..3 {
        sign_in(&mut browser, "first@example.com", "nope nope nope", 401).await;
    }
    let reply = sign_in(&mut browser, "first@example.com", PASSWORD, 429).await;
    let seconds: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&seconds), "{seconds}");
    app.stop().await;
}

pub async fn stale_throttle_counters_and_old_sessions_are_swept(ctx: TestContext) {
    let config = ctx.fresh_config().await;
    let first = ctx.start(config.clone()).await;
    // Now: a failed sign-in (counters for the address and the client address) and a session.
    sign_in(&mut first.browser(), "nobody@example.com", PASSWORD, 401).await;
    sign_up(&first, "sweep@example.com").await;
    let old_counters = throttle_rows(&first.db).await;
    let old_sessions = session_ids(&first.db).await;
    assert!(!old_counters.is_empty() && old_sessions.len() == 1);

    // 38 days later the session (7-day lifetime) has been expired for over 30 days and the
    // counters are over a day old. A sign-in then makes a live session and fresh counters.
    let clock = first.clock().clone();
    clock.advance(std::time::Duration::from_secs(38 * 24 * 60 * 60));
    sign_in(
        &mut first.browser(),
        "nobody-else@example.com",
        PASSWORD,
        401,
    )
    .await;
    sign_in(&mut first.browser(), "sweep@example.com", PASSWORD, 303).await;
    let fresh_counters: Vec<_> = throttle_rows(&first.db)
        .await
        .into_iter()
        .filter(|(_, start)| *start > clock.now_ms() - 60 * 60 * 1000)
        .collect();
    assert!(!fresh_counters.is_empty());
    assert!(
        old_counters
            .iter()
            .any(|(bucket, _)| fresh_counters.iter().all(|(fresh, _)| fresh != bucket)),
        "some counter is left only from 38 days ago: {old_counters:?} {fresh_counters:?}"
    );
    first.stop().await;

    // The next start sweeps at once (then hourly): only the old rows go.
    let second = ctx.start_with_clock(config, clock).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let counters = throttle_rows(&second.db).await;
        let sessions = session_ids(&second.db).await;
        // The counters from 38 days ago are gone, the fresh ones stay; the expired session is
        // gone, the live one stays.
        if counters == fresh_counters && !sessions.iter().any(|id| old_sessions.contains(id)) {
            assert_eq!(sessions.len(), 1, "the live session stays: {sessions:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not swept: {counters:?} {sessions:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    second.stop().await;
}

/// Every throttle counter as (bucket, window start), sorted.
async fn throttle_rows(db: &latchkey_store::Db) -> Vec<(String, i64)> {
    let mut tx = db.begin_read().await.unwrap();
    let q = tx.query("SELECT bucket, window_start FROM identity_throttles ORDER BY bucket");
    let rows = tx
        .fetch_all(q)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("bucket").unwrap(),
                r.try_get("window_start").unwrap(),
            )
        })
        .collect();
    tx.commit().await.unwrap();
    rows
}

/// Every session id, sorted.
async fn session_ids(db: &latchkey_store::Db) -> Vec<String> {
    let mut tx = db.begin_read().await.unwrap();
    let q = tx.query("SELECT id FROM identity_sessions ORDER BY id");
    let ids = tx
        .fetch_all(q)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("id").unwrap())
        .collect();
    tx.commit().await.unwrap();
    ids
}
