//! The management API (Clerk's Backend API subset): secret keys, Clerk's error envelope, the
//! OpenAPI document, and Clerk's own Node SDK driving it. Users, sessions, limits, the feed and
//! webhook endpoints are in the submodules.

pub mod feed;
pub mod openapi;
pub mod sessions;
pub mod users;

use std::time::Duration;

use latchkey_identity::secret_keys as keys;
use latchkey_store::Row as _;
use latchkey_testkit::{Call, Reply, TestApp, TestContext};
use reqwest::Method;
use serde_json::{Value, json};

use crate::identity::sign_up;
use crate::support::{spawn_behind_a_proxy, until_ok};

/// A fresh secret key for `app`.
pub async fn secret_key(app: &TestApp) -> String {
    keys::create_secret_key(&app.identity).await.unwrap()
}

/// A call to the management API with `key`.
pub fn call(app: &TestApp, method: Method, path: &str, key: &str) -> Call {
    app.request(method, path).bearer(key)
}

/// `POST /v1/users` with `body`, expecting 200; the user JSON.
pub async fn create_user(app: &TestApp, key: &str, body: &Value) -> Value {
    call(app, Method::POST, "/v1/users", key)
        .json(body)
        .expect(200)
        .await
        .json()
}

/// `GET path`, expecting `status`; the body.
pub async fn get(app: &TestApp, key: &str, path: &str, status: u16) -> Value {
    let reply = call(app, Method::GET, path, key).expect(status).await;
    reply.json()
}

/// The code of a Clerk error envelope, checking its shape on the way.
pub fn error_code(reply: &Reply) -> String {
    let body: Value = reply.json();
    let error = &body["errors"][0];
    for field in ["message", "long_message", "code"] {
        assert!(error[field].is_string(), "{field} missing in {body}");
    }
    error["code"].as_str().unwrap().to_owned()
}

/// Every event written so far, oldest first, as (type, envelope).
pub async fn events(app: &TestApp) -> Vec<(String, Value)> {
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query("SELECT event_type, body FROM identity_events ORDER BY id");
    let rows = tx.fetch_all(q).await.unwrap();
    tx.commit().await.unwrap();
    rows.iter()
        .map(|row| {
            let body: String = row.try_get("body").unwrap();
            (
                row.try_get("event_type").unwrap(),
                serde_json::from_str(&body).unwrap(),
            )
        })
        .collect()
}

/// Events of `kind` about the user `user_id` (or whose session belongs to them).
pub async fn events_about(app: &TestApp, kind: &str, user_id: &str) -> Vec<Value> {
    events(app)
        .await
        .into_iter()
        .filter(|(t, e)| {
            t == kind && (e["data"]["id"] == user_id || e["data"]["user_id"] == user_id)
        })
        .map(|(_, e)| e)
        .collect()
}

pub async fn secret_keys_are_required_and_checked(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    assert!(key.starts_with("sk_live_") && key.len() >= 51, "{key}");

    let missing = app.get("/v1/users").expect(401).await;
    assert_eq!(error_code(&missing), "authentication_invalid");
    for header in ["Basic dXNlcjpwYXNz", "Bearer", &key] {
        let reply = app
            .get("/v1/users")
            .header("authorization", header)
            .expect(401)
            .await;
        assert_eq!(
            error_code(&reply),
            "authorization_header_format_invalid",
            "{header:?}"
        );
    }
    let unknown = format!("sk_live_{}", "A".repeat(43));
    for wrong in [unknown.as_str(), "sk_live_short", "not-a-key at all"] {
        let reply = call(&app, Method::GET, "/v1/users", wrong)
            .expect(401)
            .await;
        assert_eq!(error_code(&reply), "clerk_key_invalid");
        assert!(!reply.text().contains(wrong), "errors do not echo keys");
    }

    // Revoked keys stop working (revoked before this instance ever trusted them).
    let doomed = secret_key(&app).await;
    let listed = keys::list_secret_keys(&app.db).await.unwrap();
    assert_eq!(
        listed.len(),
        3,
        "the first start's key and the two made here"
    );
    assert!(
        listed
            .iter()
            .all(|k| k.prefix.len() == 12 && key.len() > 12)
    );
    let doomed_id = listed
        .iter()
        .find(|k| doomed.starts_with(&k.prefix))
        .unwrap()
        .id
        .clone();
    assert!(
        keys::revoke_secret_key(&app.identity, &doomed_id)
            .await
            .unwrap()
    );
    let reply = call(&app, Method::GET, "/v1/users", &doomed)
        .expect(401)
        .await;
    assert_eq!(error_code(&reply), "clerk_key_invalid");
    let users: Value = call(&app, Method::GET, "/v1/users", &key)
        .expect(200)
        .await
        .json();
    assert_eq!(users, json!([]));

    // The first-start key is made only while no unrevoked key exists.
    for k in keys::list_secret_keys(&app.db).await.unwrap() {
        keys::revoke_secret_key(&app.identity, &k.id).await.unwrap();
    }
    let first = keys::ensure_initial_secret_key(&app.identity)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        keys::ensure_initial_secret_key(&app.identity)
            .await
            .unwrap(),
        None
    );
    call(&app, Method::GET, "/v1/users/count", &first)
        .expect(200)
        .await;
    // Nothing stored reveals a key.
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query("SELECT key_hash, prefix FROM identity_api_keys");
    for row in tx.fetch_all(q).await.unwrap() {
        let hash: String = row.try_get("key_hash").unwrap();
        assert_eq!(hash.len(), 64);
        assert!(!first.contains(&hash) && !hash.contains(&first[8..]));
    }
    tx.commit().await.unwrap();
    app.stop().await;
}

pub async fn the_openapi_document_describes_every_route(ctx: TestContext) {
    let app = ctx.spawn().await;
    let doc: Value = app.get("/v1/openapi.json").expect(200).await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["servers"][0]["url"], "/v1");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"]})
    );
    let routes = latchkey_identity::web::bapi::routes();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.push((method.to_uppercase(), format!("/v1{path}")));
            assert!(operation["responses"]["200"].is_object(), "{method} {path}");
            assert!(operation["operationId"].is_string(), "{method} {path}");
        }
    }
    let mut served: Vec<(String, String)> = routes
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    served.sort();
    documented.sort();
    assert_eq!(
        served, documented,
        "the document lists exactly the routes served"
    );
    // Every route answers (no key: 401 in Clerk's envelope; the document itself is public).
    for (method, path) in &routes {
        let path = path
            .replace("{user_id}", "user_x")
            .replace("{session_id}", "sess_x")
            .replace("{endpoint_id}", "ep_x");
        let reply = app.request(method.parse().unwrap(), &path).send().await;
        if path == "/v1/openapi.json" {
            assert_eq!(reply.status, 200);
        } else {
            assert_eq!(reply.status, 401, "{method} {path}");
            assert_eq!(error_code(&reply), "authentication_invalid");
        }
    }
    // Every reference resolves.
    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    found.push(r.clone());
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 50);
    for r in found {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    app.stop().await;
}

pub async fn the_official_clerk_backend_sdk_works_against_the_api(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let browser = sign_up(&app, "pages@example.com").await;
    let token = browser.cookie("__session").unwrap().to_owned();
    let out =
        latchkey_testkit::interop::node("clerk-backend.mjs", &[&app.url, &key, &token], b"").await;
    let out: Value = serde_json::from_str(&out).unwrap();

    let created = &out["created"];
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("user_"), "{out}");
    assert_eq!(created["firstName"], "Sdk");
    assert_eq!(created["email"], "sdk@example.com");
    assert_eq!(created["emailVerification"], "verified");
    assert_eq!(created["passwordEnabled"], true);
    assert_eq!(created["privateMetadata"], json!({"plan": "pro"}));
    assert_eq!(out["fetched"], out["created"]);
    // getUserList: the list and the count, newest first.
    assert_eq!(out["list"]["totalCount"], 2);
    assert_eq!(out["list"]["ids"][0], id);
    assert_eq!(out["list"]["ids"].as_array().unwrap().len(), 2);
    // updateUser: a PATCH for the name, a PUT /metadata for the metadata.
    let updated = &out["updated"];
    assert_eq!(updated["firstName"], "Renamed");
    assert_eq!(updated["publicMetadata"], json!({"role": "admin"}));
    assert_eq!(updated["privateMetadata"], json!({"plan": "pro"}));
    assert!(updated["updatedAt"].as_i64() > created["updatedAt"].as_i64());
    // Errors arrive as ClerkAPIResponseError with Clerk's codes.
    assert_eq!(out["duplicate"]["error"]["status"], 422, "{out}");
    assert_eq!(out["duplicate"]["error"]["code"], "form_identifier_exists");
    assert_eq!(out["duplicate"]["error"]["paramName"], "email_address");
    assert_eq!(
        out["deleted"],
        json!({"object": "user", "id": id, "slug": null, "deleted": true}),
        "{out}"
    );
    assert_eq!(out["afterDelete"]["error"]["status"], 404);
    assert_eq!(out["afterDelete"]["error"]["code"], "resource_not_found");
    assert_eq!(out["badKey"]["error"]["status"], 401);
    assert_eq!(out["badKey"]["error"]["code"], "clerk_key_invalid");
    // verifyToken fetched /v1/jwks with the secret key.
    let me: Value = browser
        .request(Method::GET, "/v1/me")
        .expect(200)
        .await
        .json();
    assert_eq!(out["token"]["ok"]["sub"], me["id"], "{out}");
    // The SDK's changes emitted the same events as the pages'.
    for kind in ["user.created", "user.updated", "user.deleted"] {
        assert!(!events_about(&app, kind, id).await.is_empty(), "{kind}");
    }
    app.stop().await;
}

pub async fn an_unavailable_database_answers_503_in_clerks_envelope(ctx: TestContext) {
    let (proxy, app) = spawn_behind_a_proxy(&ctx, |_| {}).await;
    let trusted = secret_key(&app).await;
    let unseen = secret_key(&app).await;
    call(&app, Method::GET, "/v1/users", &trusted)
        .expect(200)
        .await;
    proxy.cut();
    // A key this instance already trusts gets as far as the query; an unseen one cannot be
    // checked. Both are told to retry, and nothing internal leaks.
    for key in [&trusted, &unseen] {
        let reply = call(&app, Method::GET, "/v1/users", key).expect(503).await;
        assert_eq!(error_code(&reply), "database_unavailable");
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(!reply.text().contains("127.0.0.1"), "{}", reply.text());
    }
    proxy.restore();
    until_ok(Duration::from_secs(10), || {
        call(&app, Method::GET, "/v1/users", &unseen)
    })
    .await;
    app.stop().await;
}
