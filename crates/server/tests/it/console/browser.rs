//! The console in a real headless Chromium: an operator finds a person, bans them, the
//! person's page in another browser stops working, and the audit log shows who did it; then
//! unbans them and signs in as them, with the banner and the `act` claim, and stops.

use std::time::Duration;

use latchkey_testkit::TestContext;
use latchkey_testkit::webdriver::Chrome;

use super::account;
use crate::identity::PASSWORD;

const WAIT: Duration = Duration::from_secs(10);

async fn sign_in(browser: &Chrome, url: &str, email: &str) {
    browser.goto(&format!("{url}/sign-in")).await;
    browser.fill("#email_address", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_button("Sign in").await;
    browser.wait_for_path("/", WAIT).await;
}

pub async fn an_operator_bans_a_person_from_the_console_in_a_real_browser(ctx: TestContext) {
    let app = ctx.spawn().await;
    let operator_id = account(&app, "console-operator@example.com", true).await;
    let person_id = account(&app, "console-person@example.com", false).await;

    let person = Chrome::start().await;
    sign_in(&person, &app.url, "console-person@example.com").await;
    person.goto(&format!("{}/dashboard", app.url)).await;
    person.wait_for_path("/dashboard", WAIT).await;

    let operator = Chrome::start().await;
    sign_in(&operator, &app.url, "console-operator@example.com").await;
    operator.goto(&format!("{}/admin", app.url)).await;
    operator.wait_for("#sign-ups svg", WAIT).await;
    operator.click("a[href=\"/admin/users\"]").await;
    operator.wait_for_path("/admin/users", WAIT).await;
    operator.fill("#q", "console-person").await;
    operator.click_button("Search").await;
    operator.wait_for("#users tbody tr", WAIT).await;
    operator
        .click(&format!("a[href=\"/admin/users/{person_id}\"]"))
        .await;
    operator
        .wait_for_path(&format!("/admin/users/{person_id}"), WAIT)
        .await;
    operator.click_button("Ban").await;
    operator.wait_for("#notice", WAIT).await;
    assert!(operator.text("#user-state").await.starts_with("Banned"));

    // The person's next page sends them to sign in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        person.goto(&format!("{}/dashboard", app.url)).await;
        if person.path().await == "/sign-in" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the banned person still sees the dashboard"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    operator.goto(&format!("{}/admin/audit", app.url)).await;
    let rows = operator.texts("#audit tbody tr").await;
    assert!(
        rows.iter().any(|row| row.contains("operator")
            && row.contains(&operator_id)
            && row.contains(&person_id)
            && row.contains("\"operation\":\"ban\"")),
        "{rows:#?}"
    );

    // Unban, then act as the person: the banner shows, the token says who acts, and stopping
    // signs the operator's browser out.
    operator
        .goto(&format!("{}/admin/users/{person_id}", app.url))
        .await;
    operator.click_button("Unban").await;
    operator.wait_for("#notice", WAIT).await;
    // The app refuses the person's tokens issued up to the ban, to the second (a token's
    // `iat` has no finer grain): a session started in the ban's second would be refused too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    operator.click_button("Sign in as this user").await;
    operator.wait_for_path("/", WAIT).await;
    assert!(
        operator
            .text("#impersonation-banner")
            .await
            .contains(&operator_id)
    );
    let session = operator
        .execute("return fetch('/api/session').then(r => r.json())", vec![])
        .await;
    assert_eq!(
        session["user"]["clerk_user_id"],
        person_id.as_str(),
        "{session}"
    );
    assert_eq!(
        session["session"]["actor"],
        serde_json::json!({"sub": operator_id})
    );
    operator.click_button("Stop impersonating").await;
    operator.wait_for_path("/sign-in", WAIT).await;
    sign_in(&operator, &app.url, "console-operator@example.com").await;
    operator.goto(&format!("{}/admin/audit", app.url)).await;
    let rows = operator.texts("#audit tbody tr").await;
    for action in ["impersonation.started", "impersonation.ended"] {
        assert!(
            rows.iter()
                .any(|row| row.contains(action) && row.contains(&operator_id)),
            "{action}: {rows:#?}"
        );
    }
}
