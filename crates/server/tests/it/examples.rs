//! The example apps in `examples/` (Next.js on Clerk's own SDK, `@clerk/nextjs` 6 and 7) built
//! with `next build`, started with `next start` beside latchkey and configured only by
//! environment variables: their server half against latchkey's Backend API, tokens and
//! webhooks (`verifyWebhook` from `@clerk/nextjs/webhooks` upserting and deleting the app's
//! own row; `auth()` and `currentUser()` in a route handler and the protected dashboard).
//! Each runs once (SQLite): the apps do not touch latchkey's database, and a build costs
//! about a minute.

pub mod browser;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use latchkey_testkit::nextjs::{self, Example, FrontDoor, NextServer};
use latchkey_testkit::{TestApp, TestContext};
use reqwest::Method;
use serde_json::{Value, json};

use crate::bapi::{call, secret_key};
use crate::identity::{claims, sign_up};

/// The host the publishable key names (the Frontend API's host; with a path `proxyUrl` the
/// browser never dials it).
pub const FRONTEND_HOST: &str = "clerk.latchkey.localhost";

/// `pk_live_` + base64(`<host>$`), padding dropped, as Clerk encodes publishable keys.
#[must_use]
pub fn publishable_key() -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("{FRONTEND_HOST}$"));
    format!("pk_live_{encoded}")
}

/// The build-time environment (Next.js bakes `NEXT_PUBLIC_*` into the bundles): the same for
/// every run, so one build serves every test. Every URL is a path on the app's origin, whose
/// `/fapi/` goes to latchkey.
#[must_use]
pub fn build_env(example: Example) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY", publishable_key()),
        ("NEXT_PUBLIC_CLERK_PROXY_URL", "/fapi".to_owned()),
        ("NEXT_PUBLIC_CLERK_SIGN_IN_URL", "/sign-in".to_owned()),
        ("NEXT_PUBLIC_CLERK_SIGN_UP_URL", "/sign-up".to_owned()),
        ("NEXT_PUBLIC_CLERK_TELEMETRY_DISABLED", "1".to_owned()),
        ("NEXT_PUBLIC_CLERK_KEYLESS_DISABLED", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if example == Example::Core2 {
        // Core 2 builds the script's URL as https://<proxy host>/…; on plain http the path
        // is given instead.
        env.insert(
            "NEXT_PUBLIC_CLERK_JS_URL".to_owned(),
            "/fapi/npm/@clerk/clerk-js@5/dist/clerk.browser.js".to_owned(),
        );
    }
    env
}

/// An example app built and running beside `app`, behind a front door at `front.url`, with
/// a webhook endpoint on latchkey pointing at its `/api/webhooks/clerk`.
pub struct RunningExample {
    pub front: FrontDoor,
    pub next: NextServer,
    pub users_file: std::path::PathBuf,
    pub secret_key: String,
}

/// Builds (once) and starts `example` beside `app` with the run-time environment a deployment
/// would set: the secret key, the Backend API's URL and the webhook signing secret.
/// `front` routes `/fapi/` to `app` from here on, the rest to the example.
pub async fn start_example(
    ctx: &TestContext,
    app: &TestApp,
    example: Example,
    front: FrontDoor,
) -> RunningExample {
    let env = build_env(example);
    let for_build = env.clone();
    tokio::task::spawn_blocking(move || nextjs::build(example, &for_build))
        .await
        .unwrap();
    front.route_latchkey_to(app.addr);
    let key = secret_key(app).await;
    let endpoint: Value = call(app, Method::POST, "/v1/webhook_endpoints", &key)
        .json(&json!({
            "url": format!("http://127.0.0.1:{}/api/webhooks/clerk", front.addr.port()),
            "events": ["user.created", "user.updated", "user.deleted"],
        }))
        .expect(200)
        .await
        .json();
    let dir = ctx.temp_dir();
    let users_file = dir.join("users.json");
    let mut run_env = env;
    for (name, value) in [
        ("CLERK_SECRET_KEY", key.clone()),
        ("CLERK_API_URL", app.url.clone()),
        (
            "CLERK_WEBHOOK_SIGNING_SECRET",
            endpoint["secret"].as_str().unwrap().to_owned(),
        ),
        ("USERS_FILE", users_file.display().to_string()),
    ] {
        run_env.insert(name.to_owned(), value);
    }
    let next = NextServer::start(example, &run_env, dir.join("next.log")).await;
    front.route_app_to(next.addr);
    RunningExample {
        front,
        next,
        users_file,
        secret_key: key,
    }
}

/// The app's users table (its JSON file), empty before the first write.
pub fn stored_users(file: &Path) -> Value {
    std::fs::read_to_string(file)
        .ok()
        .map_or_else(|| json!({}), |text| serde_json::from_str(&text).unwrap())
}

/// Waits up to 15 s (the first delivery waits for the worker's poll) until the app's row for
/// `user_id` satisfies `check`.
pub async fn stored_row_within(
    running: &RunningExample,
    user_id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let row = stored_users(&running.users_file)[user_id].clone();
        if check(&row) {
            return row;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the app's row never showed {what}: {row}\nnext's log:\n{}",
            running.next.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the two events a sign-up sends (`user.created` when the form is sent,
/// `user.updated` when the code verifies the address) to reach the app's row for `user_id`,
/// in either order: deliveries run concurrently, as Svix's do, and the examples' receiver
/// (written as Clerk's guides write it) applies whatever arrives. Waiting for both keeps the
/// sign-up's `user.updated` from landing after a later change the caller checks.
pub async fn signed_up_row_within(running: &RunningExample, user_id: &str, email: &str) -> Value {
    stored_row_within(running, user_id, "user.created and user.updated", |row| {
        let applied = |event: &str| {
            row["events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e == event))
        };
        applied("user.created") && applied("user.updated") && row["email"] == email
    })
    .await
}

async fn server_half(ctx: TestContext, example: Example) {
    let app = ctx
        .spawn_with(|c| {
            c.webhook_allow_private_networks = true;
            c.internal_webhook = false;
        })
        .await;
    let front = FrontDoor::start(&["/fapi/"]).await;
    let running = start_example(&ctx, &app, example, front).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let at = |path: &str| format!("{}{path}", running.front.url);

    // user.created and user.updated, signed by latchkey, verified by verifyWebhook, upserted.
    let email = "ada@example.com";
    let browser = sign_up(&app, email).await;
    let token = browser.cookie("__session").unwrap().to_owned();
    let user_id = claims(&token)["sub"].as_str().unwrap().to_owned();
    signed_up_row_within(&running, &user_id, email).await;

    // auth() and currentUser() in the route handler, with the session token as a bearer.
    let me: Value = http
        .get(at("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["userId"], user_id.as_str(), "{me}");
    assert_eq!(
        me["email"], email,
        "currentUser() through CLERK_API_URL: {me}"
    );
    assert_eq!(me["stored"]["clerkUserId"], user_id.as_str());
    let anonymous = http.get(at("/api/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    // The same token with one character of its signature changed.
    let mut broken = token.clone().into_bytes();
    let at_signature = token.rfind('.').unwrap() + 10;
    broken[at_signature] = if broken[at_signature] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let forged = http
        .get(at("/api/me"))
        .bearer_auth(String::from_utf8(broken).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "a token with a broken signature");

    // The protected dashboard renders the user on the server.
    let dashboard = http
        .get(at("/dashboard"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains(&user_id), "the dashboard shows auth()'s user");
    let signed_out = http.get(at("/dashboard")).send().await.unwrap();
    assert!(
        signed_out.status().is_redirection() || signed_out.status() == 404,
        "the dashboard without a session: {}",
        signed_out.status()
    );

    // user.updated reaches the row; a forged delivery changes nothing.
    call(
        &app,
        Method::PATCH,
        &format!("/v1/users/{user_id}"),
        &running.secret_key,
    )
    .json(&json!({"first_name": "Grace"}))
    .expect(200)
    .await;
    stored_row_within(&running, &user_id, "user.updated", |row| {
        row["lastEvent"] == "user.updated" && row["firstName"] == "Grace"
    })
    .await;
    let before = stored_users(&running.users_file);
    let forged = http
        .post(at("/api/webhooks/clerk"))
        .header("content-type", "application/json")
        .header("svix-id", "msg_forged")
        .header(
            "svix-timestamp",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                .to_string(),
        )
        .header("svix-signature", "v1,bm90IGEgc2lnbmF0dXJl")
        .body(
            json!({"type": "user.deleted", "object": "event", "data": {"id": user_id, "deleted": true}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert_eq!(stored_users(&running.users_file), before);

    // user.deleted removes the row.
    call(
        &app,
        Method::DELETE,
        &format!("/v1/users/{user_id}"),
        &running.secret_key,
    )
    .expect(200)
    .await;
    let started = Instant::now();
    while stored_users(&running.users_file).get(&user_id).is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "user.deleted never removed the row"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(running);
    app.stop().await;
}

pub async fn the_core2_example_verifies_latchkeys_webhooks_and_session_tokens(ctx: TestContext) {
    server_half(ctx, Example::Core2).await;
}

pub async fn the_core3_example_verifies_latchkeys_webhooks_and_session_tokens(ctx: TestContext) {
    server_half(ctx, Example::Core3).await;
}
