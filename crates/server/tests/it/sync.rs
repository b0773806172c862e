//! The Clerk webhook receiver: verified, exactly once, in order, never resurrecting.
//! The helpers are here; the tests are in the submodules.

pub mod events;
pub mod order;
pub mod signatures;

use latchkey_store::Row as _;
use latchkey_testkit::clerk::Signer;
use latchkey_testkit::{Call, TestApp, TestContext};
use serde_json::Value;

/// A server that trusts deliveries signed by the returned signer.
async fn receiver(ctx: &TestContext) -> (TestApp, Signer) {
    let signer = Signer::new();
    let secret = signer.secret.clone();
    let app = ctx
        .spawn_with(|config| config.clerk_webhook_signing_secrets = vec![secret])
        .await;
    (app, signer)
}

/// How many rows `table` holds.
async fn count(app: &TestApp, table: &str) -> i64 {
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query_owned(format!("SELECT count(*) AS n FROM {table}"));
    let n = tx.fetch_one(q).await.unwrap().try_get("n").unwrap();
    tx.commit().await.unwrap();
    n
}

/// `(outcome, detail, attempts)` recorded for the message `svix_id`.
async fn outcome_of(app: &TestApp, svix_id: &str) -> (String, Option<String>, i64) {
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx
        .query("SELECT outcome, detail, attempts FROM clerk_webhook_events WHERE svix_id = $1")
        .bind(svix_id);
    let row = tx.fetch_one(q).await.unwrap();
    (
        row.try_get("outcome").unwrap(),
        row.try_get("detail").unwrap(),
        row.try_get("attempts").unwrap(),
    )
}

/// Delivers `body` as message `msg_id`, expecting 200; the outcome the receipt names.
async fn delivered(app: &TestApp, signer: &Signer, msg_id: &str, body: &Value) -> String {
    let receipt: Value = app.deliver(signer, msg_id, body).expect(200).await.json();
    receipt["outcome"].as_str().unwrap().to_owned()
}

/// A POST to the Clerk webhook receiver with `headers`.
fn post_with(
    app: &TestApp,
    headers: impl IntoIterator<Item = (impl AsRef<str>, impl AsRef<str>)>,
) -> Call {
    let mut call = app.post("/api/webhooks/clerk");
    for (name, value) in headers {
        call = call.header(name.as_ref(), value.as_ref());
    }
    call
}
