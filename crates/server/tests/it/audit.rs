//! The audit log: management API changes with the key's id, command-line changes, security
//! events (a lockout, an authenticator app, secret keys) written in their transactions as one
//! hash chain; `latchkey audit verify` names the first entry an edit broke; pruning keeps the
//! chain verifiable.

use latchkey_identity::audit::{self, chain};
use latchkey_identity::secret_keys;
use latchkey_testkit::{TestApp, TestContext};
use reqwest::Method;
use serde_json::{Value, json};

use crate::bapi::{call, secret_key};
use crate::identity::{PASSWORD, sign_in, sign_up};
use crate::support::run_on;

async fn entries(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let page: Value = call(app, Method::GET, &format!("/v1/audit_logs{query}"), key)
        .expect(200)
        .await
        .json();
    page["data"].as_array().unwrap().clone()
}

fn actions(entries: &[Value]) -> Vec<(String, String, Option<String>)> {
    entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"]["type"].as_str().unwrap().to_owned(),
                e["actor"]["id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

async fn execute(app: &TestApp, sql: &'static str, seq: i64) {
    let mut tx = app.db.begin().await.unwrap();
    let q = tx.query(sql).bind(seq);
    assert_eq!(tx.execute(q).await.unwrap(), 1, "{sql}");
    tx.commit().await.unwrap();
}

pub async fn changes_and_security_events_are_audited_in_a_chain_an_edit_breaks(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let key_id = secret_keys::list_secret_keys(&app.db)
        .await
        .unwrap()
        .last()
        .unwrap()
        .id
        .clone();

    // A management API change: the key's doing.
    let created: Value = call(&app, Method::POST, "/v1/users", &key)
        .json(&json!({"email_address": ["audited@example.com"], "password": PASSWORD}))
        .expect(200)
        .await
        .json();
    let user_id = created["id"].as_str().unwrap().to_owned();
    // At the command line.
    let granted = run_on(
        &ctx,
        &app,
        &["users", "grant-operator", "audited@example.com"],
    )
    .await;
    assert_eq!(granted.code, Some(0), "{}", granted.stderr);
    assert!(
        granted.stdout.contains("is now an operator"),
        "{}",
        granted.stdout
    );
    // A lockout: ten wrong passwords, then the eleventh attempt is refused.
    let mut browser = app.browser();
    for _ in 0..10 {
        sign_in(&mut browser, "audited@example.com", "wrong password!", 401).await;
    }
    sign_in(&mut browser, "audited@example.com", PASSWORD, 429).await;
    sign_in(&mut browser, "audited@example.com", PASSWORD, 429).await;

    let about = entries(&app, &key, &format!("?user_id={user_id}")).await;
    assert_eq!(
        actions(&about),
        [
            ("user.locked_out".to_owned(), "system".to_owned(), None),
            ("operator.granted".to_owned(), "cli".to_owned(), None),
            (
                "user.created".to_owned(),
                "api_key".to_owned(),
                Some(key_id.clone())
            ),
        ],
        "newest first, one lockout entry however many refusals: {about:#?}"
    );
    assert_eq!(about[0]["ip"], "127.0.0.1");
    assert_eq!(about[0]["detail"]["failed_attempts"], 10);

    // A person's own factor change is theirs; making a key is recorded with its id only.
    let mut person = sign_up(&app, "factor@example.com").await;
    crate::mfa::enrol(&app, &mut person).await;
    let newest = entries(&app, &key, "?limit=1").await;
    assert_eq!(newest[0]["action"], "mfa.totp_enabled");
    assert_eq!(newest[0]["actor"]["type"], "user");
    assert_eq!(newest[0]["actor"]["id"], newest[0]["subject_id"]);
    let all = entries(&app, &key, "?limit=500").await;
    let made: Vec<&Value> = all
        .iter()
        .filter(|e| e["action"] == "secret_key.created")
        .collect();
    assert!(
        made.iter()
            .any(|e| e["detail"]["key_id"] == key_id.as_str())
    );
    assert!(
        !serde_json::to_string(&all).unwrap().contains(&key),
        "no entry holds a secret key"
    );
    // The chain links each entry to the one before.
    for pair in all.windows(2) {
        assert_eq!(pair[0]["prev_hash"], pair[1]["hash"]);
        assert_eq!(
            pair[0]["seq"].as_i64().unwrap(),
            pair[1]["seq"].as_i64().unwrap() + 1
        );
    }

    let verify = run_on(&ctx, &app, &["audit", "verify"]).await;
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    assert!(
        verify
            .stdout
            .contains(&format!("{} entries verified", all.len())),
        "{}",
        verify.stdout
    );

    // An edit by SQL, however small, breaks the chain at that entry.
    let victim = about[1]["seq"].as_i64().unwrap();
    execute(
        &app,
        "UPDATE identity_audit_log SET actor_type = 'system' WHERE seq = $1",
        victim,
    )
    .await;
    let broken = run_on(&ctx, &app, &["audit", "verify", "--json"]).await;
    assert_eq!(broken.code, Some(5), "{}", broken.stdout);
    let report: Value = serde_json::from_str(&broken.stdout).unwrap();
    assert_eq!(report["broken"]["seq"], victim, "{report}");
    assert_eq!(report["broken"]["id"], about[1]["id"]);
    let text = run_on(&ctx, &app, &["audit", "verify"]).await;
    assert!(
        text.stdout
            .contains(&format!("the chain breaks at entry {victim}")),
        "{}",
        text.stdout
    );
}

pub async fn pruning_keeps_the_chain_verifiable_and_a_removed_entry_is_named(ctx: TestContext) {
    let app = ctx.spawn().await;
    for _ in 0..6 {
        secret_keys::create_secret_key(&app.identity).await.unwrap();
        // A minute apart, so the cut below falls between entries.
        app.clock().advance(std::time::Duration::from_secs(60));
    }
    let rows = audit::page(&app.identity, None, None, 100).await.unwrap();
    assert!(rows.len() >= 7, "the first key and six more");
    // Keep the newest four.
    let cut = &rows[3];
    let pruned = chain::prune(&app.identity, cut.occurred_at + 1)
        .await
        .unwrap();
    let kept = audit::page(&app.identity, None, None, 100).await.unwrap();
    assert!(pruned > 0 && !kept.is_empty());
    let verified = chain::verify(&app.identity).await.unwrap();
    assert_eq!(verified.broken, None, "{verified:?}");
    assert_eq!(verified.first_seq, kept.last().unwrap().seq);
    assert_eq!(
        usize::try_from(verified.checked).unwrap(),
        kept.len(),
        "{verified:?}"
    );

    // Removing the newest entry is caught against the head; one from the middle is named.
    let newest = kept[0].seq;
    execute(
        &app,
        "DELETE FROM identity_audit_log WHERE seq = $1",
        newest,
    )
    .await;
    let broken = chain::verify(&app.identity).await.unwrap().broken.unwrap();
    assert_eq!((broken.seq, broken.id), (newest, None));
    assert!(broken.reason.contains("ends before"), "{}", broken.reason);
    let middle = kept[kept.len() / 2].seq;
    assert!(middle < newest && middle > kept.last().unwrap().seq);
    execute(
        &app,
        "DELETE FROM identity_audit_log WHERE seq = $1",
        middle,
    )
    .await;
    let broken = chain::verify(&app.identity).await.unwrap().broken.unwrap();
    assert_eq!((broken.seq, broken.id), (middle, None));
}
