//! Loading Clerk's scripts against latchkey, signing up with the mailed code, the session's
//! tokens, signing out; CORS and the envelope along the way.

use latchkey_testkit::TestContext;
use serde_json::Value;

use super::{APP, FRONTEND_API_HOST, PASSWORD, Page, count_users, error, payload, spawn, verify};

pub async fn the_environment_and_client_answer_the_apps_origin_only(ctx: TestContext) {
    let app = spawn(&ctx).await;
    let mut page = Page::new(&app);
    let reply = page.call("GET", "/environment", &[], 200).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    let environment: Value = reply.json();
    assert_eq!(environment["auth_config"]["single_session_mode"], true);
    assert_eq!(
        environment["user_settings"]["attributes"]["email_address"]["verifications"][0],
        "email_code"
    );
    assert_eq!(
        environment["display_config"]["instance_environment_type"],
        "production"
    );

    let client = page.get("/client").await;
    assert_eq!(client["response"]["object"], "client");
    assert_eq!(client["response"]["sessions"], Value::Array(vec![]));
    assert!(page.browser.cookie("__latchkey_fapi").is_some());

    // Another site's page gets Clerk's error and no CORS grant, and nothing is written.
    let mut other = Page::new(&app);
    other.origin = "https://evil.example".to_owned();
    let refused = other
        .call(
            "POST",
            "/client/sign_ups",
            &[("email_address", "x@example.com"), ("password", PASSWORD)],
            403,
        )
        .await;
    assert_eq!(error(&refused).0, "origin_invalid");
    assert!(refused.header("access-control-allow-origin").is_none());
    // A write without any Origin is refused too.
    app.post("/fapi/v1/client/sign_ups")
        .form(&[("email_address", "x@example.com"), ("password", PASSWORD)])
        .expect(403)
        .await;
    assert_eq!(count_users(&app).await, 0);
    // A preflight from the app is answered; unknown routes are Clerk's 404.
    let preflight = app
        .request(reqwest::Method::OPTIONS, "/fapi/v1/client")
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .expect(204)
        .await;
    assert_eq!(preflight.header("access-control-allow-origin"), Some(APP));
    let missing = page.call("GET", "/nothing/here", &[], 404).await;
    assert_eq!(error(&missing).0, "resource_not_found");
    app.stop().await;
}

pub async fn signing_up_with_the_mailed_code_starts_a_session_with_verifiable_tokens(
    ctx: TestContext,
) {
    let app = spawn(&ctx).await;
    let mut page = Page::new(&app);
    let created = page
        .post(
            "/client/sign_ups",
            &[
                ("email_address", "ada@example.com"),
                ("password", PASSWORD),
                ("first_name", "Ada"),
            ],
        )
        .await;
    let sign_up = &created["response"];
    assert_eq!(sign_up["object"], "sign_up");
    assert_eq!(sign_up["status"], "missing_requirements");
    assert_eq!(sign_up["unverified_fields"][0], "email_address");
    assert_eq!(sign_up["first_name"], "Ada");
    assert_eq!(created["client"]["sign_up"]["id"], sign_up["id"]);
    let id = sign_up["id"].as_str().unwrap().to_owned();
    page.post(
        &format!("/client/sign_ups/{id}/prepare_verification"),
        &[("strategy", "email_code")],
    )
    .await;
    // The first prepare sends nothing more: the code went out with the sign-up.
    assert_eq!(
        app.mailbox()
            .await
            .iter()
            .filter(|m| m.to == "ada@example.com")
            .count(),
        1
    );
    let wrong = page
        .call(
            "POST",
            &format!("/client/sign_ups/{id}/attempt_verification"),
            &[("strategy", "email_code"), ("code", "000000")],
            422,
        )
        .await;
    let code = app.code_for("ada@example.com").await;
    if code != "000000" {
        assert_eq!(
            error(&wrong),
            ("form_code_incorrect".to_owned(), Some("code".to_owned()))
        );
    }
    let done = page
        .post(
            &format!("/client/sign_ups/{id}/attempt_verification"),
            &[("strategy", "email_code"), ("code", &code)],
        )
        .await;
    assert_eq!(done["response"]["status"], "complete");
    let session = &done["client"]["sessions"][0];
    assert_eq!(done["response"]["created_session_id"], session["id"]);
    assert_eq!(session["status"], "active");
    assert_eq!(session["user"]["first_name"], "Ada");
    assert!(session["user"].get("private_metadata").is_none());
    assert_eq!(session["public_user_data"]["identifier"], "ada@example.com");
    assert_eq!(done["client"]["last_active_session_id"], session["id"]);
    // The session's handle is HttpOnly; `__client_uat` is set plain and suffixed.
    let set_cookies: Vec<&str> = done_cookies(&page);
    assert!(set_cookies.iter().any(|c| c.starts_with("__client_uat_")));
    assert!(page.browser.cookie("__client").is_some());
    assert_ne!(page.browser.cookie("__client_uat"), Some("0"));

    let claims = verify(&app, session["last_active_token"]["jwt"].as_str().unwrap()).await;
    assert_eq!(Some(session["id"].as_str().unwrap()), claims.sid.as_deref());
    let sid = session["id"].as_str().unwrap().to_owned();
    let token: Value = page
        .post(&format!("/client/sessions/{sid}/tokens"), &[])
        .await;
    assert_eq!(token["object"], "token");
    let minted = token["jwt"].as_str().unwrap();
    let claims = verify(&app, minted).await;
    assert_eq!(
        claims.iss.as_deref(),
        Some(format!("https://{FRONTEND_API_HOST}").as_str())
    );
    assert_eq!(payload(minted)["azp"], APP);
    // setActive's touch answers the session in the envelope.
    let touched = page
        .post(&format!("/client/sessions/{sid}/touch"), &[])
        .await;
    assert_eq!(touched["response"]["id"], sid.as_str());
    let me = page.get("/me").await;
    assert_eq!(
        me["response"]["email_addresses"][0]["verification"]["status"],
        "verified"
    );

    // Signing out ends the session: its tokens stop and clerk-js sees a 401.
    let out = page.call("DELETE", "/client/sessions", &[], 200).await;
    let out: Value = out.json();
    assert_eq!(out["client"]["sessions"], Value::Array(vec![]));
    assert_eq!(page.browser.cookie("__client_uat"), Some("0"));
    assert!(page.browser.cookie("__client").is_none());
    let refused = page
        .call("POST", &format!("/client/sessions/{sid}/tokens"), &[], 401)
        .await;
    assert_eq!(error(&refused).0, "signed_out");
    app.stop().await;
}

/// The `Set-Cookie` names the page's browser holds.
fn done_cookies(page: &Page) -> Vec<&str> {
    page.browser.cookies.keys().map(String::as_str).collect()
}

pub async fn signing_up_with_a_taken_address_answers_alike_and_creates_nothing(ctx: TestContext) {
    let app = spawn(&ctx).await;
    super::sign_up(&app, "taken@example.com").await;
    assert_eq!(count_users(&app).await, 1);
    let mut page = Page::new(&app);
    let created = page
        .post(
            "/client/sign_ups",
            &[
                ("email_address", "taken@example.com"),
                ("password", "another fine passphrase"),
            ],
        )
        .await;
    assert_eq!(created["response"]["status"], "missing_requirements");
    assert_eq!(created["response"]["unverified_fields"][0], "email_address");
    assert_eq!(count_users(&app).await, 1);
    // A weak password and a malformed address are form errors naming their field.
    let weak = page
        .call(
            "POST",
            "/client/sign_ups",
            &[("email_address", "new@example.com"), ("password", "short")],
            422,
        )
        .await;
    assert_eq!(error(&weak).1.as_deref(), Some("password"));
    let malformed = page
        .call(
            "POST",
            "/client/sign_ups",
            &[("email_address", "not an address"), ("password", PASSWORD)],
            422,
        )
        .await;
    assert_eq!(error(&malformed).1.as_deref(), Some("email_address"));
    let strategy = page
        .call(
            "POST",
            "/client/sign_ups",
            &[("strategy", "oauth_google")],
            422,
        )
        .await;
    assert_eq!(error(&strategy).0, "strategy_for_user_invalid");
    assert_eq!(count_users(&app).await, 1);
    app.stop().await;
}
