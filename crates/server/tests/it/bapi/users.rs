//! `/v1/users…`: listing with Clerk's parameters, counting, creating, updating, deleting,
//! banning, and the events each change emits.

use latchkey_testkit::TestContext;
use reqwest::Method;
use serde_json::{Value, json};

use super::{call, create_user, error_code, events_about, get, secret_key};
use crate::identity::{PASSWORD, sign_in};

fn ids(users: &Value) -> Vec<String> {
    users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn listing_pages_filters_and_counts_users(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let mut made = Vec::new();
    for i in 0..25 {
        let user = create_user(
            &app,
            &key,
            &json!({"email_address": [format!("member-{i:02}@list.example")], "first_name": "Person"}),
        )
        .await;
        made.push(user["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        ids(&get(&app, &key, "/v1/users", 200).await).len(),
        10,
        "limit defaults to 10"
    );
    for bad in [
        "limit=0",
        "limit=501",
        "limit=ten",
        "offset=-1",
        "order_by=first_name",
    ] {
        let reply = call(&app, Method::GET, &format!("/v1/users?{bad}"), &key)
            .expect(422)
            .await;
        assert_eq!(error_code(&reply), "form_param_value_invalid", "{bad}");
    }
    let reply = call(&app, Method::GET, "/v1/users?username=x", &key)
        .expect(422)
        .await;
    assert_eq!(error_code(&reply), "form_param_unknown");

    // Orders: newest first by default; ascending is its reverse.
    let newest = ids(&get(&app, &key, "/v1/users?limit=500", 200).await);
    assert_eq!(newest.len(), 25);
    let oldest = ids(&get(
        &app,
        &key,
        "/v1/users?limit=500&order_by=%2Bcreated_at",
        200,
    )
    .await);
    assert_eq!(oldest, newest.iter().rev().cloned().collect::<Vec<_>>());
    let mut sorted = made.clone();
    sorted.sort();
    let mut listed = newest.clone();
    listed.sort();
    assert_eq!(listed, sorted);
    let by_update = get(&app, &key, "/v1/users?limit=500&order_by=-updated_at", 200).await;
    let stamps: Vec<i64> = by_update
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["updated_at"].as_i64().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]));
    // Offsets.
    assert_eq!(
        ids(&get(&app, &key, "/v1/users?limit=10&offset=10", 200).await),
        newest[10..20]
    );
    // Cursor paging: 10, 10, 5, no overlaps, the same order.
    let mut paged = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users?limit=10&order_by=-created_at&starting_after={c}"),
            None => "/v1/users?limit=10&order_by=-created_at".to_owned(),
        };
        let page = ids(&get(&app, &key, &path, 200).await);
        sizes.push(page.len());
        cursor = page.last().cloned();
        paged.extend(page);
        if sizes.last() < Some(&10) {
            break;
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(paged, newest);
    for bad in [
        format!("order_by=-updated_at&starting_after={}", newest[3]),
        format!("offset=5&starting_after={}", newest[3]),
    ] {
        let reply = call(&app, Method::GET, &format!("/v1/users?{bad}"), &key)
            .expect(422)
            .await;
        assert_eq!(error_code(&reply), "form_conditional_param_disallowed");
    }

    // Filters: repeated keys are arrays; emails match in any case.
    let two = get(
        &app,
        &key,
        "/v1/users?email_address=member-03%40list.example&email_address=MEMBER-07%40List.Example",
        200,
    )
    .await;
    let mut emails: Vec<&str> = two
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email_addresses"][0]["email_address"].as_str().unwrap())
        .collect();
    emails.sort_unstable();
    assert_eq!(emails, ["member-03@list.example", "member-07@list.example"]);
    let chosen = get(
        &app,
        &key,
        &format!(
            "/v1/users?user_id={}&user_id={}&user_id=user_unknown",
            made[1], made[2]
        ),
        200,
    )
    .await;
    let mut chosen = ids(&chosen);
    chosen.sort();
    let mut expected = vec![made[1].clone(), made[2].clone()];
    expected.sort();
    assert_eq!(chosen, expected);
    assert_eq!(
        ids(&get(&app, &key, "/v1/users?query=MEMBER-1&limit=100", 200).await).len(),
        10
    );

    // Counts take the same filters and ignore paging.
    assert_eq!(
        get(&app, &key, "/v1/users/count", 200).await,
        json!({"object": "total_count", "total_count": 25})
    );
    assert_eq!(
        get(&app, &key, "/v1/users/count?email_address=member-03%40list.example&email_address=member-07%40list.example", 200).await["total_count"],
        2
    );
    assert_eq!(
        get(&app, &key, "/v1/users/count?query=member-2", 200).await["total_count"],
        5
    );
    app.stop().await;
}

pub async fn a_user_created_through_the_api_signs_in_and_emits_user_created(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let user = create_user(
        &app,
        &key,
        &json!({
            "email_address": ["Made@Example.com"],
            "password": PASSWORD,
            "first_name": "Made",
            "last_name": "ByApi",
            "username": "made_by_api",
            "external_id": "ext-42",
            "public_metadata": {"role": "member"},
            "private_metadata": {"crm": 7},
            "some_future_clerk_field": true,
        }),
    )
    .await;
    let id = user["id"].as_str().unwrap();
    assert_eq!(user["object"], "user");
    assert_eq!(
        user["email_addresses"][0]["email_address"],
        "Made@Example.com"
    );
    assert_eq!(
        user["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    assert_eq!(
        user["primary_email_address_id"],
        user["email_addresses"][0]["id"]
    );
    assert_eq!(
        (user["username"].as_str(), user["external_id"].as_str()),
        (Some("made_by_api"), Some("ext-42"))
    );
    assert_eq!(user["private_metadata"], json!({"crm": 7}));
    assert_eq!(user["password_enabled"], true);
    assert_eq!(get(&app, &key, &format!("/v1/users/{id}"), 200).await, user);

    let mut browser = app.browser();
    sign_in(&mut browser, "made@example.com", PASSWORD, 303).await;
    let created = events_about(&app, "user.created", id).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["first_name"], "Made");

    for (body, status, code) in [
        (
            json!({"email_address": ["MADE@example.com"], "password": PASSWORD}),
            422,
            "form_identifier_exists",
        ),
        (
            json!({"email_address": ["other@example.com"], "username": "Made_By_Api"}),
            422,
            "form_identifier_exists",
        ),
        (
            json!({"email_address": ["other@example.com"], "password": "short"}),
            422,
            "form_password_length_too_short",
        ),
        (
            json!({"email_address": ["other@example.com"], "password": "password123"}),
            422,
            "form_password_pwned",
        ),
        (
            json!({"email_address": ["not an email"]}),
            422,
            "form_param_format_invalid",
        ),
        (
            json!({"email_address": ["a@example.com", "b@example.com"]}),
            422,
            "form_param_value_invalid",
        ),
        (json!({"first_name": "Nobody"}), 422, "form_param_missing"),
        (
            json!({"email_address": ["other@example.com"], "first_name": 3}),
            422,
            "form_param_type_invalid",
        ),
        (
            json!({"email_address": ["other@example.com"], "public_metadata": "x"}),
            422,
            "form_param_value_invalid",
        ),
        (json!(["not", "an", "object"]), 400, "request_body_invalid"),
    ] {
        let reply = call(&app, Method::POST, "/v1/users", &key)
            .json(&body)
            .expect(status)
            .await;
        assert_eq!(error_code(&reply), code, "{body}");
        assert!(
            !reply.text().contains("password123"),
            "passwords are not echoed"
        );
    }
    // Clerk's checks can be skipped, as operators importing users need.
    let weak = create_user(&app, &key, &json!({"email_address": ["weak@example.com"], "password": "password123", "skip_password_checks": true})).await;
    assert_eq!(weak["password_enabled"], true);
    let reply = call(&app, Method::GET, "/v1/users/user_unknown", &key)
        .expect(404)
        .await;
    assert_eq!(error_code(&reply), "resource_not_found");
    assert_eq!(
        get(&app, &key, "/v1/users/count", 200).await["total_count"],
        2
    );
    app.stop().await;
}

pub async fn patching_a_user_moves_updated_at_and_emits_user_updated(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let user = create_user(&app, &key, &json!({"email_address": ["patch@example.com"], "password": PASSWORD, "public_metadata": {"a": 1}})).await;
    let id = user["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/users/{id}");
    let patch = |body: Value| call(&app, Method::PATCH, &path, &key).json(&body);

    let patched: Value = patch(json!({"first_name": "Patched", "public_metadata": {"b": 2}}))
        .expect(200)
        .await
        .json();
    assert_eq!(patched["first_name"], "Patched");
    assert_eq!(
        patched["public_metadata"],
        json!({"b": 2}),
        "metadata objects replace whole"
    );
    assert!(patched["updated_at"].as_i64() > user["updated_at"].as_i64());
    let again: Value = patch(json!({"last_name": "Twice"}))
        .expect(200)
        .await
        .json();
    assert!(again["updated_at"].as_i64() > patched["updated_at"].as_i64());
    assert_eq!(again["first_name"], "Patched", "absent fields stay");
    let cleared: Value = patch(json!({"first_name": null})).expect(200).await.json();
    assert_eq!(cleared["first_name"], Value::Null);
    let updates = events_about(&app, "user.updated", &id).await;
    assert_eq!(updates.len(), 3);
    assert_eq!(updates[0]["data"]["first_name"], "Patched");
    assert_eq!(updates[1]["data"]["last_name"], "Twice");

    // Passwords: checked like the pages' unless skipped; sessions end only when asked.
    let mut browser = app.browser();
    sign_in(&mut browser, "patch@example.com", PASSWORD, 303).await;
    let reply = patch(json!({"password": "short"})).expect(422).await;
    assert_eq!(error_code(&reply), "form_password_length_too_short");
    patch(json!({"password": "a fresh operator passphrase"}))
        .expect(200)
        .await;
    browser.get("/user", 200).await;
    patch(json!({"password": "another operator passphrase", "sign_out_of_other_sessions": true}))
        .expect(200)
        .await;
    browser.get("/user", 303).await;
    assert_eq!(events_about(&app, "session.revoked", &id).await.len(), 1);
    let mut fresh = app.browser();
    sign_in(
        &mut fresh,
        "patch@example.com",
        "a fresh operator passphrase",
        401,
    )
    .await;
    sign_in(
        &mut fresh,
        "patch@example.com",
        "another operator passphrase",
        303,
    )
    .await;

    // Metadata: PUT replaces each kind given, PATCH merges deeply.
    let metadata = format!("/v1/users/{id}/metadata");
    let put: Value = call(&app, Method::PUT, &metadata, &key)
        .json(&json!({"private_metadata": {"x": {"y": 1, "z": 2}}}))
        .expect(200)
        .await
        .json();
    assert_eq!(
        (
            put["public_metadata"].clone(),
            put["private_metadata"].clone()
        ),
        (json!({"b": 2}), json!({"x": {"y": 1, "z": 2}}))
    );
    let merged: Value = call(&app, Method::PATCH, &metadata, &key)
        .json(&json!({"private_metadata": {"x": {"z": null, "w": 3}}}))
        .expect(200)
        .await
        .json();
    assert_eq!(merged["private_metadata"], json!({"x": {"y": 1, "w": 3}}));

    // Usernames stay unique; unknown users are 404.
    create_user(&app, &key, &json!({"username": "taken_name"})).await;
    let reply = patch(json!({"username": "TAKEN_NAME"})).expect(422).await;
    assert_eq!(error_code(&reply), "form_identifier_exists");
    let reply = call(&app, Method::PATCH, "/v1/users/user_unknown", &key)
        .json(&json!({"first_name": "X"}))
        .expect(404)
        .await;
    assert_eq!(error_code(&reply), "resource_not_found");
    let reply = call(&app, Method::PUT, "/v1/users/user_unknown/metadata", &key)
        .json(&json!({}))
        .expect(404)
        .await;
    assert_eq!(error_code(&reply), "resource_not_found");
    app.stop().await;
}

pub async fn deleting_a_user_emits_user_deleted_and_then_answers_404(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let user = create_user(&app, &key, &json!({"email_address": ["gone@example.com"], "password": PASSWORD, "external_id": "ext-gone"})).await;
    let id = user["id"].as_str().unwrap().to_owned();
    let mut browser = app.browser();
    sign_in(&mut browser, "gone@example.com", PASSWORD, 303).await;

    let deleted: Value = call(&app, Method::DELETE, &format!("/v1/users/{id}"), &key)
        .expect(200)
        .await
        .json();
    assert_eq!(
        deleted,
        json!({"object": "user", "id": id, "deleted": true})
    );
    let events = events_about(&app, "user.deleted", &id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["data"],
        json!({"deleted": true, "id": id, "object": "user", "external_id": "ext-gone"})
    );
    assert_eq!(events_about(&app, "session.removed", &id).await.len(), 1);
    browser.get("/user", 303).await;
    for method in [Method::GET, Method::DELETE] {
        let reply = call(&app, method, &format!("/v1/users/{id}"), &key)
            .expect(404)
            .await;
        assert_eq!(error_code(&reply), "resource_not_found");
    }
    app.stop().await;
}

pub async fn oversized_and_nul_bearing_input_is_refused_with_nothing_written(ctx: TestContext) {
    let app = ctx.spawn().await;
    let key = secret_key(&app).await;
    let user = create_user(&app, &key, &json!({"email_address": ["big@example.com"]})).await;
    let id = user["id"].as_str().unwrap().to_owned();

    // NUL in a path, a query or a body (Postgres text refuses it; it must not become a 500).
    for path in [
        "/v1/users/user_%00".to_owned(),
        "/v1/users?query=%00".to_owned(),
        "/v1/users?user_id=a%00b".to_owned(),
        "/v1/events?after=%00".to_owned(),
    ] {
        let reply = call(&app, Method::GET, &path, &key).expect(400).await;
        assert_eq!(error_code(&reply), "request_invalid", "{path}");
    }
    for body in [
        json!({"external_id": "a\u{0}b"}),
        json!({"first_name": "\u{0}"}),
        json!({"public_metadata": {"k": "\u{0}"}}),
    ] {
        let reply = call(&app, Method::PATCH, &format!("/v1/users/{id}"), &key)
            .json(&body)
            .expect(400)
            .await;
        assert_eq!(error_code(&reply), "request_body_invalid", "{body}");
    }

    // Metadata over 8 KB, given at once or merged over several calls; a long external_id.
    let big = "x".repeat(5000);
    let reply = call(&app, Method::PATCH, &format!("/v1/users/{id}"), &key)
        .json(&json!({"public_metadata": {"a": big, "b": big}}))
        .expect(422)
        .await;
    assert_eq!(error_code(&reply), "form_param_value_invalid");
    let metadata = format!("/v1/users/{id}/metadata");
    call(&app, Method::PATCH, &metadata, &key)
        .json(&json!({"private_metadata": {"a": big}}))
        .expect(200)
        .await;
    let reply = call(&app, Method::PATCH, &metadata, &key)
        .json(&json!({"private_metadata": {"b": big}}))
        .expect(422)
        .await;
    assert_eq!(error_code(&reply), "form_param_format_invalid");
    let reply = call(&app, Method::POST, "/v1/users", &key)
        .json(&json!({"email_address": ["long@example.com"], "external_id": "e".repeat(256)}))
        .expect(422)
        .await;
    assert_eq!(error_code(&reply), "form_param_value_invalid");

    // Nothing of the refused calls was written.
    let stored = get(&app, &key, &format!("/v1/users/{id}"), 200).await;
    assert_eq!(stored["public_metadata"], json!({}));
    assert_eq!(stored["private_metadata"], json!({"a": big}));
    assert_eq!(stored["first_name"], Value::Null);
    assert_eq!(
        get(&app, &key, "/v1/users/count", 200).await["total_count"],
        1
    );
    app.stop().await;
}
