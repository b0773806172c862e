//! `/v1/events` (the pull feed) and `/v1/webhook_endpoints…` through the management API.

use std::time::Duration;

use latchkey_testkit::TestContext;
use reqwest::Method;
use serde_json::{Value, json};

use super::{call, create_user, error_code, secret_key};

pub async fn the_event_feed_pages_through_settled_events(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let mut made = Vec::new();
    for name in ["feed-a", "feed-b", "feed-c"] {
        let user = create_user(&app, &key, &json!({"username": name})).await;
        made.push(user["id"].as_str().unwrap().to_owned());
    }
    // Just written: not served yet, so a slower transaction cannot land behind the cursor.
    let fresh: Value = call(&app, Method::GET, "/v1/events", &key)
        .expect(200)
        .await
        .json();
    assert!(
        fresh["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["data"]["id"] != made[2].as_str()),
        "an event younger than 2 s was served: {fresh}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let first: Value = call(&app, Method::GET, "/v1/events?limit=2", &key)
        .expect(200)
        .await
        .json();
    assert_eq!(first["has_more"], true);
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(first["next"], data[1]["id"]);
    let next = first["next"].as_str().unwrap();
    let second: Value = call(
        &app,
        Method::GET,
        &format!("/v1/events?limit=2&after={next}"),
        &key,
    )
    .expect(200)
    .await
    .json();
    assert_eq!(second["has_more"], false);
    let rest = second["data"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    let all: Vec<&Value> = data.iter().chain(rest).collect();
    let users: Vec<&str> = all
        .iter()
        .map(|e| e["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        users,
        made.iter().map(String::as_str).collect::<Vec<_>>(),
        "oldest first"
    );
    for event in &all {
        assert_eq!(
            (event["type"].as_str(), event["object"].as_str()),
            (Some("user.created"), Some("event"))
        );
        assert!(event["id"].as_str().unwrap().starts_with("msg_"));
    }
    let end = second["next"].as_str().unwrap();
    let empty: Value = call(&app, Method::GET, &format!("/v1/events?after={end}"), &key)
        .expect(200)
        .await
        .json();
    assert_eq!(empty, json!({"data": [], "next": end, "has_more": false}));

    let reply = call(&app, Method::GET, "/v1/events?limit=0", &key)
        .expect(422)
        .await;
    assert_eq!(error_code(&reply), "form_param_value_invalid");
    app.get("/v1/events").expect(401).await;
    app.stop().await;
}

pub async fn webhook_endpoints_are_managed_through_the_api(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let list = |key: String| {
        let request = call(&app, Method::GET, "/v1/webhook_endpoints", &key);
        async move { request.expect(200).await.json::<Value>() }
    };
    let before = list(key.clone()).await;
    let internal: Vec<&Value> = before
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["internal"] == true)
        .collect();
    assert_eq!(internal.len(), 1, "the app's own receiver: {before}");

    let created: Value = call(&app, Method::POST, "/v1/webhook_endpoints", &key)
        .json(&json!({"url": "https://hooks.example.com/clerk", "events": ["user.created", "user.deleted"]}))
        .expect(200)
        .await
        .json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["object"], "webhook_endpoint");
    assert_eq!(created["url"], "https://hooks.example.com/clerk");
    assert_eq!(created["events"], json!(["user.created", "user.deleted"]));
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = list(key.clone()).await;
    let shown = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap();
    assert!(shown.get("secret").is_none(), "secrets are shown once");
    assert!(!listed.to_string().contains(&secret));

    let rotated: Value = call(
        &app,
        Method::POST,
        &format!("/v1/webhook_endpoints/{id}/rotate_secret"),
        &key,
    )
    .expect(200)
    .await
    .json();
    assert_eq!(rotated["endpoint_id"], id.as_str());
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    let deleted: Value = call(
        &app,
        Method::DELETE,
        &format!("/v1/webhook_endpoints/{id}"),
        &key,
    )
    .expect(200)
    .await
    .json();
    assert_eq!(
        deleted,
        json!({"object": "webhook_endpoint", "id": id, "deleted": true})
    );
    assert_eq!(list(key.clone()).await, before);
    for (method, path) in [
        (Method::DELETE, format!("/v1/webhook_endpoints/{id}")),
        (
            Method::POST,
            format!("/v1/webhook_endpoints/{id}/rotate_secret"),
        ),
    ] {
        let reply = call(&app, method, &path, &key).expect(404).await;
        assert_eq!(error_code(&reply), "resource_not_found");
    }
    let internal_id = internal[0]["id"].as_str().unwrap();
    let reply = call(
        &app,
        Method::DELETE,
        &format!("/v1/webhook_endpoints/{internal_id}"),
        &key,
    )
    .expect(400)
    .await;
    assert_eq!(error_code(&reply), "bad_request");

    for (body, code) in [
        (
            json!({"url": "ftp://hooks.example.com"}),
            "form_param_format_invalid",
        ),
        (
            json!({"url": "https://user:pw@hooks.example.com"}),
            "form_param_format_invalid",
        ),
        (json!({"events": ["user.created"]}), "form_param_missing"),
        (
            json!({"url": "https://hooks.example.com", "events": ["not a type"]}),
            "form_param_value_invalid",
        ),
    ] {
        let reply = call(&app, Method::POST, "/v1/webhook_endpoints", &key)
            .json(&body)
            .expect(422)
            .await;
        assert_eq!(error_code(&reply), code, "{body}");
    }
    app.get("/v1/webhook_endpoints").expect(401).await;
    app.stop().await;
}

/// The endpoint URLs `POST /v1/webhook_endpoints` and `latchkey webhooks add` must refuse
/// unless private networks are allowed: metadata, IPv4-mapped loopback, RFC 1918, a loopback
/// name, link-local, NAT64 of loopback, CGNAT, unspecified, ULA (the EC2 IPv6 metadata address).
const PRIVATE_URLS: [&str; 10] = [
    "http://169.254.169.254/",
    "http://[::ffff:127.0.0.1]/",
    "http://10.0.0.1/",
    "http://localhost:1/",
    "http://[fe80::1]/hook",
    "http://[64:ff9b::7f00:1]/",
    "http://100.64.0.1/",
    "http://0.0.0.0:8080/",
    "http://[fd00:ec2::254]/",
    "https://127.0.0.1:3000/api/webhooks/clerk",
];

/// `latchkey webhooks add --url <url>` against `app`'s database, with `env` set.
async fn cli_add(
    app: &latchkey_testkit::TestApp,
    ctx: &TestContext,
    url: &str,
    env: &[(&str, &str)],
) -> crate::support::Finished {
    let mut command =
        crate::support::latchkey_on(ctx, app, &["webhooks", "add", "--url", url, "--json"]);
    command.envs(env.iter().copied());
    crate::support::finish(command).await
}

pub async fn private_webhook_urls_are_refused_at_creation(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let list = || async {
        call(&app, Method::GET, "/v1/webhook_endpoints", &key)
            .expect(200)
            .await
            .json::<Value>()
    };
    let before = list().await;
    for url in PRIVATE_URLS {
        let reply = call(&app, Method::POST, "/v1/webhook_endpoints", &key)
            .json(&json!({"url": url}))
            .expect(422)
            .await;
        assert_eq!(error_code(&reply), "form_param_value_invalid", "{url}");
        let body: Value = reply.json();
        assert_eq!(body["errors"][0]["meta"]["param_name"], "url");
        let message = body["errors"][0]["long_message"].as_str().unwrap();
        assert!(
            message.contains("no public address")
                && message.contains("LATCHKEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
            "{message}"
        );
    }
    for url in ["http://169.254.169.254/", "http://localhost:1/"] {
        let done = cli_add(&app, &ctx, url, &[]).await;
        assert_eq!(done.code, Some(2), "{url}: {}", done.stderr);
        assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
        assert!(
            done.stderr
                .starts_with("latchkey: the URL reaches no public address"),
            "{}",
            done.stderr
        );
        assert!(done.stdout.is_empty());
    }
    assert_eq!(list().await, before, "nothing was written");

    // A public literal needs no network to be judged.
    let created: Value = call(&app, Method::POST, "/v1/webhook_endpoints", &key)
        .json(&json!({"url": "https://93.184.216.34/hooks"}))
        .expect(200)
        .await
        .json();
    assert_eq!(created["url"], "https://93.184.216.34/hooks");
    app.stop().await;

    // Allowed: loopback is taken from the API and the command line alike.
    let app = ctx
        .spawn_with(|c| c.webhook_allow_private_networks = true)
        .await;
    let key = secret_key(&app).await;
    call(&app, Method::POST, "/v1/webhook_endpoints", &key)
        .json(&json!({"url": "http://127.0.0.1:9/hook"}))
        .expect(200)
        .await;
    let done = cli_add(
        &app,
        &ctx,
        "http://10.0.0.1/hook",
        &[("LATCHKEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")],
    )
    .await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    app.stop().await;
}
