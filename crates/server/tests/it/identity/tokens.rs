//! Session tokens: what a standard JOSE library makes of them, forgeries, and key rotation.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_store::Row as _;
use latchkey_testkit::TestContext;
use serde_json::Value;

use super::{PASSWORD, claims, header, sign_in, sign_up};
use crate::support::{finish, latchkey, run_on};

pub async fn a_session_token_from_the_pages_verifies_with_a_standard_jose_library(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    let browser = sign_up(&app, "jose@example.com").await;
    let token = browser.cookie("__session").unwrap().to_owned();
    let out = latchkey_testkit::interop::node(
        "jose-verify.mjs",
        &[&format!("{}/.well-known/jwks.json", app.url), &token],
        b"",
    )
    .await;
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    let payload = &verified["payload"];
    let me: Value = browser
        .request(reqwest::Method::GET, "/v1/me")
        .expect(200)
        .await
        .json();
    assert_eq!(payload["sub"], me["id"]);
    assert!(payload["sid"].as_str().unwrap().starts_with("sess_"));
    assert_eq!(payload["iss"], app.url.as_str());
    assert_eq!(payload["azp"], app.url.as_str());
    assert_eq!(payload["v"], 2);
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        60
    );
    assert!(payload["nbf"].as_i64().unwrap() <= payload["iat"].as_i64().unwrap());
    assert_eq!(verified["header"]["alg"], "RS256");
    let jwks: Value = app.get("/.well-known/jwks.json").expect(200).await.json();
    assert_eq!(verified["header"]["kid"], jwks["keys"][0]["kid"]);
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    // A 2048-bit modulus is 256 bytes: 342 base64url characters.
    assert_eq!(jwks["keys"][0]["n"].as_str().unwrap().len(), 342);
    let cookie_flags = browser.cookie("__client").unwrap();
    assert_eq!(cookie_flags.len(), 43);
    app.stop().await;
}

pub async fn forged_and_foreign_tokens_are_refused(ctx: TestContext) {
    let app = ctx.spawn().await;
    let browser = sign_up(&app, "tokens@example.com").await;
    let token = browser.cookie("__session").unwrap().to_owned();
    app.get("/v1/me").bearer(&token).expect(200).await;

    let parts: Vec<&str> = token.split('.').collect();
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let mut payload = claims(&token);
    payload["sub"] = Value::String("user_someone_else".to_owned());
    let tampered = format!("{}.{}.{}", parts[0], encode(&payload), parts[2]);
    let mut none_header = header(&token);
    none_header["alg"] = Value::String("none".to_owned());
    let alg_none = format!("{}.{}.", encode(&none_header), parts[1]);
    let mut hs_header = header(&token);
    hs_header["alg"] = Value::String("HS256".to_owned());
    let hs256 = {
        use hmac::{KeyInit as _, Mac as _};
        let jwks = app.get("/.well-known/jwks.json").expect(200).await.text();
        let signing_input = format!("{}.{}", encode(&hs_header), parts[1]);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(jwks.as_bytes()).unwrap();
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let mut kid_header = header(&token);
    kid_header["kid"] = Value::String("ins_unknown".to_owned());
    let wrong_kid = format!("{}.{}.{}", encode(&kid_header), parts[1], parts[2]);
    for (name, forged, code) in [
        ("tampered", tampered.as_str(), "token_signature"),
        ("alg none", alg_none.as_str(), "token_algorithm"),
        ("HS256", hs256.as_str(), "token_algorithm"),
        ("wrong kid", wrong_kid.as_str(), "token_unknown_key"),
        ("garbage", "not.a.jwt", "token_malformed"),
    ] {
        let error: Value = app.get("/v1/me").bearer(forged).expect(401).await.json();
        assert_eq!(error["error"]["code"], code, "{name}: {error}");
        assert!(
            !error.to_string().contains(&token[..20]),
            "errors do not echo tokens"
        );
    }
    app.stop().await;
}

pub async fn rotated_keys_keep_old_tokens_verifying(ctx: TestContext) {
    let app = ctx.spawn().await;
    let browser = sign_up(&app, "rotate@example.com").await;
    let old_token = browser.cookie("__session").unwrap().to_owned();
    let old_kid = header(&old_token)["kid"].as_str().unwrap().to_owned();
    let rotated = run_on(&ctx, &app, &["keys", "rotate"]).await;
    assert_eq!(rotated.code, Some(0), "{}", rotated.stderr);
    // Another instance on the same database (same public URL, so the same issuer) starts with
    // both keys published, and, for the first minute, still signs with the old one: the new
    // key must reach every instance before a token signed with it does.
    let mut config = app.config.clone();
    config.public_url = Some(url::Url::parse(&app.url).unwrap());
    let second = ctx.start(config.clone()).await;
    let published = async |instance: &latchkey_testkit::TestApp| -> Vec<String> {
        let jwks: Value = instance
            .get("/.well-known/jwks.json")
            .expect(200)
            .await
            .json();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let kids = published(&second).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&old_kid));
    let staged_kid = kids.iter().find(|k| **k != old_kid).unwrap().clone();
    second.get("/v1/me").bearer(&old_token).expect(200).await;
    let signed_kid = async |instance: &latchkey_testkit::TestApp| -> String {
        let mut fresh = instance.browser();
        sign_in(&mut fresh, "rotate@example.com", PASSWORD, 303).await;
        header(fresh.cookie("__session").unwrap())["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        signed_kid(&second).await,
        old_kid,
        "not signing with the new key yet"
    );
    second.stop().await;

    // `--now` switches at once (the staged key never signs).
    let rotated = run_on(&ctx, &app, &["keys", "rotate", "--now"]).await;
    assert_eq!(rotated.code, Some(0), "{}", rotated.stderr);
    let third = ctx.start(config).await;
    let kids = published(&third).await;
    assert_eq!(kids.len(), 3, "{kids:?}");
    let new_kid = signed_kid(&third).await;
    assert!(new_kid != old_kid && new_kid != staged_kid, "{new_kid}");
    third.get("/v1/me").bearer(&old_token).expect(200).await;
    third.stop().await;

    // Run with another master secret (here: a data directory without this one's master.key),
    // a rotation is refused and writes nothing.
    let stranger = ctx.temp_dir();
    let mut command = latchkey(&ctx.temp_dir());
    command
        .args(["keys", "rotate", "--data-dir"])
        .arg(&stranger)
        .env(
            "DATABASE_URL",
            app.config.database_url.expose_for_child_process(),
        );
    let refused = finish(command).await;
    assert_ne!(refused.code, Some(0), "{}", refused.stdout);
    assert!(
        refused.stderr.contains("another master secret"),
        "{}",
        refused.stderr
    );
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx.query(
        "SELECT count(*) AS n, sum(CASE WHEN retired_at IS NULL THEN 1 ELSE 0 END) AS current \
         FROM identity_signing_keys",
    );
    let row = tx.fetch_one(q).await.unwrap();
    let (n, current): (i64, i64) = (row.try_get("n").unwrap(), row.try_get("current").unwrap());
    tx.commit().await.unwrap();
    assert_eq!((n, current), (3, 1), "the keys are as they were");
    app.stop().await;
}
