//! Operators managing users with `latchkey users`.

use latchkey_testkit::TestContext;
use serde_json::Value;

use super::{PASSWORD, sign_in};
use crate::email::error_text;
use crate::support::{latchkey_on, run_on};

pub async fn operators_manage_users_from_the_command_line(ctx: TestContext) {
    let app = ctx.spawn().await;
    let created = {
        let mut command = latchkey_on(
            &ctx,
            &app,
            &[
                "users",
                "create",
                "--email",
                "ops@example.com",
                "--first-name",
                "Op",
                "--password-stdin",
                "--json",
            ],
        );
        command.stdin(std::process::Stdio::piped());
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

    let listed = run_on(&ctx, &app, &["users", "list", "--json"]).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let listed: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed.len(), 1);

    let banned = run_on(&ctx, &app, &["users", "ban", "ops@example.com", "--json"]).await;
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
        run_on(&ctx, &app, &["users", "unban", &id]).await.code,
        Some(0)
    );
    sign_in(&mut browser, "ops@example.com", PASSWORD, 303).await;
    let revoked = run_on(&ctx, &app, &["users", "revoke-sessions", &id, "--json"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&revoked.stdout).unwrap()["revoked_sessions"],
        1
    );
    browser.get("/user", 303).await;

    let refused = run_on(&ctx, &app, &["users", "delete", &id]).await;
    assert_eq!(refused.code, Some(2), "deleting needs --yes");
    assert_eq!(
        run_on(&ctx, &app, &["users", "delete", &id, "--yes"])
            .await
            .code,
        Some(0)
    );
    assert_eq!(
        run_on(&ctx, &app, &["users", "show", &id]).await.code,
        Some(3)
    );
    app.stop().await;
}
