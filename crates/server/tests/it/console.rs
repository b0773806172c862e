//! The operators' console at `/admin`: only operators see it (everyone else gets 404, even
//! for forms), destructive actions need a recent sign-in, every action is the operator's in
//! the audit log, and what it does takes effect (a ban ends the person's sessions in the app).
//! The same in Chromium is in `console/browser.rs`.

pub mod browser;

use std::time::Duration;

use latchkey_identity::flows::admin::{self, CreateUser};
use latchkey_identity::flows::operators;
use latchkey_identity::passwords::Password;
use latchkey_identity::users::{address_rows, validate};
use latchkey_identity::webhooks::endpoints;
use latchkey_testkit::TestApp;
use latchkey_testkit::TestContext;
use latchkey_testkit::browser::Browser;
use latchkey_testkit::receiver::{Mode, TestReceiver};

use crate::identity::{PASSWORD, sign_in};
use crate::support::eventually;

/// Makes an account with `PASSWORD`; an operator if `operator`.
pub async fn account(app: &TestApp, email: &str, operator: bool) -> String {
    let user = admin::create_user(
        &app.identity,
        CreateUser {
            email_address: Some(email.to_owned()),
            password: Some(Password::new(PASSWORD.to_owned())),
            ..CreateUser::default()
        },
    )
    .await
    .unwrap();
    if operator {
        assert!(
            operators::set_operator(&app.identity, &user.id, true)
                .await
                .unwrap()
        );
    }
    user.id
}

async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let mut browser = app.browser();
    sign_in(&mut browser, email, PASSWORD, 303).await;
    browser
}

fn error_text(html: &str) -> String {
    html.split("role=\"alert\"")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_default()
        .to_owned()
}

pub async fn only_operators_see_the_console_and_each_action_is_theirs_in_the_audit_log(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    let operator_id = account(&app, "operator@example.com", true).await;
    let target_id = account(&app, "target@example.com", false).await;
    let mut target = signed_in(&app, "target@example.com").await;
    target.get("/api/me", 200).await;

    // To anyone but an operator, every console path is a 404, forms included.
    let mut anonymous = app.browser();
    for path in [
        "/admin",
        "/admin/users",
        &format!("/admin/users/{target_id}"),
        "/admin/audit",
        "/admin/nope",
    ] {
        anonymous.get(path, 404).await;
        target.get(path, 404).await;
    }
    let token = latchkey_testkit::browser::csrf_token(&target.get("/user", 200).await.text());
    target
        .post_form(
            &format!("/admin/users/{operator_id}/ban"),
            &[("csrf_token", token.as_str())],
            404,
        )
        .await;

    let mut operator = signed_in(&app, "operator@example.com").await;
    let page = operator.get("/admin/users?q=target%40", 200).await.text();
    assert!(
        page.contains(&target_id) && !page.contains(&operator_id),
        "{page}"
    );
    let page = operator.get("/admin/users?filter=banned", 200).await.text();
    assert!(page.contains("id=\"no-users\""), "{page}");
    let bad_date = operator
        .get("/admin/users?from=yesterday", 422)
        .await
        .text();
    assert!(error_text(&bad_date).contains("YYYY-MM-DD"));
    let page_of = format!("/admin/users/{target_id}");
    let page = operator.get(&page_of, 200).await.text();
    assert!(
        page.contains("target@example.com") && page.contains("<td>127.0.0.1</td>"),
        "{page}"
    );

    // A ban ends the person's sessions: the app refuses their token within its refresh.
    let reply = operator
        .submit(&page_of, &format!("{page_of}/ban"), &[], 303)
        .await;
    assert_eq!(
        reply.header("location"),
        Some(format!("{page_of}?notice=banned").as_str())
    );
    eventually(
        Duration::from_secs(2),
        "the app refuses the banned person's token",
        || target.request(reqwest::Method::GET, "/api/me").send(),
        |reply| reply.status == 401,
    )
    .await;
    let page = operator.get("/admin/users?filter=banned", 200).await.text();
    assert!(page.contains(&target_id), "{page}");
    let audit = operator.get("/admin/audit", 200).await.text();
    assert!(
        audit.contains(&operator_id) && audit.contains("&#34;operation&#34;:&#34;ban&#34;"),
        "the audit log names the operator and the errand: {audit}"
    );
    operator
        .submit(&page_of, &format!("{page_of}/unban"), &[], 303)
        .await;

    // An address marked verified; metadata refused whole when one field is bad, then saved.
    let email_id = {
        let mut tx = app.db.begin().await.unwrap();
        let email = validate::email("second@example.com").unwrap();
        let id = address_rows::add(&mut tx, &target_id, &email, i64::MAX, 1)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id.unwrap()
    };
    operator
        .submit(
            &page_of,
            &format!("{page_of}/verify-email"),
            &[("email_id", &email_id)],
            303,
        )
        .await;
    let user = admin::find_user(&app.identity, &target_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.emails
            .iter()
            .any(|e| e.id == email_id && e.verification_status == "verified")
    );
    let big = format!("{{\"x\": \"{}\"}}", "y".repeat(9000));
    for (public, expected) in [
        ("[1]", "must be a JSON object"),
        ("{", "not valid JSON"),
        (big.as_str(), "larger than 8 KB"),
    ] {
        let reply = operator
            .submit(
                &page_of,
                &format!("{page_of}/metadata"),
                &[
                    ("public_metadata", public),
                    ("private_metadata", "{\"tier\": 2}"),
                    ("unsafe_metadata", ""),
                ],
                422,
            )
            .await;
        assert!(
            error_text(&reply.text()).contains(expected),
            "{}",
            reply.text()
        );
    }
    let user = admin::find_user(&app.identity, &target_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        user.private_metadata,
        serde_json::json!({}),
        "nothing was saved"
    );
    operator
        .submit(
            &page_of,
            &format!("{page_of}/metadata"),
            &[
                ("public_metadata", "{\"plan\": \"pro\"}"),
                ("private_metadata", "{\"tier\": 2}"),
                ("unsafe_metadata", ""),
            ],
            303,
        )
        .await;
    let user = admin::find_user(&app.identity, &target_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.public_metadata, serde_json::json!({"plan": "pro"}));
    assert_eq!(user.private_metadata, serde_json::json!({"tier": 2}));

    // Eleven minutes after signing in, a destructive action asks the operator to confirm.
    app.clock().advance(Duration::from_secs(11 * 60));
    let reply = operator
        .submit(&page_of, &format!("{page_of}/ban"), &[], 403)
        .await;
    assert!(reply.text().contains("Confirm it"), "{}", reply.text());
    operator
        .submit("/user", "/user/reverify", &[("password", PASSWORD)], 303)
        .await;
    let reply = operator
        .submit(
            &page_of,
            &format!("{page_of}/delete"),
            &[("confirmation", "user_wrong")],
            422,
        )
        .await;
    assert!(error_text(&reply.text()).contains("type the account"));
    operator
        .submit(
            &page_of,
            &format!("{page_of}/delete"),
            &[("confirmation", &target_id)],
            303,
        )
        .await;
    assert!(
        admin::find_user(&app.identity, &target_id)
            .await
            .unwrap()
            .is_none()
    );
    operator.get(&page_of, 404).await;
    let audit = operator
        .get(&format!("/admin/audit?user={target_id}"), 200)
        .await
        .text();
    for operation in ["ban", "unban", "verify_email", "edit_metadata", "delete"] {
        assert!(
            audit.contains(&format!("&#34;operation&#34;:&#34;{operation}&#34;")),
            "{operation}: {audit}"
        );
    }
}

pub async fn operators_sign_in_as_a_person_for_an_hour_with_a_banner_and_the_act_claim(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    let operator_id = account(&app, "helper@example.com", true).await;
    let other_operator = account(&app, "other-operator@example.com", true).await;
    let person_id = account(&app, "person@example.com", false).await;
    let mut operator = signed_in(&app, "helper@example.com").await;

    // Another operator's account is not for taking.
    let other_page = format!("/admin/users/{other_operator}");
    let reply = operator
        .submit(&other_page, &format!("{other_page}/impersonate"), &[], 409)
        .await;
    assert!(error_text(&reply.text()).contains("cannot be impersonated"));

    let page_of = format!("/admin/users/{person_id}");
    let reply = operator
        .submit(&page_of, &format!("{page_of}/impersonate"), &[], 303)
        .await;
    assert_eq!(reply.header("location"), Some("/"));
    let token = operator.cookie("__session").unwrap().to_owned();
    let claims = crate::identity::claims(&token);
    assert_eq!(claims["sub"], person_id.as_str());
    assert_eq!(claims["act"], serde_json::json!({"sub": operator_id}));
    for page in ["/", "/dashboard", "/user"] {
        let html = operator.get(page, 200).await.text();
        assert!(
            html.contains("id=\"impersonation-banner\"") && html.contains(&operator_id),
            "{page}: {html}"
        );
    }
    // The console is closed while acting as someone else.
    operator.get("/admin/users", 404).await;
    let me: serde_json::Value = operator.get("/api/me", 200).await.json();
    assert_eq!(me["user"]["clerk_user_id"], person_id.as_str(), "{me}");

    // Signing out ends it; both ends are in the audit log, as the operator's.
    operator.submit("/user", "/sign-out", &[], 303).await;
    let rows = latchkey_identity::audit::page(&app.identity, None, Some(&person_id), 50)
        .await
        .unwrap();
    let ours: Vec<(&str, Option<&str>)> = rows
        .iter()
        .filter(|r| r.action.starts_with("impersonation."))
        .map(|r| (r.action.as_str(), r.actor_id.as_deref()))
        .collect();
    assert_eq!(
        ours,
        [
            ("impersonation.ended", Some(operator_id.as_str())),
            ("impersonation.started", Some(operator_id.as_str())),
        ]
    );

    // An hour at most, whatever the activity.
    let mut operator = signed_in(&app, "helper@example.com").await;
    operator
        .submit(&page_of, &format!("{page_of}/impersonate"), &[], 303)
        .await;
    app.clock().advance(Duration::from_secs(50 * 60));
    operator.get("/user", 200).await;
    app.clock().advance(Duration::from_secs(11 * 60));
    let reply = operator.get("/user", 303).await;
    assert!(
        reply.header("location").unwrap().starts_with("/sign-in"),
        "the impersonation ended after an hour"
    );
}

fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}: {html}"));
    let end = html[start..]
        .find("</section>")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

pub async fn the_overview_and_webhook_health_show_what_happened(ctx: TestContext) {
    let receiver = TestReceiver::start().await;
    receiver.set_mode(Mode::Reply {
        status: 500,
        body: b"receiver exploded",
    });
    let app = ctx
        .spawn_with(|c| c.webhook_allow_private_networks = true)
        .await;
    let (endpoint, _) =
        endpoints::add_endpoint(&app.identity, &receiver.url(), &["user.created".to_owned()])
            .await
            .unwrap();
    account(&app, "ops@example.com", true).await;
    let mut someone = app.browser();
    sign_in(&mut someone, "nobody@example.com", "not the password", 401).await;
    let mut operator = signed_in(&app, "ops@example.com").await;
    // The operator's account reached the failing endpoint at least once.
    eventually(
        Duration::from_secs(10),
        "an attempt at the failing endpoint",
        || async { receiver.arrivals().len() },
        |n| *n >= 1,
    )
    .await;

    let page = operator.get("/admin", 200).await.text();
    assert_eq!(page.matches("<svg").count(), 4, "{page}");
    assert!(section(&page, "sign-ups").contains("(1 in all)"), "{page}");
    assert!(section(&page, "active").contains("(1 in all)"), "{page}");
    assert!(section(&page, "failures").contains("(1 in all)"), "{page}");
    assert!(page.contains("<span id=\"user-count\">1</span>"), "{page}");

    let list = operator.get("/admin/webhooks", 200).await.text();
    assert!(
        list.contains(&receiver.url()) && list.contains("the app&#39;s own receiver"),
        "{list}"
    );
    let page_of = format!("/admin/webhooks/{}", endpoint.id);
    // The attempt is recorded just after its answer.
    let page = eventually(
        Duration::from_secs(5),
        "the attempt on the endpoint's page",
        || operator.request(reqwest::Method::GET, &page_of).send(),
        |reply| reply.text().contains("receiver exploded"),
    )
    .await
    .text();
    assert!(
        page.contains("succeeded <span class=\"rate\">0.0 %</span>"),
        "{page}"
    );
    assert!(
        page.contains("receiver exploded") && page.contains("<td>500</td>"),
        "{page}"
    );
    assert_eq!(page.matches("<svg").count(), 2);

    // The secret is shown once; disabling and enabling are audited as the operator's.
    let reply = operator
        .submit(&page_of, &format!("{page_of}/rotate-secret"), &[], 200)
        .await
        .text();
    assert!(reply.contains("id=\"new-secret\">whsec_"), "{reply}");
    operator
        .submit(&page_of, &format!("{page_of}/disable"), &[], 303)
        .await;
    assert!(
        operator
            .get(&page_of, 200)
            .await
            .text()
            .contains("id=\"endpoint-state\">disabled<")
    );
    operator
        .submit(&page_of, &format!("{page_of}/enable"), &[], 303)
        .await;
    receiver.set_mode(Mode::Ok {
        delay: Duration::ZERO,
    });
    operator
        .submit(&page_of, &format!("{page_of}/replay"), &[], 303)
        .await;
    let reply = operator
        .submit(
            &page_of,
            &format!("{page_of}/resend"),
            &[("event_id", "msg_nope")],
            404,
        )
        .await;
    assert!(reply.text().contains("no event with that id"));
    let audit = operator.get("/admin/audit", 200).await.text();
    for action in [
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.disabled",
        "webhook_endpoint.enabled",
    ] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    // The app's own receiver is shown but not for changing.
    let internal = endpoints::list_endpoints(&app.identity)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.internal)
        .unwrap();
    let internal_page = format!("/admin/webhooks/{}", internal.id);
    operator
        .submit(
            &internal_page,
            &format!("{internal_page}/disable"),
            &[],
            409,
        )
        .await;
}
