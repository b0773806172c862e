//! The identity part through its pages and API: sign-up, sign-in, sessions, tokens, abuse.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_store::Row as _;
use latchkey_testkit::browser::{Browser, csrf_token};
use latchkey_testkit::{TestApp, TestContext};
use serde_json::Value;

use crate::support::{finish, latchkey};

pub const PASSWORD: &str = "correct horse battery staple";

/// Signs up through the page and enters the code mailed to the dev mailbox; the browser ends
/// up signed in.
pub async fn sign_up(app: &TestApp, email: &str) -> Browser {
    let mut browser = app.browser();
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
    assert!(
        browser.cookie("__client").is_none(),
        "no session before the code"
    );
    let reply = enter_code(&mut browser, &app.code_for(email).await, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert!(browser.cookie("__client").is_some() && browser.cookie("__session").is_some());
    browser
}

/// Enters `code` on `/verify`, expecting `status`.
pub async fn enter_code(browser: &mut Browser, code: &str, status: u16) -> latchkey_testkit::Reply {
    browser
        .submit("/verify", "/verify", &[("code", code)], status)
        .await
}

/// Signs in through the page with `password`, expecting `status`.
pub async fn sign_in(
    browser: &mut Browser,
    email: &str,
    password: &str,
    status: u16,
) -> latchkey_testkit::Reply {
    browser
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email_address", email), ("password", password)],
            status,
        )
        .await
}

/// The decoded payload of a JWT (unverified).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// The text of the page's error box.
fn error_text(html: &str) -> String {
    let start = html
        .find("id=\"form-error\">")
        .map(|i| i + "id=\"form-error\">".len())
        .unwrap_or(0);
    let end = html[start..].find("</p>").map_or(html.len(), |i| start + i);
    html[start..end].to_owned()
}

pub async fn a_session_token_from_the_pages_verifies_with_a_standard_jose_library(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    let browser = sign_up(&app, "jose@example.com").await;
    let token = browser.cookie("__session").unwrap().to_owned();
    let out = latchkey_testkit::interop::node(
        "jose-verify.mjs",
        &[&format!("{}/.well-known/jwks.json", app.url), &token],
        b"",
    )
    .await;
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    let payload = &verified["payload"];
    let me: Value = browser
        .request(reqwest::Method::GET, "/v1/me")
        .expect(200)
        .await
        .json();
    assert_eq!(payload["sub"], me["id"]);
    assert!(payload["sid"].as_str().unwrap().starts_with("sess_"));
    assert_eq!(payload["iss"], app.url.as_str());
    assert_eq!(payload["azp"], app.url.as_str());
    assert_eq!(payload["v"], 2);
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        60
    );
    assert!(payload["nbf"].as_i64().unwrap() <= payload["iat"].as_i64().unwrap());
    assert_eq!(verified["header"]["alg"], "RS256");
    let jwks: Value = app.get("/.well-known/jwks.json").expect(200).await.json();
    assert_eq!(verified["header"]["kid"], jwks["keys"][0]["kid"]);
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    // A 2048-bit modulus is 256 bytes: 342 base64url characters.
    assert_eq!(jwks["keys"][0]["n"].as_str().unwrap().len(), 342);
    let cookie_flags = browser.cookie("__client").unwrap();
    assert_eq!(cookie_flags.len(), 43);
    app.stop().await;
}

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

pub async fn forms_without_a_csrf_token_or_from_other_sites_are_refused(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = sign_up(&app, "csrf@example.com").await;
    let page = browser.get("/user", 200).await;
    let token = csrf_token(&page.text());
    // No token.
    browser
        .post_form("/user/delete", &[("confirmation", "DELETE")], 403)
        .await;
    // A token from another browser.
    let mut stranger = app.browser();
    let other = csrf_token(&stranger.get("/sign-in", 200).await.text());
    browser
        .post_form(
            "/user/delete",
            &[("csrf_token", &other), ("confirmation", "DELETE")],
            403,
        )
        .await;
    // The right token, but posted from another site.
    let reply = browser
        .request(reqwest::Method::POST, "/user/delete")
        .header("origin", "https://evil.example")
        .form(&[("csrf_token", token.as_str()), ("confirmation", "DELETE")])
        .expect(403)
        .await;
    assert!(reply.text().contains("another site"));
    assert!(reply.text().contains("<h1>Request refused</h1>"));
    browser
        .request(reqwest::Method::POST, "/user/delete")
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf_token", token.as_str()), ("confirmation", "DELETE")])
        .expect(403)
        .await;
    // Sign-in forms too.
    stranger
        .post_form(
            "/sign-in",
            &[
                ("email_address", "csrf@example.com"),
                ("password", PASSWORD),
            ],
            403,
        )
        .await;
    // The account survived all of it.
    browser
        .request(reqwest::Method::GET, "/v1/me")
        .expect(200)
        .await;
    app.stop().await;
}

pub async fn redirect_urls_to_other_sites_are_ignored(ctx: TestContext) {
    let app = ctx.spawn().await;
    sign_up(&app, "redirect@example.com").await;
    for (target, expected) in [
        ("https://evil.example", "/"),
        ("//evil.example/path", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        // Same origin, but the path resolves to `//evil.example`: another host to a browser.
        (&format!("{}//evil.example", app.url), "/"),
        ("/.//evil.example", "/"),
        ("/a/..//evil.example", "/"),
        ("/dashboard?tab=notes", "/dashboard?tab=notes"),
        (&format!("{}/settings", app.url), "/settings"),
    ] {
        // Signed in already: the sign-in and sign-up pages send the browser straight on.
        let mut signed_in = app.browser();
        sign_in(&mut signed_in, "redirect@example.com", PASSWORD, 303).await;
        for page in ["/sign-in", "/sign-up"] {
            let reply = signed_in
                .get(&format!("{page}?redirect_url={}", urlencode(target)), 303)
                .await;
            assert_eq!(
                reply.header("location"),
                Some(expected),
                "{page} signed in, redirect_url={target}"
            );
        }
        let mut browser = app.browser();
        let page = browser
            .get(&format!("/sign-in?redirect_url={}", urlencode(target)), 200)
            .await;
        assert!(
            !page.text().contains("evil.example"),
            "the form does not carry {target}"
        );
        let token = csrf_token(&page.text());
        let reply = browser
            .post_form(
                "/sign-in",
                &[
                    ("csrf_token", &token),
                    ("redirect_url", target),
                    ("email_address", "redirect@example.com"),
                    ("password", PASSWORD),
                ],
                303,
            )
            .await;
        assert_eq!(
            reply.header("location"),
            Some(expected),
            "redirect_url={target}"
        );
    }
    app.stop().await;
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub async fn signing_in_again_issues_a_new_session_and_ends_the_old_one(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = sign_up(&app, "fixation@example.com").await;
    let first_client = browser.cookie("__client").unwrap().to_owned();
    let first_sid = claims(browser.cookie("__session").unwrap())["sid"].clone();
    // Signed-in browsers are sent away from /sign-in, so post the form directly, as a planted
    // session's victim would.
    let token = csrf_token(&browser.get("/user", 200).await.text());
    browser
        .post_form(
            "/sign-in",
            &[
                ("csrf_token", &token),
                ("email_address", "fixation@example.com"),
                ("password", PASSWORD),
            ],
            303,
        )
        .await;
    let second_sid = claims(browser.cookie("__session").unwrap())["sid"].clone();
    assert_ne!(first_sid, second_sid);
    assert_ne!(browser.cookie("__client").unwrap(), first_client);
    // The old handle no longer opens anything.
    let mut old = app.browser();
    old.cookies.insert("__client".to_owned(), first_client);
    let reply = old.get("/user", 303).await;
    assert!(reply.header("location").unwrap().starts_with("/sign-in"));
    browser.get("/user", 200).await;
    app.stop().await;
}

pub async fn a_password_change_ends_every_other_session(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut here = sign_up(&app, "change@example.com").await;
    let mut there = app.browser();
    sign_in(&mut there, "change@example.com", PASSWORD, 303).await;
    there.get("/user", 200).await;

    here.submit(
        "/user",
        "/user/password",
        &[
            ("current_password", "wrong one!"),
            ("new_password", "a brand new passphrase"),
        ],
        401,
    )
    .await;
    here.submit(
        "/user",
        "/user/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new passphrase"),
        ],
        303,
    )
    .await;
    here.get("/user", 200).await;
    let reply = there.get("/user", 303).await;
    assert!(reply.header("location").unwrap().starts_with("/sign-in"));
    // And it cannot get a fresh token either.
    there.cookies.remove("__session");
    there
        .request(reqwest::Method::POST, "/v1/client/session-token")
        .expect(401)
        .await;
    // The new password works, the old one does not.
    let mut fresh = app.browser();
    sign_in(&mut fresh, "change@example.com", PASSWORD, 401).await;
    sign_in(
        &mut fresh,
        "change@example.com",
        "a brand new passphrase",
        303,
    )
    .await;
    app.stop().await;
}

pub async fn a_revoked_session_stops_at_once_and_gets_no_new_token(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut here = sign_up(&app, "revoke@example.com").await;
    let mut there = app.browser();
    sign_in(&mut there, "revoke@example.com", PASSWORD, 303).await;
    let there_sid = claims(there.cookie("__session").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let page = here.get("/user", 200).await;
    assert!(
        page.text().contains(&there_sid),
        "the other session is listed"
    );
    assert!(page.text().contains("Chrome on Linux") && page.text().contains("127.0.0.1"));
    here.submit(
        "/user",
        "/user/sessions/revoke",
        &[("session_id", &there_sid)],
        303,
    )
    .await;

    // The __client cookie is dead at once.
    let reply = there.get("/user", 303).await;
    assert!(reply.header("location").unwrap().starts_with("/sign-in"));
    // Without a valid __session, no new one is minted; the cookies are cleared instead.
    let mut there = app.browser();
    there
        .cookies
        .insert("__client".to_owned(), reply_client(&here, &app).await);
    let reply = there.get("/healthz", 200).await;
    assert!(
        reply
            .headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("__session=ey"))
    );
    here.get("/user", 200).await;
    app.stop().await;
}

/// A `__client` value that was revoked: sign in a third browser, revoke it from `owner`.
async fn reply_client(owner: &Browser, app: &TestApp) -> String {
    let mut third = app.browser();
    let email = {
        let me: Value = owner
            .request(reqwest::Method::GET, "/v1/me")
            .expect(200)
            .await
            .json();
        me["email_addresses"][0]["email_address"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    sign_in(&mut third, &email, PASSWORD, 303).await;
    let client = third.cookie("__client").unwrap().to_owned();
    let sid = claims(third.cookie("__session").unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut owner = owner.clone();
    owner
        .submit(
            "/user",
            "/user/sessions/revoke",
            &[("session_id", &sid)],
            303,
        )
        .await;
    client
}

pub async fn forged_and_foreign_tokens_are_refused(ctx: TestContext) {
    let app = ctx.spawn().await;
    let browser = sign_up(&app, "tokens@example.com").await;
    let token = browser.cookie("__session").unwrap().to_owned();
    app.get("/v1/me").bearer(&token).expect(200).await;

    let parts: Vec<&str> = token.split('.').collect();
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let mut payload = claims(&token);
    payload["sub"] = Value::String("user_someone_else".to_owned());
    let tampered = format!("{}.{}.{}", parts[0], encode(&payload), parts[2]);
    let mut none_header = header(&token);
    none_header["alg"] = Value::String("none".to_owned());
    let alg_none = format!("{}.{}.", encode(&none_header), parts[1]);
    let mut hs_header = header(&token);
    hs_header["alg"] = Value::String("HS256".to_owned());
    let hs256 = {
        use hmac::{KeyInit as _, Mac as _};
        let jwks = app.get("/.well-known/jwks.json").expect(200).await.text();
        let signing_input = format!("{}.{}", encode(&hs_header), parts[1]);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(jwks.as_bytes()).unwrap();
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let mut kid_header = header(&token);
    kid_header["kid"] = Value::String("ins_unknown".to_owned());
    let wrong_kid = format!("{}.{}.{}", encode(&kid_header), parts[1], parts[2]);
    for (name, forged, code) in [
        ("tampered", tampered.as_str(), "token_signature"),
        ("alg none", alg_none.as_str(), "token_algorithm"),
        ("HS256", hs256.as_str(), "token_algorithm"),
        ("wrong kid", wrong_kid.as_str(), "token_unknown_key"),
        ("garbage", "not.a.jwt", "token_malformed"),
    ] {
        let error: Value = app.get("/v1/me").bearer(forged).expect(401).await.json();
        assert_eq!(error["error"]["code"], code, "{name}: {error}");
        assert!(
            !error.to_string().contains(&token[..20]),
            "errors do not echo tokens"
        );
    }
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

pub async fn sign_up_refuses_weak_passwords(ctx: TestContext) {
    let app = ctx.spawn().await;
    for (email, password, status, message) in [
        ("new@example.com", "short", 422, "at least 8"),
        ("new@example.com", "password123", 422, "common"),
        ("new@example.com", "new@example.com", 422, ""),
        ("not an email", PASSWORD, 422, "valid email"),
    ] {
        let mut browser = app.browser();
        let reply = browser
            .submit(
                "/sign-up",
                "/sign-up",
                &[("email_address", email), ("password", password)],
                status,
            )
            .await;
        let text = error_text(&reply.text());
        assert!(text.contains(message), "{email}/{password}: {text}");
        assert!(
            !reply.text().contains(password) || password == email,
            "the password is not echoed back"
        );
        assert!(browser.cookie("__client").is_none());
    }
    app.stop().await;
}

pub async fn the_account_page_edits_the_profile_and_deletes_the_account(ctx: TestContext) {
    let app = ctx.spawn().await;
    let mut browser = sign_up(&app, "page@example.com").await;
    browser
        .submit(
            "/user",
            "/user/profile",
            &[
                ("first_name", "Grace"),
                ("last_name", "Hopper"),
                ("username", "grace_h"),
                ("image_url", "https://img.example.com/g.png"),
            ],
            303,
        )
        .await;
    let me: Value = browser
        .request(reqwest::Method::GET, "/v1/me")
        .expect(200)
        .await
        .json();
    assert_eq!(
        (me["first_name"].as_str(), me["username"].as_str()),
        (Some("Grace"), Some("grace_h"))
    );
    assert_eq!(me["image_url"], "https://img.example.com/g.png");
    let reply = browser
        .submit("/user", "/user/profile", &[("username", "<b>x</b>")], 422)
        .await;
    assert!(
        !reply.text().contains("<b>x</b>"),
        "input is escaped when shown again"
    );

    browser
        .submit("/user", "/user/delete", &[("confirmation", "delete")], 422)
        .await;
    let reply = browser
        .submit("/user", "/user/delete", &[("confirmation", "DELETE")], 303)
        .await;
    assert_eq!(reply.header("location"), Some("/sign-in?notice=deleted"));
    assert!(browser.cookie("__client").is_none());
    let mut again = app.browser();
    sign_in(&mut again, "page@example.com", PASSWORD, 401).await;
    app.stop().await;
}

async fn cli(app: &TestApp, ctx: &TestContext, args: &[&str]) -> crate::support::Finished {
    let cwd = ctx.temp_dir();
    let mut command = latchkey(&cwd);
    command
        .args(args)
        .arg("--data-dir")
        .arg(&app.config.data_dir);
    command.env(
        "DATABASE_URL",
        app.config.database_url.expose_for_child_process(),
    );
    finish(command).await
}

pub async fn operators_manage_users_from_the_command_line(ctx: TestContext) {
    let app = ctx.spawn().await;
    let created = {
        let cwd = ctx.temp_dir();
        let mut command = latchkey(&cwd);
        command
            .args([
                "users",
                "create",
                "--email",
                "ops@example.com",
                "--first-name",
                "Op",
                "--password-stdin",
                "--json",
                "--data-dir",
            ])
            .arg(&app.config.data_dir)
            .env(
                "DATABASE_URL",
                app.config.database_url.expose_for_child_process(),
            )
            .stdin(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        {
            use tokio::io::AsyncWriteExt as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(format!("{PASSWORD}\n").as_bytes())
                .await
                .unwrap();
        }
        let output = child.wait_with_output().await.unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    assert_eq!(created["password_enabled"], true);

    let mut browser = app.browser();
    sign_in(&mut browser, "ops@example.com", PASSWORD, 303).await;

    let listed = cli(&app, &ctx, &["users", "list", "--json"]).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let listed: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed.len(), 1);

    let banned = cli(&app, &ctx, &["users", "ban", "ops@example.com", "--json"]).await;
    assert_eq!(banned.code, Some(0), "{}", banned.stderr);
    assert_eq!(
        serde_json::from_str::<Value>(&banned.stdout).unwrap()["banned"],
        true
    );
    // Banning ended the session, and signing in says why it fails.
    browser.get("/user", 303).await;
    let reply = sign_in(&mut browser, "ops@example.com", PASSWORD, 403).await;
    assert!(error_text(&reply.text()).contains("banned"));

    assert_eq!(
        cli(&app, &ctx, &["users", "unban", &id]).await.code,
        Some(0)
    );
    sign_in(&mut browser, "ops@example.com", PASSWORD, 303).await;
    let revoked = cli(&app, &ctx, &["users", "revoke-sessions", &id, "--json"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&revoked.stdout).unwrap()["revoked_sessions"],
        1
    );
    browser.get("/user", 303).await;

    let refused = cli(&app, &ctx, &["users", "delete", &id]).await;
    assert_eq!(refused.code, Some(2), "deleting needs --yes");
    assert_eq!(
        cli(&app, &ctx, &["users", "delete", &id, "--yes"])
            .await
            .code,
        Some(0)
    );
    assert_eq!(cli(&app, &ctx, &["users", "show", &id]).await.code, Some(3));
    app.stop().await;
}

pub async fn rotated_keys_keep_old_tokens_verifying(ctx: TestContext) {
    let app = ctx.spawn().await;
    let browser = sign_up(&app, "rotate@example.com").await;
    let old_token = browser.cookie("__session").unwrap().to_owned();
    let old_kid = header(&old_token)["kid"].as_str().unwrap().to_owned();
    let rotated = cli(&app, &ctx, &["keys", "rotate"]).await;
    assert_eq!(rotated.code, Some(0), "{}", rotated.stderr);
    // Another instance on the same database (same public URL, so the same issuer) starts with
    // both keys published, and, for the first minute, still signs with the old one: the new
    // key must reach every instance before a token signed with it does.
    let mut config = app.config.clone();
    config.public_url = Some(url::Url::parse(&app.url).unwrap());
    let second = ctx.start(config.clone()).await;
    let published = async |instance: &latchkey_testkit::TestApp| -> Vec<String> {
        let jwks: Value = instance
            .get("/.well-known/jwks.json")
            .expect(200)
            .await
            .json();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let kids = published(&second).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&old_kid));
    let staged_kid = kids.iter().find(|k| **k != old_kid).unwrap().clone();
    second.get("/v1/me").bearer(&old_token).expect(200).await;
    let signed_kid = async |instance: &latchkey_testkit::TestApp| -> String {
        let mut fresh = instance.browser();
        sign_in(&mut fresh, "rotate@example.com", PASSWORD, 303).await;
        header(fresh.cookie("__session").unwrap())["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        signed_kid(&second).await,
        old_kid,
        "not signing with the new key yet"
    );
    second.stop().await;

    // `--now` switches at once (the staged key never signs).
    let rotated = cli(&app, &ctx, &["keys", "rotate", "--now"]).await;
    assert_eq!(rotated.code, Some(0), "{}", rotated.stderr);
    let third = ctx.start(config).await;
    let kids = published(&third).await;
    assert_eq!(kids.len(), 3, "{kids:?}");
    let new_kid = signed_kid(&third).await;
    assert!(new_kid != old_kid && new_kid != staged_kid, "{new_kid}");
    third.get("/v1/me").bearer(&old_token).expect(200).await;
    third.stop().await;

    // Run with another master secret (here: a data directory without this one's master.key),
    // a rotation is refused and writes nothing.
    let stranger = ctx.temp_dir();
    let mut command = latchkey(&ctx.temp_dir());
    command
        .args(["keys", "rotate", "--data-dir"])
        .arg(&stranger)
        .env(
            "DATABASE_URL",
            app.config.database_url.expose_for_child_process(),
        );
    let refused = finish(command).await;
    assert_ne!(refused.code, Some(0), "{}", refused.stdout);
    assert!(
        refused.stderr.contains("another master secret"),
        "{}",
        refused.stderr
    );
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query(
        "SELECT count(*) AS n, sum(CASE WHEN retired_at IS NULL THEN 1 ELSE 0 END) AS current \
         FROM identity_signing_keys",
    );
    let row = tx.fetch_one(q).await.unwrap();
    let (n, current): (i64, i64) = (row.try_get("n").unwrap(), row.try_get("current").unwrap());
    tx.commit().await.unwrap();
    assert_eq!((n, current), (3, 1), "the keys are as they were");
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
