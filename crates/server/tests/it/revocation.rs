//! Sign-out that takes effect everywhere: the app refuses a token of an ended, revoked or
//! removed session, or of a banned user, within 2 s, on every instance sharing the database,
//! for latchkey's sessions and for Clerk's (told by webhook); the identity's own `/v1/me`
//! refuses it at once. Entries are forgotten once the tokens they could refuse have expired.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_app::session::revocations::{KEEP_MS, PRUNE_EVERY_MS};
use latchkey_identity::flows::admin::{self, CreateUser};
use latchkey_identity::passwords::Password;
use latchkey_identity::sessions;
use latchkey_server::config::{ClerkSettings, Secret};
use latchkey_store::Row as _;
use latchkey_testkit::browser::Browser;
use latchkey_testkit::clerk::{Signer, event, user as clerk_user};
use latchkey_testkit::fake_clerk::FakeClerk;
use latchkey_testkit::{TestApp, TestContext};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "revoked tokens stay revoked";
/// The bound: refused within 2 s of the change.
const WITHIN: Duration = Duration::from_secs(2);

/// An operator-made account (its address verified) that signs in with [`PASSWORD`]; its id.
async fn account(app: &TestApp, email: &str) -> String {
    admin::create_user(
        &app.identity,
        CreateUser {
            email_address: Some(email.to_owned()),
            password: Some(Password::new(PASSWORD)),
            ..CreateUser::default()
        },
    )
    .await
    .unwrap()
    .id
}

/// A browser signed in as `email` through the page: a new session.
async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let mut browser = app.browser();
    browser
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email_address", email), ("password", PASSWORD)],
            303,
        )
        .await;
    assert!(browser.cookie("__session").is_some(), "signed in");
    browser
}

fn token(browser: &Browser) -> String {
    browser.cookie("__session").unwrap().to_owned()
}

/// The `sid` of a session token (unverified).
fn sid(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// The app's answer to `GET /api/session` with `token` as a bearer: the status and, for a
/// refusal, its code.
async fn app_answer(app: &TestApp, token: &str) -> (u16, Option<String>) {
    let reply = app.get("/api/session").bearer(token).send().await;
    let status = reply.status.as_u16();
    let code = (status != 200).then(|| {
        let body: Value = reply.json();
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    (status, code)
}

async fn accepted(app: &TestApp, token: &str) {
    assert_eq!(app_answer(app, token).await, (200, None), "accepted");
}

/// Waits until `app` refuses `token` as revoked, failing after [`WITHIN`]; how long it took.
async fn refused_within(app: &TestApp, token: &str, since: Instant) -> Duration {
    loop {
        match app_answer(app, token).await {
            (401, Some(code)) if code == "session_revoked" => return since.elapsed(),
            (200, None) => {}
            other => panic!("expected 200 or a revocation, got {other:?}"),
        }
        assert!(
            since.elapsed() < WITHIN,
            "the token was still accepted {WITHIN:?} after the change"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET /v1/me` with `token` as a bearer; the status.
async fn identity_answer(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/me").bearer(token).send().await.status.as_u16()
}

/// Rows in the app's revocation table.
async fn revocation_rows(app: &TestApp) -> Vec<(String, String)> {
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query("SELECT kind, subject FROM app_revocations ORDER BY seq");
    let rows = tx.fetch_all(q).await.unwrap();
    tx.commit().await.unwrap();
    rows.iter()
        .map(|r| (r.try_get("kind").unwrap(), r.try_get("subject").unwrap()))
        .collect()
}

async fn secret_key(app: &TestApp) -> String {
    latchkey_identity::secret_keys::create_secret_key(&app.identity)
        .await
        .unwrap()
}

/// `config` for another instance on the same database (and so the same master secret).
fn another_instance(
    ctx: &TestContext,
    config: &latchkey_server::config::Config,
) -> latchkey_server::config::Config {
    let mut other = config.clone();
    other.addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    other.data_dir = ctx.temp_dir();
    std::fs::copy(
        config.data_dir.join("master.key"),
        other.data_dir.join("master.key"),
    )
    .unwrap();
    other
}

pub async fn a_session_revoked_on_one_instance_is_refused_by_another_within_two_seconds(
    ctx: TestContext,
) {
    // Instances behind one address: one public URL (the tokens' issuer), A's.
    let mut config = ctx.fresh_config().await;
    let port = latchkey_testkit::pgbouncer::free_port();
    config.addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.public_url = Some(format!("http://127.0.0.1:{port}").parse().unwrap());
    let a = ctx.start(config.clone()).await;
    let b = ctx.start(another_instance(&ctx, &config)).await;
    let key = secret_key(&a).await;
    account(&a, "two@example.com").await;
    let revoked = token(&signed_in(&a, "two@example.com").await);
    let kept = token(&signed_in(&a, "two@example.com").await);
    for instance in [&a, &b] {
        accepted(instance, &revoked).await;
        accepted(instance, &kept).await;
    }
    assert_eq!(identity_answer(&a, &revoked).await, 200);

    let started = Instant::now();
    a.request(
        Method::POST,
        &format!("/v1/sessions/{}/revoke", sid(&revoked)),
    )
    .bearer(&key)
    .expect(200)
    .await;
    // The identity knows at once, on every instance: its own endpoint reads the session.
    for instance in [&a, &b] {
        assert_eq!(identity_answer(instance, &revoked).await, 401);
    }
    refused_within(&b, &revoked, started).await;
    refused_within(&a, &revoked, started).await;
    // Pages send the holder of the revoked token to sign in, as for an invalid one.
    let mut holder = Browser::new(&b.url);
    holder
        .cookies
        .insert("__session".to_owned(), revoked.clone());
    let reply = holder.get("/dashboard", 303).await;
    assert!(
        reply.header("location").unwrap().starts_with("/sign-in"),
        "{reply:?}"
    );
    // The user's other session is not affected.
    for instance in [&a, &b] {
        accepted(instance, &kept).await;
        assert_eq!(identity_answer(instance, &kept).await, 200);
    }
    // An instance started later reads what was revoked before it served anything.
    let c = ctx.start(another_instance(&ctx, &config)).await;
    assert_eq!(
        app_answer(&c, &revoked).await,
        (401, Some("session_revoked".to_owned()))
    );
    accepted(&c, &kept).await;
    assert_eq!(
        revocation_rows(&a).await,
        vec![("session".to_owned(), sid(&revoked))],
        "recorded once, although every instance receives and reads it"
    );
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

pub async fn sign_out_a_password_change_and_a_ban_each_end_the_apps_acceptance(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let user_id = account(&app, "ends@example.com").await;
    account(&app, "bystander@example.com").await;
    let bystander = token(&signed_in(&app, "bystander@example.com").await);

    // Signing out.
    let mut leaving = signed_in(&app, "ends@example.com").await;
    let signed_out = token(&leaving);
    accepted(&app, &signed_out).await;
    let started = Instant::now();
    leaving.submit("/user", "/sign-out", &[], 303).await;
    assert_eq!(identity_answer(&app, &signed_out).await, 401);
    refused_within(&app, &signed_out, started).await;

    // A password change ends every other session, not the one that made it.
    let mut changing = signed_in(&app, "ends@example.com").await;
    let other = token(&signed_in(&app, "ends@example.com").await);
    accepted(&app, &other).await;
    let started = Instant::now();
    changing
        .submit(
            "/user",
            "/user/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "another long passphrase"),
            ],
            303,
        )
        .await;
    refused_within(&app, &other, started).await;
    let changer = token(&changing);
    accepted(&app, &changer).await;
    assert_eq!(identity_answer(&app, &changer).await, 200);

    // A ban through the management API ends the rest.
    let started = Instant::now();
    app.request(Method::POST, &format!("/v1/users/{user_id}/ban"))
        .bearer(&key)
        .expect(200)
        .await;
    refused_within(&app, &changer, started).await;
    assert_eq!(identity_answer(&app, &changer).await, 401);

    accepted(&app, &bystander).await;
    // The ban's user row refuses first; the session.revoked events it also sent may land a
    // moment later.
    let expected = [
        ("session".to_owned(), sid(&signed_out)),
        ("session".to_owned(), sid(&other)),
        ("session".to_owned(), sid(&changer)),
        ("user".to_owned(), user_id.clone()),
    ];
    let rows = crate::support::eventually(
        std::time::Duration::from_secs(5),
        "every ended session and the ban recorded",
        || revocation_rows(&app),
        |rows| expected.iter().all(|e| rows.contains(e)),
    )
    .await;
    assert!(!rows.iter().any(|(_, subject)| *subject == sid(&bystander)));
    app.stop().await;
}

fn clerk_settings(fake: &FakeClerk) -> ClerkSettings {
    ClerkSettings {
        publishable_key: None,
        secret_key: Some(Secret(fake.secret_key.clone())),
        jwt_key: None,
        api_url: fake.url.clone(),
        sign_in_url: Some("https://accounts.fake.example/sign-in".to_owned()),
        account_url: None,
        identity_shadow: false,
    }
}

/// A `session.*` event for Clerk's session `sid` of `user_id`.
fn session_event(kind: &str, sid: &str, user_id: &str, status: &str) -> Value {
    let now = latchkey_protocol::time::now_ms();
    event(
        kind,
        json!({
            "object": "session", "id": sid, "user_id": user_id, "client_id": "client_fake",
            "status": status, "last_active_at": now, "expire_at": now + 86_400_000,
            "abandon_at": now + 86_400_000, "created_at": now - 60_000, "updated_at": now
        }),
        now,
    )
}

pub async fn clerk_session_ends_and_bans_told_by_webhook_are_refused(ctx: TestContext) {
    let fake = FakeClerk::start(2, None).await;
    let signer = Signer::new();
    let secret = signer.secret.clone();
    let app = ctx
        .spawn_with(|c| {
            c.clerk = Some(clerk_settings(&fake));
            c.internal_webhook = false;
            c.clerk_webhook_signing_secrets = vec![secret];
        })
        .await;
    let (user, bystander) = ("user_fake000000", "user_fake000001");
    let now = latchkey_protocol::time::now_secs();
    let revoked = fake.mint_session(user, "sess_clerkrevoked", now);
    let other = fake.mint_session(user, "sess_clerkother", now);
    let unrelated = fake.mint_session(bystander, "sess_clerkbystander", now);
    for token in [&revoked, &other, &unrelated] {
        accepted(&app, token).await;
    }

    for (kind, status) in [
        ("session.revoked", "revoked"),
        ("session.created", "active"),
    ] {
        let started = Instant::now();
        let body = session_event(kind, "sess_clerkrevoked", user, status);
        let receipt: Value = app
            .deliver(&signer, &format!("msg_{status}"), &body)
            .expect(200)
            .await
            .json();
        if kind == "session.revoked" {
            assert_eq!(receipt["outcome"], "applied");
            refused_within(&app, &revoked, started).await;
        } else {
            assert_eq!(receipt["outcome"], "ignored");
        }
    }
    // A redelivery of the same message records nothing more.
    let again: Value = app
        .deliver(
            &signer,
            "msg_revoked",
            &session_event("session.revoked", "sess_clerkrevoked", user, "revoked"),
        )
        .expect(200)
        .await
        .json();
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(revocation_rows(&app).await.len(), 1);
    accepted(&app, &other).await;

    // A ban (Clerk's User JSON with `banned: true`) refuses every token issued up to it.
    let banned_at = (now + 1) * 1000;
    let mut banned = clerk_user(user, banned_at, "fake0@example.com", "Fake");
    banned["banned"] = json!(true);
    let started = Instant::now();
    let receipt: Value = app
        .deliver(
            &signer,
            "msg_ban",
            &event("user.updated", banned, banned_at),
        )
        .expect(200)
        .await
        .json();
    assert_eq!(receipt["outcome"], "applied");
    refused_within(&app, &other, started).await;
    // Not a token minted after it (an unbanned user signing in again), nor another user's.
    accepted(&app, &fake.mint_session(user, "sess_clerklater", now + 2)).await;
    accepted(&app, &unrelated).await;
    assert_eq!(
        revocation_rows(&app).await,
        vec![
            ("session".to_owned(), "sess_clerkrevoked".to_owned()),
            ("user".to_owned(), user.to_owned())
        ]
    );
    app.stop().await;
}

pub async fn revocations_are_forgotten_once_their_tokens_have_expired(ctx: TestContext) {
    let config = ctx.fresh_config().await;
    let app = ctx.start(config.clone()).await;
    let key = secret_key(&app).await;
    account(&app, "forget@example.com").await;
    let revoked = token(&signed_in(&app, "forget@example.com").await);
    let sid = sid(&revoked);
    app.request(Method::POST, &format!("/v1/sessions/{sid}/revoke"))
        .bearer(&key)
        .expect(200)
        .await;
    refused_within(&app, &revoked, Instant::now()).await;
    // A token of that session minted now, as a race with the revocation could have minted it.
    let session = {
        let mut tx = app.db.begin_read().await.unwrap();
        let session = sessions::get(&mut tx, &sid).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        session
    };
    let late = sessions::token::mint_session_token(&app.identity, &session).await;
    assert_eq!(
        app_answer(&app, &late).await,
        (401, Some("session_revoked".to_owned()))
    );

    // A restart on a clock moved to just before the entry runs out still refuses it.
    let clock = app.clock().clone();
    app.stop().await;
    clock.advance(Duration::from_millis(
        u64::try_from(KEEP_MS - 5_000).unwrap(),
    ));
    let app = ctx.start_with_clock(config, clock.clone()).await;
    let late = sessions::token::mint_session_token(&app.identity, &session).await;
    assert_eq!(
        app_answer(&app, &late).await,
        (401, Some("session_revoked".to_owned()))
    );
    assert_eq!(revocation_rows(&app).await.len(), 1, "kept while it counts");

    // Past it, every token the session had has expired; the entry goes, and its row at the
    // next deletion of expired rows.
    clock.advance(Duration::from_secs(6));
    let late = sessions::token::mint_session_token(&app.identity, &session).await;
    accepted(&app, &late).await;
    clock.advance(Duration::from_millis(
        u64::try_from(PRUNE_EVERY_MS).unwrap(),
    ));
    let started = Instant::now();
    while !revocation_rows(&app).await.is_empty() {
        assert!(
            started.elapsed() < WITHIN,
            "the expired row was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}
