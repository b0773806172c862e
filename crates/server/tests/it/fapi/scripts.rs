//! The pinned scripts at `/npm/@clerk/…`: by major tag and by exact version, under the
//! Frontend API's prefix too, never outside their `dist`.

use latchkey_testkit::TestContext;

use super::APP;

fn package(dir: &std::path::Path, folder: &str, name: &str, version: &str, files: &[(&str, &str)]) {
    let root = dir.join(folder);
    std::fs::create_dir_all(root.join("dist/chunks")).unwrap();
    std::fs::write(
        root.join("package.json"),
        format!(r#"{{"name": "{name}", "version": "{version}"}}"#),
    )
    .unwrap();
    for (path, body) in files {
        std::fs::write(root.join("dist").join(path), body).unwrap();
    }
}

pub async fn pinned_scripts_are_served_by_major_and_exact_version_and_nothing_else(
    ctx: TestContext,
) {
    let dir = ctx.temp_dir();
    package(
        &dir,
        "@clerk/clerk-js@5.99.1",
        "@clerk/clerk-js",
        "5.99.1",
        &[
            ("clerk.browser.js", "window.Clerk5 = 1;"),
            ("chunks/a.js", "chunk five"),
        ],
    );
    package(
        &dir,
        "clerk-js@6.40.0",
        "@clerk/clerk-js",
        "6.40.0",
        &[("clerk.browser.js", "window.Clerk6 = 1;")],
    );
    package(
        &dir,
        "@clerk/ui@1.2.3",
        "@clerk/ui",
        "1.2.3",
        &[("ui.browser.js", "window.__internal_ClerkUICtor = 1;")],
    );
    std::fs::write(dir.join("secret.txt"), "not for the web").unwrap();
    let app = ctx
        .spawn_with(|config| {
            config.fapi.allowed_origins = vec![APP.to_owned()];
            config.fapi.assets_dir = Some(dir.clone());
        })
        .await;

    let five = app
        .get("/npm/@clerk/clerk-js@5/dist/clerk.browser.js")
        .header("origin", APP)
        .expect(200)
        .await;
    assert_eq!(five.text(), "window.Clerk5 = 1;");
    assert_eq!(five.header("access-control-allow-origin"), Some("*"));
    assert!(
        five.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(five.header("cache-control"), Some("public, max-age=300"));
    let chunk = app
        .get("/npm/@clerk/clerk-js@5.99.1/dist/chunks/a.js")
        .expect(200)
        .await;
    assert_eq!(chunk.text(), "chunk five");
    assert!(chunk.header("cache-control").unwrap().contains("immutable"));
    let six = app
        .get("/fapi/npm/@clerk/clerk-js@6/dist/clerk.browser.js")
        .header("origin", "https://any.example")
        .expect(200)
        .await;
    assert_eq!(six.text(), "window.Clerk6 = 1;");
    app.get("/npm/@clerk/ui@1/dist/ui.browser.js")
        .expect(200)
        .await;

    for path in [
        "/npm/@clerk/clerk-js@5/dist/../package.json",
        "/npm/@clerk/clerk-js@5/dist/%2e%2e/%2e%2e/secret.txt",
        "/npm/@clerk/clerk-js@5/dist/..%2f..%2fsecret.txt",
        "/npm/@clerk/clerk-js@7/dist/clerk.browser.js",
        "/npm/@clerk/clerk-js@5.0.0/dist/clerk.browser.js",
        "/npm/@clerk/other@1/dist/x.js",
        "/npm/@clerk/clerk-js@5/dist/.hidden",
    ] {
        let reply = app.get(path).send().await;
        assert!(
            matches!(reply.status.as_u16(), 400 | 404),
            "{path}: {}",
            reply.status
        );
        assert!(!reply.text().contains("not for the web"));
    }
    app.stop().await;
}
