//! Moving from Clerk: `latchkey import clerk` from the dashboard's CSV export (bcrypt digests
//! made by bcryptjs, Django PBKDF2 digests made by Python's hashlib) and from the Backend API,
//! and password digests through `POST`/`PATCH /v1/users`.

use latchkey_protocol::clerk::Event;
use latchkey_testkit::browser::Browser;
use latchkey_testkit::fake_clerk::FakeClerk;
use latchkey_testkit::{TestApp, TestContext, interop};
use serde_json::{Value, json};

use crate::bapi::secret_key;
use crate::support::{Finished, finish, latchkey_on};

const HEADER: &str = "id,first_name,last_name,username,primary_email_address,primary_phone_number,verified_email_addresses,unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers,totp_secret,password_digest,password_hasher";

/// bcrypt digests of `passwords` (cost 6), made by bcryptjs.
async fn bcrypt(passwords: &[&str]) -> Vec<String> {
    let out = interop::node(
        "bcrypt-hash.mjs",
        &["6"],
        format!("{}\n", passwords.join("\n")).as_bytes(),
    )
    .await;
    out.lines().map(str::to_owned).collect()
}

/// A Django `pbkdf2_sha256` digest of `password`, made by Python's hashlib.
async fn django_pbkdf2(password: &str) -> String {
    let script = "import base64, hashlib, sys\n\
        p = sys.argv[1].encode()\n\
        print('pbkdf2_sha256$1000$pepper$' + base64.b64encode(hashlib.pbkdf2_hmac('sha256', p, b'pepper', 1000)).decode())";
    let output = tokio::process::Command::new("python3")
        .args(["-c", script, password])
        .output()
        .await
        .expect("python3 runs");
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn import(ctx: &TestContext, app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = latchkey_on(ctx, app, &[&["import", "clerk"], args].concat());
    command.envs(env.iter().copied());
    finish(command).await
}

async fn sign_in(app: &TestApp, email: &str, password: &str, status: u16) -> Browser {
    let mut browser = app.browser();
    browser
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email_address", email), ("password", password)],
            status,
        )
        .await;
    browser
}

async fn stored_hash(app: &TestApp, user_id: &str) -> Option<String> {
    let mut tx = app.db.begin_read().await.unwrap();
    let hash = latchkey_identity::users::password_hash(&mut tx, user_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    hash
}

async fn users_table(app: &TestApp) -> Vec<Value> {
    let mut tx = app.db.begin_read().await.unwrap();
    let q = tx
        .query("SELECT id, first_name, updated_at, password_hash FROM identity_users ORDER BY id");
    let rows = tx.fetch_all(q).await.unwrap();
    tx.commit().await.unwrap();
    rows.iter()
        .map(|row| {
            use latchkey_store::Row as _;
            json!({
                "id": row.try_get::<String, _>("id").unwrap(),
                "first_name": row.try_get::<Option<String>, _>("first_name").unwrap(),
                "updated_at": row.try_get::<i64, _>("updated_at").unwrap(),
                "password_hash": row.try_get::<Option<String>, _>("password_hash").unwrap(),
            })
        })
        .collect()
}

pub async fn a_clerk_export_imports_and_its_users_sign_in_with_their_old_passwords(
    ctx: TestContext,
) {
    let app = ctx.spawn().await;
    // The app already holds Ada's row and a note of hers, from the days of Clerk: it came
    // through Clerk's webhook.
    let clerk = FakeClerk::start(0, None).await;
    let ada = clerk.add_user("user_2ada", "ada@example.com");
    let event = json!({"type": "user.created", "object": "event", "timestamp": 1, "data": ada});
    let revocations =
        latchkey_app::session::Revocations::new(latchkey_protocol::time::Clock::system());
    latchkey_app::webhooks::apply(
        &app.db,
        latchkey_app::webhooks::Targets {
            revocations: &revocations,
            shadow: None,
        },
        "msg_from_clerk",
        &Event::parse(event.to_string().as_bytes()).unwrap(),
    )
    .await
    .unwrap();
    let app_row = app.app_users().await.remove(0);
    assert_eq!(app_row.clerk_user_id, "user_2ada");
    {
        let mut tx = app.db.begin().await.unwrap();
        latchkey_app::data::create_note(&mut tx, &app_row.id, "From before", "kept", 1)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    let digests = bcrypt(&["ada-old-password", "bob-old-password"]).await;
    let grace = django_pbkdf2("grace-old-password").await;
    let csv = [
        HEADER.to_owned(),
        format!(
            "user_2ada,Ada,Lovelace,,ada@example.com,,ada@example.com|ada@work.example,ada@old.example,,,,{},bcrypt",
            digests[0]
        ),
        format!(
            "user_2bob,Bob,,bob,bob@example.com,,bob@example.com,,,,,{},bcrypt",
            digests[1]
        ),
        format!("user_2grace,Grace,Hopper,,grace@example.com,,grace@example.com,,,,,{grace},pbkdf2_sha256_django"),
        "user_2nopass,No,Password,,nopass@example.com,,,,,,,,".to_owned(),
        "user_2md5,Md,Five,,md5@example.com,,md5@example.com,,,,,5f4dcc3b5aa765d61d8327deb882cf99,md5".to_owned(),
        "not-a-clerk-id,Bad,Id,,bad@example.com,,bad@example.com,,,,,,".to_owned(),
        format!("user_2thief,Thief,,,ada@example.com,,ada@example.com,,,,,{},bcrypt", digests[1]),
    ]
    .join("\n");
    let path = ctx.temp_dir().join("users.csv");
    std::fs::write(&path, format!("{csv}\n")).unwrap();
    let path = path.to_str().unwrap();

    let first = import(&ctx, &app, &["--csv", path, "--json"], &[]).await;
    assert_eq!(first.code, Some(1), "rows were refused: {}", first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["created"], 4, "{report}");
    assert_eq!(report["updated"], 0);
    let refused = report["refused"].as_array().unwrap();
    let lines: Vec<(i64, &str)> = refused
        .iter()
        .map(|r| (r["line"].as_i64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(lines.len(), 3, "{report}");
    assert_eq!(lines[0].0, 6);
    assert!(
        lines[0].1.contains("unsupported password_hasher"),
        "{}",
        lines[0].1
    );
    assert_eq!(lines[1].0, 7);
    assert!(lines[1].1.contains("user_"), "{}", lines[1].1);
    assert_eq!(lines[2].0, 8);
    assert!(
        lines[2].1.contains("belongs to another account"),
        "{}",
        lines[2].1
    );
    // A refused row wrote nothing.
    let ids: Vec<String> = users_table(&app)
        .await
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["user_2ada", "user_2bob", "user_2grace", "user_2nopass"]
    );

    // Old passwords work; a wrong one does not; each digest is re-hashed by its first sign-in.
    sign_in(&app, "ada@example.com", "bob-old-password", 401).await;
    assert!(
        stored_hash(&app, "user_2ada")
            .await
            .unwrap()
            .starts_with("$2")
    );
    let ada_browser = sign_in(&app, "ada@example.com", "ada-old-password", 303).await;
    sign_in(&app, "grace@example.com", "grace-old-password", 303).await;
    for id in ["user_2ada", "user_2grace"] {
        let hash = stored_hash(&app, id).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{id}: {hash}");
    }
    assert!(
        stored_hash(&app, "user_2bob")
            .await
            .unwrap()
            .starts_with("$2")
    );
    sign_in(&app, "ada@example.com", "ada-old-password", 303).await;

    // The app's row from before is the one Ada now reaches, with her note.
    let me: Value = ada_browser
        .request(reqwest::Method::GET, "/api/me")
        .expect(200)
        .await
        .json();
    assert_eq!(me["user"]["id"], app_row.id.as_str());
    assert_eq!(me["user"]["clerk_user_id"], "user_2ada");
    assert_eq!(me["note_count"], 1);

    // Every address came along, verified as the export said.
    let ada: Value = app
        .get("/v1/users/user_2ada")
        .bearer(&secret_key(&app).await)
        .expect(200)
        .await
        .json();
    let addresses: Vec<(String, String)> = ada["email_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["email_address"].as_str().unwrap().to_owned(),
                e["verification"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(addresses.contains(&("ada@example.com".into(), "verified".into())));
    assert!(addresses.contains(&("ada@work.example".into(), "verified".into())));
    assert!(addresses.contains(&("ada@old.example".into(), "unverified".into())));
    assert_eq!(ada["first_name"], "Ada");

    // Running it again changes nothing: not the rows, not the re-hashed passwords.
    let before = users_table(&app).await;
    let second = import(&ctx, &app, &["--csv", path, "--json"], &[]).await;
    let report: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(
        (&report["created"], &report["updated"], &report["unchanged"]),
        (&json!(0), &json!(0), &json!(4)),
        "{report}"
    );
    assert_eq!(users_table(&app).await, before);
    sign_in(&app, "ada@example.com", "ada-old-password", 303).await;

    // No event went out for the imported users: the app got no row for Bob or Grace.
    let clerk_ids: Vec<String> = app
        .app_users()
        .await
        .into_iter()
        .map(|u| u.clerk_user_id)
        .collect();
    assert_eq!(clerk_ids, ["user_2ada"]);
    app.stop().await;
}

pub async fn the_backend_api_import_pages_through_clerk_and_keeps_ids(ctx: TestContext) {
    let app = ctx.spawn().await;
    // 250 users across three pages, with a 429 every 2nd request.
    let clerk = FakeClerk::start(250, Some(2)).await;
    let env = [
        ("CLERK_SECRET_KEY", clerk.secret_key.as_str()),
        ("CLERK_API_URL", clerk.url.as_str()),
    ];
    let first = import(&ctx, &app, &["--json"], &env).await;
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["created"], 250, "{report}");
    assert!(clerk.rate_limited() > 0, "the fake answered some 429s");
    clerk.rename("user_fake000000", "Renamed");
    let second = import(&ctx, &app, &["--json", "--emit-events"], &env).await;
    let report: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(
        (&report["updated"], &report["unchanged"]),
        (&json!(1), &json!(249)),
        "{report}"
    );
    let renamed = users_table(&app)
        .await
        .into_iter()
        .find(|u| u["id"] == "user_fake000000")
        .unwrap();
    assert_eq!(renamed["first_name"], "Renamed");
    // Without a source the command says what it needs.
    let bare = import(&ctx, &app, &[], &[]).await;
    assert_eq!(bare.code, Some(2));
    assert!(bare.stderr.contains("--csv"), "{}", bare.stderr);
    app.stop().await;
}

pub async fn password_digests_are_taken_through_the_management_api(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let digests = bcrypt(&["api-old-password", "patched-password"]).await;
    let created: Value = app
        .post("/v1/users")
        .bearer(&key)
        .json(&json!({
            "email_address": ["api@example.com"],
            "password_digest": digests[0],
            "password_hasher": "bcrypt",
        }))
        .expect(200)
        .await
        .json();
    assert_eq!(created["password_enabled"], true);
    let id = created["id"].as_str().unwrap().to_owned();
    sign_in(&app, "api@example.com", "api-old-password", 303).await;

    let refused = [
        (
            json!({"password_digest": digests[1], "password_hasher": "md5"}),
            "password_hasher",
        ),
        (
            json!({"password_digest": "$2b$06$short", "password_hasher": "bcrypt"}),
            "password_digest",
        ),
        (json!({"password_digest": digests[1]}), "password_hasher"),
        (
            json!({"password_digest": digests[1], "password_hasher": "bcrypt", "password": "Another-pass-123"}),
            "password_digest",
        ),
    ];
    for (body, param) in refused {
        let error: Value = app
            .request(reqwest::Method::PATCH, &format!("/v1/users/{id}"))
            .bearer(&key)
            .json(&body)
            .expect(422)
            .await
            .json();
        assert_eq!(error["errors"][0]["meta"]["param_name"], param, "{body}");
    }
    app.request(reqwest::Method::PATCH, &format!("/v1/users/{id}"))
        .bearer(&key)
        .json(&json!({"password_digest": digests[1], "password_hasher": "bcrypt"}))
        .expect(200)
        .await;
    sign_in(&app, "api@example.com", "api-old-password", 401).await;
    sign_in(&app, "api@example.com", "patched-password", 303).await;
    app.stop().await;
}

pub async fn authenticator_apps_from_the_export_keep_working_after_the_import(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let secret = latchkey_identity::mfa::TotpSecret::generate().base32();
    let digest = bcrypt(&["totp-old-password"]).await.remove(0);
    let csv = [
        HEADER.to_owned(),
        format!("user_2totp,Tia,,,tia@example.com,,tia@example.com,,,,{secret},{digest},bcrypt"),
        "user_2badtotp,Bad,,,badtotp@example.com,,badtotp@example.com,,,,not base32!,,".to_owned(),
    ]
    .join("\n");
    let path = ctx.temp_dir().join("totp.csv");
    std::fs::write(&path, format!("{csv}\n")).unwrap();
    let path = path.to_str().unwrap();

    let first = import(&ctx, &app, &["--csv", path, "--json"], &[]).await;
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["refused"][0]["line"], 3, "{report}");
    assert!(
        report["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("totp_secret"),
        "{report}"
    );
    let user: Value = crate::bapi::call(&app, reqwest::Method::GET, "/v1/users/user_2totp", &key)
        .expect(200)
        .await
        .json();
    assert_eq!(user["totp_enabled"], true, "{user}");
    assert_eq!(user["two_factor_enabled"], true);

    // The old password is the first step; the app the person already has is the second.
    let mut browser = sign_in(&app, "tia@example.com", "totp-old-password", 303).await;
    assert!(
        browser.cookie("latchkey_mfa").is_some(),
        "a second step is asked for"
    );
    let code = crate::mfa::code_now(&app, &secret).await;
    let reply = crate::mfa::second_step(&mut browser, &code, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert!(browser.cookie("__session").is_some());

    // Re-running changes nothing, and never replaces the app's secret.
    let again = import(&ctx, &app, &["--csv", path, "--json"], &[]).await;
    let report: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        (report["created"].as_i64(), report["updated"].as_i64()),
        (Some(0), Some(0)),
        "{report}"
    );
    assert_eq!(report["unchanged"], 1);
}
