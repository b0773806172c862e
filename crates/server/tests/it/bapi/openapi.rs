//! The OpenAPI document at `/v1/openapi.json` against what the server sends. Every documented
//! operation is called on a live server, with the requests that bring out each documented
//! status; every answer's status must be documented for its operation and its body must
//! validate against the schema documented for that status (`latchkey_testkit::openapi`,
//! which also refuses properties the document does not name). At the end every documented
//! (operation, status) pair must have been seen; only 503 is excused on SQLite, where the
//! database cannot be cut away from a running server.

use std::time::Duration;

use latchkey_testkit::openapi::{Coverage, OpenApi};
use latchkey_testkit::{Backend, Call, TestApp, TestContext};
use reqwest::Method;
use serde_json::{Value, json};

use super::secret_key;
use crate::identity::{PASSWORD, sign_in};
use crate::support::spawn_behind_a_proxy;

/// An operation as the document names it: method and full path template.
type Op = (&'static str, &'static str);

const LIST_USERS: Op = ("GET", "/v1/users");
const CREATE_USER: Op = ("POST", "/v1/users");
const COUNT_USERS: Op = ("GET", "/v1/users/count");
const GET_USER: Op = ("GET", "/v1/users/{user_id}");
const UPDATE_USER: Op = ("PATCH", "/v1/users/{user_id}");
const DELETE_USER: Op = ("DELETE", "/v1/users/{user_id}");
const BAN: Op = ("POST", "/v1/users/{user_id}/ban");
const UNBAN: Op = ("POST", "/v1/users/{user_id}/unban");
const DISABLE_MFA: Op = ("DELETE", "/v1/users/{user_id}/mfa");
const DELETE_EXTERNAL_ACCOUNT: Op = (
    "DELETE",
    "/v1/users/{user_id}/external_accounts/{external_account_id}",
);
const REPLACE_METADATA: Op = ("PUT", "/v1/users/{user_id}/metadata");
const MERGE_METADATA: Op = ("PATCH", "/v1/users/{user_id}/metadata");
const LIST_SESSIONS: Op = ("GET", "/v1/sessions");
const REVOKE_SESSION: Op = ("POST", "/v1/sessions/{session_id}/revoke");
const JWKS: Op = ("GET", "/v1/jwks");
const EVENTS: Op = ("GET", "/v1/events");
const AUDIT_LOGS: Op = ("GET", "/v1/audit_logs");
const LIST_ENDPOINTS: Op = ("GET", "/v1/webhook_endpoints");
const CREATE_ENDPOINT: Op = ("POST", "/v1/webhook_endpoints");
const DELETE_ENDPOINT: Op = ("DELETE", "/v1/webhook_endpoints/{endpoint_id}");
const ROTATE_SECRET: Op = ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret");
const OPENAPI: Op = ("GET", "/v1/openapi.json");

/// A body that is JSON but not an object: `request_body_invalid`.
const NOT_AN_OBJECT: &str = "[1]";

/// Calls operations and judges each answer by the document.
struct Probe<'a> {
    app: &'a TestApp,
    api: OpenApi,
    coverage: Coverage,
}

impl<'a> Probe<'a> {
    async fn new(app: &'a TestApp) -> Self {
        let doc: Value = app.get("/v1/openapi.json").expect(200).await.json();
        Self {
            app,
            api: OpenApi::new(doc),
            coverage: Coverage::default(),
        }
    }

    /// A request for `method template`, its `{…}` parameters filled in order from `args`,
    /// `query` appended, with `key` if given.
    fn call(&self, (method, template): (&str, &str), args: &[&str], key: Option<&str>) -> Call {
        let path = fill(template, args);
        let call = self.app.request(method.parse::<Method>().unwrap(), &path);
        match key {
            Some(key) => call.bearer(key),
            None => call,
        }
    }

    /// Sends `call` for `op`, judges the answer by the document, records it, and checks it
    /// has the `expected` status; the body.
    async fn check(
        &mut self,
        (method, template): (&str, &str),
        call: Call,
        expected: u16,
    ) -> Value {
        let reply = call.send().await;
        if let Err(departure) = self.api.check(method, template, &reply) {
            panic!("{departure}");
        }
        assert_eq!(
            reply.status.as_u16(),
            expected,
            "{method} {template}: {}",
            reply.text()
        );
        self.coverage
            .record(method, template, reply.status.as_u16());
        reply.json()
    }

    /// Every documented operation, as owned (method, template) pairs.
    fn operations(&self) -> Vec<(String, String)> {
        self.api.operations().into_iter().collect()
    }

    fn documents(&self, (method, path): (&str, &str), status: u16) -> bool {
        self.api.statuses(method, path).contains(&status)
    }
}

/// `template` with its `{…}` parameters replaced, in order, by `args` (missing ones by `x`),
/// and the query string `args` may end with (an argument starting with `?`).
fn fill(template: &str, args: &[&str]) -> String {
    let mut values = args.iter().filter(|a| !a.starts_with('?'));
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str(&rest[..open]);
        out.push_str(values.next().copied().unwrap_or("x"));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    if let Some(query) = args.iter().find(|a| a.starts_with('?')) {
        out.push_str(query);
    }
    out
}

fn json_call(call: Call, body: &Value) -> Call {
    call.json(body)
}

fn raw_call(call: Call, body: &'static str) -> Call {
    call.header("content-type", "application/json").body(body)
}

pub async fn every_documented_response_matches_its_schema(ctx: TestContext) {
    // On Postgres the server reaches its database through a proxy that can be cut, for 503.
    let (proxy, app) = if ctx.backend == Backend::Postgres {
        let (proxy, app) = spawn_behind_a_proxy(&ctx, |_| {}).await;
        (Some(proxy), app)
    } else {
        (None, ctx.spawn().await)
    };
    let key = secret_key(&app).await;
    let mut p = Probe::new(&app).await;

    anyone_gets_the_document_and_control_characters_are_refused(&mut p).await;
    every_operation_wants_a_key(&mut p).await;
    users(&mut p, &key).await;
    oversized_bodies(&mut p, &key).await;
    sessions_and_jwks(&mut p, &key).await;
    webhook_endpoints(&mut p, &key).await;
    the_event_feed(&mut p, &key).await;
    the_audit_log(&mut p, &key).await;
    past_the_rate_limit(&mut p, &secret_key(&app).await).await;
    if let Some(proxy) = &proxy {
        let unseen = secret_key(&app).await;
        proxy.cut();
        without_the_database(&mut p, &key, &unseen).await;
        proxy.restore();
    }

    let excused: &[u16] = if proxy.is_some() { &[] } else { &[503] };
    let missing = p.coverage.missing(&p.api, excused);
    assert!(
        missing.is_empty(),
        "documented but never seen:\n{}",
        missing.join("\n")
    );
    app.stop().await;
}

async fn anyone_gets_the_document_and_control_characters_are_refused(p: &mut Probe<'_>) {
    let doc = p.check(OPENAPI, p.call(OPENAPI, &[], None), 200).await;
    assert!(doc["paths"].is_object());
    // A control character in the path or the query string is refused before anything else,
    // on every route.
    for (method, path) in p.operations() {
        let op = (method.as_str(), path.as_str());
        let args: &[&str] = if path.contains('{') {
            &["x%01", "x%01"]
        } else {
            &["?q=%01"]
        };
        let call = p.call(op, args, None);
        p.check(op, call, 400).await;
    }
}

async fn every_operation_wants_a_key(p: &mut Probe<'_>) {
    for (method, path) in p.operations() {
        let op = (method.as_str(), path.as_str());
        if op == OPENAPI {
            continue;
        }
        let call = p.call(op, &[], None);
        p.check(op, call, 401).await;
        let call = p.call(op, &[], Some("sk_live_wrong"));
        p.check(op, call, 401).await;
    }
}

async fn users(p: &mut Probe<'_>, key: &str) {
    let k = Some(key);
    let body = json!({
        "email_address": ["doc@example.com"],
        "password": PASSWORD,
        "first_name": "Doc",
        "external_id": "ext-1",
        "public_metadata": {"role": "admin"},
    });
    let full = p
        .check(
            CREATE_USER,
            json_call(p.call(CREATE_USER, &[], k), &body),
            200,
        )
        .await;
    let id = full["id"].as_str().unwrap().to_owned();
    // A user with no email address: the nullable fields are null.
    let bare = json!({"username": "docs-bare"});
    let bare = p
        .check(
            CREATE_USER,
            json_call(p.call(CREATE_USER, &[], k), &bare),
            200,
        )
        .await;
    let bare_id = bare["id"].as_str().unwrap().to_owned();
    p.check(
        CREATE_USER,
        raw_call(p.call(CREATE_USER, &[], k), NOT_AN_OBJECT),
        400,
    )
    .await;
    p.check(
        CREATE_USER,
        json_call(p.call(CREATE_USER, &[], k), &json!({})),
        422,
    )
    .await;
    let taken = json!({"email_address": ["doc@example.com"]});
    p.check(
        CREATE_USER,
        json_call(p.call(CREATE_USER, &[], k), &taken),
        422,
    )
    .await;

    let listed = p.check(LIST_USERS, p.call(LIST_USERS, &[], k), 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    p.check(LIST_USERS, p.call(LIST_USERS, &["?limit=0"], k), 422)
        .await;
    p.check(COUNT_USERS, p.call(COUNT_USERS, &[], k), 200).await;
    p.check(COUNT_USERS, p.call(COUNT_USERS, &["?bogus=1"], k), 422)
        .await;

    for user in [&id, &bare_id] {
        p.check(GET_USER, p.call(GET_USER, &[user], k), 200).await;
    }
    let patch = json!({"last_name": "Writer", "unsafe_metadata": {"theme": "dark"}});
    p.check(
        UPDATE_USER,
        json_call(p.call(UPDATE_USER, &[&id], k), &patch),
        200,
    )
    .await;
    p.check(
        UPDATE_USER,
        raw_call(p.call(UPDATE_USER, &[&id], k), NOT_AN_OBJECT),
        400,
    )
    .await;
    p.check(
        UPDATE_USER,
        json_call(p.call(UPDATE_USER, &[&id], k), &json!({"first_name": 3})),
        422,
    )
    .await;
    for op in [REPLACE_METADATA, MERGE_METADATA] {
        let change = json!({"private_metadata": {"plan": "pro"}});
        p.check(op, json_call(p.call(op, &[&id], k), &change), 200)
            .await;
        p.check(op, raw_call(p.call(op, &[&id], k), NOT_AN_OBJECT), 400)
            .await;
        p.check(
            op,
            json_call(p.call(op, &[&id], k), &json!({"public_metadata": 3})),
            422,
        )
        .await;
        p.check(
            op,
            json_call(p.call(op, &["user_missing"], k), &change),
            404,
        )
        .await;
    }
    for op in [
        GET_USER,
        BAN,
        UNBAN,
        DISABLE_MFA,
        DELETE_USER,
        DELETE_EXTERNAL_ACCOUNT,
    ] {
        p.check(op, p.call(op, &["user_missing"], k), 404).await;
    }
    p.check(
        UPDATE_USER,
        json_call(p.call(UPDATE_USER, &["user_missing"], k), &patch),
        404,
    )
    .await;
    p.check(BAN, p.call(BAN, &[&bare_id], k), 200).await;
    p.check(UNBAN, p.call(UNBAN, &[&bare_id], k), 200).await;
    p.check(DISABLE_MFA, p.call(DISABLE_MFA, &[&bare_id], k), 200)
        .await;
    let linked = link_external_account(p.app, &bare_id).await;
    p.check(
        DELETE_EXTERNAL_ACCOUNT,
        p.call(DELETE_EXTERNAL_ACCOUNT, &[&bare_id, &linked], k),
        200,
    )
    .await;
    p.check(DELETE_USER, p.call(DELETE_USER, &[&bare_id], k), 200)
        .await;
}

/// Links a provider account to `user_id` as a social sign-in would; its id.
async fn link_external_account(app: &TestApp, user_id: &str) -> String {
    use latchkey_identity::oauth::accounts::{Profile, link};
    let mut tx = app.db.begin().await.unwrap();
    let profile = Profile {
        provider: "oauth_custom_probe".to_owned(),
        provider_user_id: format!("probe-{user_id}"),
        approved_scopes: "openid".to_owned(),
        ..Profile::default()
    };
    let account = link(&mut tx, user_id, &profile, 1_700_000_000_000)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    account.id
}

/// A body past the 2 MB limit, on every operation that takes one.
async fn oversized_bodies(p: &mut Probe<'_>, key: &str) {
    let big = json!({"first_name": "x".repeat(2 * 1024 * 1024 + 1)});
    for op in [
        CREATE_USER,
        UPDATE_USER,
        REPLACE_METADATA,
        MERGE_METADATA,
        CREATE_ENDPOINT,
    ] {
        p.check(op, json_call(p.call(op, &["user_x"], Some(key)), &big), 413)
            .await;
    }
}

async fn sessions_and_jwks(p: &mut Probe<'_>, key: &str) {
    let k = Some(key);
    let users = p
        .check(
            LIST_USERS,
            p.call(LIST_USERS, &["?email_address=doc@example.com"], k),
            200,
        )
        .await;
    let id = users[0]["id"].as_str().unwrap().to_owned();
    let mut browser = p.app.browser();
    sign_in(&mut browser, "doc@example.com", PASSWORD, 303).await;
    let query = format!("?user_id={id}");
    let sessions = p
        .check(LIST_SESSIONS, p.call(LIST_SESSIONS, &[&query], k), 200)
        .await;
    let session = sessions[0]["id"].as_str().unwrap().to_owned();
    p.check(LIST_SESSIONS, p.call(LIST_SESSIONS, &[], k), 422)
        .await;
    p.check(REVOKE_SESSION, p.call(REVOKE_SESSION, &[&session], k), 200)
        .await;
    p.check(REVOKE_SESSION, p.call(REVOKE_SESSION, &[&session], k), 400)
        .await;
    p.check(
        REVOKE_SESSION,
        p.call(REVOKE_SESSION, &["sess_missing"], k),
        404,
    )
    .await;
    let all = format!("{query}&status=revoked");
    let revoked = p
        .check(LIST_SESSIONS, p.call(LIST_SESSIONS, &[&all], k), 200)
        .await;
    assert_eq!(revoked.as_array().unwrap().len(), 1);
    let keys = p.check(JWKS, p.call(JWKS, &[], k), 200).await;
    assert!(!keys["keys"].as_array().unwrap().is_empty());
}

async fn webhook_endpoints(p: &mut Probe<'_>, key: &str) {
    let k = Some(key);
    let listed = p
        .check(LIST_ENDPOINTS, p.call(LIST_ENDPOINTS, &[], k), 200)
        .await;
    let internal = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["internal"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"url": "https://hooks.example.com/docs", "events": ["user.created"]});
    let made = p
        .check(
            CREATE_ENDPOINT,
            json_call(p.call(CREATE_ENDPOINT, &[], k), &body),
            200,
        )
        .await;
    let id = made["id"].as_str().unwrap().to_owned();
    p.check(
        CREATE_ENDPOINT,
        raw_call(p.call(CREATE_ENDPOINT, &[], k), NOT_AN_OBJECT),
        400,
    )
    .await;
    p.check(
        CREATE_ENDPOINT,
        json_call(p.call(CREATE_ENDPOINT, &[], k), &json!({})),
        422,
    )
    .await;
    p.check(LIST_ENDPOINTS, p.call(LIST_ENDPOINTS, &[], k), 200)
        .await;
    for op in [ROTATE_SECRET, DELETE_ENDPOINT] {
        p.check(op, p.call(op, &[&internal], k), 400).await;
        p.check(op, p.call(op, &[&id], k), 200).await;
    }
    for op in [ROTATE_SECRET, DELETE_ENDPOINT] {
        p.check(op, p.call(op, &[&id], k), 404).await;
    }
}

async fn the_event_feed(p: &mut Probe<'_>, key: &str) {
    // Events are served once they are 2 s old.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let page = p.check(EVENTS, p.call(EVENTS, &[], Some(key)), 200).await;
    assert!(page["data"].as_array().unwrap().len() >= 5, "{page}");
    p.check(EVENTS, p.call(EVENTS, &["?limit=0"], Some(key)), 422)
        .await;
}

async fn the_audit_log(p: &mut Probe<'_>, key: &str) {
    let page = p
        .check(
            AUDIT_LOGS,
            p.call(AUDIT_LOGS, &["?limit=2"], Some(key)),
            200,
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2, "{page}");
    let next = page["next"].as_str().unwrap().to_owned();
    p.check(
        AUDIT_LOGS,
        p.call(AUDIT_LOGS, &[&format!("?before={next}")], Some(key)),
        200,
    )
    .await;
    p.check(
        AUDIT_LOGS,
        p.call(AUDIT_LOGS, &["?before=x"], Some(key)),
        422,
    )
    .await;
}

/// Uses up `key`'s window with requests that cost no database work (422), then calls every
/// operation with it.
async fn past_the_rate_limit(p: &mut Probe<'_>, key: &str) {
    let limit = latchkey_identity::web::bapi::RATE_LIMIT.max;
    let mut refused = false;
    let mut sent = 0;
    while !refused {
        assert!(sent < 3 * limit, "the limit was never reached");
        let batch: Vec<_> = (0..50)
            .map(|_| tokio::spawn(p.call(LIST_SESSIONS, &[], Some(key)).send()))
            .collect();
        for handle in batch {
            refused |= handle.await.unwrap().status == 429;
            sent += 1;
        }
    }
    for (method, path) in p.operations() {
        let op = (method.as_str(), path.as_str());
        if op == OPENAPI {
            continue;
        }
        let expected = if p.documents(op, 429) { 429 } else { 200 };
        let call = p.call(op, &[], Some(key));
        p.check(op, call, expected).await;
    }
}

/// With the database cut: a key the server has not seen cannot be checked (503 everywhere);
/// one it trusts gets as far as the handler, which answers 503 too.
async fn without_the_database(p: &mut Probe<'_>, trusted: &str, unseen: &str) {
    for (method, path) in p.operations() {
        let op = (method.as_str(), path.as_str());
        if op == OPENAPI {
            continue;
        }
        let call = p.call(op, &[], Some(unseen));
        p.check(op, call, 503).await;
    }
    let body = json!({"email_address": ["down@example.com"]});
    p.check(
        CREATE_USER,
        json_call(p.call(CREATE_USER, &[], Some(trusted)), &body),
        503,
    )
    .await;
    p.check(LIST_USERS, p.call(LIST_USERS, &[], Some(trusted)), 503)
        .await;
    p.check(EVENTS, p.call(EVENTS, &[], Some(trusted)), 503)
        .await;
    p.check(AUDIT_LOGS, p.call(AUDIT_LOGS, &[], Some(trusted)), 503)
        .await;
}
