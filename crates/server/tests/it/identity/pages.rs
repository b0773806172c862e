//! The pages' forms: CSRF protection, redirects that stay on this site, weak passwords, and
//! the account page's profile and deletion.

use latchkey_testkit::TestContext;
use latchkey_testkit::browser::csrf_token;
use serde_json::Value;

use super::{PASSWORD, sign_in, sign_up};
use crate::email::error_text;

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
