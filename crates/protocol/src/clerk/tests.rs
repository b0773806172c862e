//! Clerk's documented payloads parse, and the edge cases they allow are handled.

use serde_json::{Value, json};

use super::*;

const USER_CREATED: &str = include_str!("fixtures/user_created.json");
const USER_UPDATED: &str = include_str!("fixtures/user_updated.json");
const USER_DELETED: &str = include_str!("fixtures/user_deleted.json");
const SESSION_CREATED: &str = include_str!("fixtures/session_created.json");
const ORGANIZATION_CREATED: &str = include_str!("fixtures/organization_created.json");

fn parse(text: &str) -> Event {
    Event::parse(text.as_bytes()).unwrap()
}

fn user_of(event: &Event) -> &User {
    match &event.data {
        EventData::User(user) => user,
        other => panic!("expected a user, got {other:?}"),
    }
}

#[test]
fn documented_user_created_parses() {
    let event = parse(USER_CREATED);
    assert_eq!(event.kind, "user.created");
    assert_eq!(event.timestamp_ms, Some(1_716_883_200_412));
    assert_eq!(
        event.instance_id.as_deref(),
        Some("ins_2g7np7Hrk0SN6kj5EDMLDaKNL0S")
    );
    assert_eq!(
        event
            .event_attributes
            .as_ref()
            .unwrap()
            .http_request
            .client_ip,
        "203.0.113.7"
    );
    let user = user_of(&event);
    assert_eq!(user.id, "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S");
    assert_eq!(
        user.primary_email().unwrap().email_address,
        "john.doe@example.com"
    );
    assert_eq!(
        user.primary_email()
            .unwrap()
            .verification
            .as_ref()
            .unwrap()
            .status,
        "verified"
    );
    assert_eq!(user.updated_at, 1_716_883_200_000);
    assert_eq!(user.username, None);
}

#[test]
fn documented_user_updated_parses_with_its_extra_accounts() {
    let event = parse(USER_UPDATED);
    let user = user_of(&event);
    assert_eq!(user.username.as_deref(), Some("johndoe"));
    assert_eq!(user.public_metadata, json!({"role": "member"}));
    assert_eq!(
        user.private_metadata,
        json!({"stripe_customer_id": "cus_Q1w2e3r4"})
    );
    assert_eq!(user.external_accounts.len(), 1);
    assert_eq!(user.phone_numbers.len(), 1);
    let verification = user.email_addresses[0].verification.as_ref().unwrap();
    assert_eq!(verification.strategy.as_deref(), Some("email_code"));
}

#[test]
fn documented_user_deleted_parses_as_a_stub() {
    let event = parse(USER_DELETED);
    match event.data {
        EventData::UserDeleted(stub) => {
            assert_eq!(stub.id.as_deref(), Some("user_2g7np7Hrk0SN6kj5EDMLDaKNL0S"));
            assert!(stub.deleted);
            assert_eq!(stub.external_id.as_deref(), Some("567772"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn documented_session_event_parses_with_its_user() {
    let event = parse(SESSION_CREATED);
    match event.data {
        EventData::Session(session) => {
            assert_eq!(session.id, "sess_2g7nq0Z4tRkC9sPq1WmE5uYbV2D");
            assert_eq!(session.status, "active");
            assert_eq!(session.user.as_ref().unwrap().id, session.user_id);
            assert_eq!(
                session.latest_activity.unwrap().browser_name.as_deref(),
                Some("Chrome")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_event_types_are_kept() {
    let event = parse(ORGANIZATION_CREATED);
    assert_eq!(event.kind, "organization.created");
    assert!(matches!(event.data, EventData::Other(Value::Object(_))));
    let event =
        parse(r#"{"type":"brand.new","object":"event","data":{"anything":[1,2]},"timestamp":1}"#);
    assert!(matches!(event.data, EventData::Other(_)));
}

#[test]
fn the_primary_email_is_found_by_id_not_position() {
    let mut value: Value = serde_json::from_str(USER_CREATED).unwrap();
    let data = &mut value["data"];
    data["email_addresses"] = json!([
        {"id": "idn_second", "email_address": "other@example.com", "object": "email_address"},
        {"id": "idn_primary", "email_address": "primary@example.com", "object": "email_address"}
    ]);
    data["primary_email_address_id"] = json!("idn_primary");
    let event = Event::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(
        user_of(&event).primary_email().unwrap().email_address,
        "primary@example.com"
    );

    data_without_primary(&mut value);
    let event = Event::parse(value.to_string().as_bytes()).unwrap();
    assert!(user_of(&event).primary_email().is_none());
}

fn data_without_primary(value: &mut Value) {
    value["data"]["primary_email_address_id"] = Value::Null;
}

#[test]
fn documented_nullables_accept_null() {
    let mut value: Value = serde_json::from_str(USER_CREATED).unwrap();
    for field in [
        "external_id",
        "username",
        "first_name",
        "last_name",
        "locale",
        "image_url",
        "primary_email_address_id",
        "primary_phone_number_id",
        "primary_web3_wallet_id",
        "private_metadata",
        "public_metadata",
        "unsafe_metadata",
        "mfa_enabled_at",
        "mfa_disabled_at",
        "lockout_expires_in_seconds",
        "verification_attempts_remaining",
        "last_sign_in_at",
        "last_active_at",
        "legal_accepted_at",
        "create_organizations_limit",
        "email_addresses",
        "phone_numbers",
        "web3_wallets",
        "passkeys",
        "external_accounts",
        "saml_accounts",
        "enterprise_accounts",
        "organization_memberships",
    ] {
        value["data"][field] = Value::Null;
    }
    value["data"]["birthday"] = json!("");
    value["data"]["gender"] = json!("");
    let event = Event::parse(value.to_string().as_bytes()).unwrap();
    let user = user_of(&event);
    assert_eq!(user.public_metadata, json!({}));
    assert!(user.email_addresses.is_empty());
    assert!(user.primary_email().is_none());
}

#[test]
fn envelope_timestamps_in_seconds_are_read_as_milliseconds() {
    let event = parse(r#"{"type":"x.y","object":"event","data":{},"timestamp":1716883200}"#);
    assert_eq!(event.timestamp_ms, Some(1_716_883_200_000));
    let event = parse(r#"{"type":"x.y","object":"event","data":{},"timestamp":1716883200123}"#);
    assert_eq!(event.timestamp_ms, Some(1_716_883_200_123));
    let event = parse(r#"{"type":"x.y","data":{}}"#);
    assert_eq!(event.timestamp_ms, None);
}

#[test]
fn malformed_events_are_refused_with_a_reason() {
    type Check = fn(&EventError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("not json", |e| matches!(e, EventError::NotJson(_))),
        ("[1,2]", |e| matches!(e, EventError::NotJson(_))),
        (r#"{"data":{}}"#, |e| matches!(e, EventError::MissingType)),
        (r#"{"type":"user.created"}"#, |e| {
            matches!(e, EventError::MissingData)
        }),
        (r#"{"type":"user.created","data":"x"}"#, |e| {
            matches!(e, EventError::MissingData)
        }),
        (
            r#"{"type":"user.created","object":"user","data":{}}"#,
            |e| matches!(e, EventError::NotAnEvent(_)),
        ),
        (
            r#"{"type":"user.created","data":{},"timestamp":"soon"}"#,
            |e| matches!(e, EventError::BadTimestamp),
        ),
        (
            r#"{"type":"user.created","data":{"id":"user_1","created_at":1}}"#,
            |e| matches!(e, EventError::InvalidData { .. }),
        ),
        (
            r#"{"type":"user.updated","data":{"id":"","created_at":1,"updated_at":2}}"#,
            |e| matches!(e, EventError::InvalidData { .. }),
        ),
        (
            r#"{"type":"user.deleted","data":{"object":"user","deleted":true}}"#,
            |e| matches!(e, EventError::InvalidData { .. }),
        ),
        (
            r#"{"type":"user.created","data":{"id":"user_1","created_at":1,"updated_at":2,"public_metadata":"x"}}"#,
            |e| matches!(e, EventError::InvalidData { .. }),
        ),
    ];
    for (body, check) in cases {
        let err = Event::parse(body.as_bytes()).unwrap_err();
        assert!(check(&err), "{body}: {err:?}");
    }
}

#[test]
fn error_messages_do_not_quote_the_body() {
    let body = r#"{"type":"user.created","data":{"id":"user_1","created_at":"secret@example.com","updated_at":2}}"#;
    let err = Event::parse(body.as_bytes()).unwrap_err().to_string();
    assert!(!err.contains("secret@example.com"), "{err}");
}

#[test]
fn users_serialise_back_to_clerks_shape() {
    let event = parse(USER_UPDATED);
    let user = user_of(&event);
    let written = serde_json::to_value(user).unwrap();
    let original: Value = serde_json::from_str(USER_UPDATED).unwrap();
    for (key, value) in original["data"].as_object().unwrap() {
        assert_eq!(&written[key], value, "field {key}");
    }
    let reparsed: User = serde_json::from_value(written).unwrap();
    assert_eq!(&reparsed, user);
}
