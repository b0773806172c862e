//! `/v1/users…`: listing, counting, reading, creating, updating, deleting, banning accounts and
//! replacing or merging their metadata, answered with Clerk's User JSON. The changes go through
//! the same use cases (`flows`) as the pages and the CLI, so they emit the same events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use latchkey_protocol::clerk;
use serde_json::{Value, json};

use super::Bapi;
use super::error::BapiError;
use super::params::{Body, MAX_EXTERNAL_ID_CHARS, Query};
use crate::flows::account;
use crate::flows::account::ChangeError;
use crate::flows::admin;
use crate::flows::admin::{AdminError, CreateUser};
use crate::flows::admin_changes;
use crate::flows::admin_changes::{MetadataChange, UserUpdate};
use crate::passwords::Password;
use crate::passwords::foreign::{Hasher, ImportedDigest};
use crate::users::{self, ListQuery, OrderBy, ProfileChange, UserRecord, validate};

type Answer = Result<Json<Value>, BapiError>;

/// Query parameters `GET /v1/users` understands; `/count` takes the filters among them.
const LIST_PARAMS: &[&str] = &[
    "limit",
    "offset",
    "order_by",
    "starting_after",
    "email_address",
    "user_id",
    "query",
];

/// The filters of a list or count request.
fn list_query(query: &Query, paging: bool) -> Result<ListQuery, BapiError> {
    query.only(LIST_PARAMS)?;
    let user_ids = query.all("user_id")?;
    if let Some(id) = user_ids.iter().find(|id| id.starts_with('-')) {
        return Err(BapiError::invalid_value(
            "user_id",
            format!("{id}: excluding ids with `-` is not supported by latchkey."),
        ));
    }
    let mut list = ListQuery {
        email_addresses: query.all("email_address")?,
        user_ids,
        text: query
            .first("query")
            .map(str::to_owned)
            .filter(|t| !t.trim().is_empty()),
        ..ListQuery::default()
    };
    if !paging {
        return Ok(list);
    }
    list.limit = query.integer("limit", 1, 500, 10)?;
    list.offset = query.integer("offset", 0, u32::MAX, 0)?;
    if let Some(order) = query.first("order_by") {
        list.order_by = OrderBy::parse(order.trim()).ok_or_else(|| {
            BapiError::invalid_value(
                "order_by",
                format!("{order} does not match one of the allowed values for parameter order_by: ±created_at, ±updated_at."),
            )
        })?;
    }
    if let Some(cursor) = query
        .first("starting_after")
        .filter(|c| !c.trim().is_empty())
    {
        if !list.order_by.allows_cursor() {
            return Err(BapiError::disallowed(
                "starting_after",
                "`order_by` is not created_at",
            ));
        }
        if list.offset != 0 {
            return Err(BapiError::disallowed("starting_after", "`offset` is not 0"));
        }
        list.starting_after = Some(cursor.trim().to_owned());
    }
    Ok(list)
}

/// Clerk's JSON for accounts, lockout state included, read in one transaction.
async fn render(bapi: &Bapi, records: &[UserRecord]) -> Result<Vec<clerk::User>, BapiError> {
    let mut tx = bapi.identity.db().begin_read().await?;
    let rendered = admin::users_json_in(&bapi.identity, &mut tx, records).await?;
    tx.commit().await?;
    Ok(rendered)
}

async fn render_one(bapi: &Bapi, user: &UserRecord) -> Answer {
    let user = admin::user_json(&bapi.identity, user).await?;
    Ok(Json(
        serde_json::to_value(user).map_err(|e| BapiError::internal(&e))?,
    ))
}

fn not_found_user(error: AdminError, id: &str) -> BapiError {
    match error {
        AdminError::NotFound => BapiError::not_found("user", id),
        other => other.into(),
    }
}

/// `GET /v1/users`: a bare array, as Clerk answers.
pub(crate) async fn list(State(bapi): State<Bapi>, RawQuery(raw): RawQuery) -> Answer {
    let query = list_query(&Query::parse(raw.as_deref()), true)?;
    let mut tx = bapi.identity.db().begin_read().await?;
    let records = users::list(&mut tx, &query).await?;
    tx.commit().await?;
    let rendered = render(&bapi, &records).await?;
    Ok(Json(
        serde_json::to_value(rendered).map_err(|e| BapiError::internal(&e))?,
    ))
}

/// `GET /v1/users/count`.
pub(crate) async fn count(State(bapi): State<Bapi>, RawQuery(raw): RawQuery) -> Answer {
    let query = list_query(&Query::parse(raw.as_deref()), false)?;
    let mut tx = bapi.identity.db().begin_read().await?;
    let total = users::count(&mut tx, &query).await?;
    tx.commit().await?;
    Ok(Json(json!({"object": "total_count", "total_count": total})))
}

/// `GET /v1/users/{user_id}`.
pub(crate) async fn get_one(State(bapi): State<Bapi>, Path(id): Path<String>) -> Answer {
    let mut tx = bapi.identity.db().begin_read().await?;
    let user = users::get(&mut tx, &id).await?;
    tx.commit().await?;
    let user = user.ok_or_else(|| BapiError::not_found("user", &id))?;
    render_one(&bapi, &user).await
}

/// A validated optional text field: `None` absent, `Some(None)` cleared.
fn text_field(
    body: &Body,
    name: &'static str,
    check: impl Fn(&str) -> Result<Option<String>, validate::FieldError>,
) -> Result<Option<Option<String>>, BapiError> {
    Ok(match body.string(name)? {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => Some(check(&text)?),
    })
}

fn password_field(body: &Body) -> Result<Option<Password>, BapiError> {
    Ok(body.string("password")?.flatten().map(Password::new))
}

/// `password_digest` with its `password_hasher`, checked (Clerk's import of a password hashed
/// elsewhere). Both or neither; never beside `password`.
fn digest_field(body: &Body) -> Result<Option<ImportedDigest>, BapiError> {
    let digest = body.string("password_digest")?.flatten();
    let hasher = body.string("password_hasher")?.flatten();
    let (digest, hasher) = match (digest, hasher) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(BapiError::missing("password_hasher")),
        (None, Some(_)) => return Err(BapiError::missing("password_digest")),
        (Some(digest), Some(hasher)) => (digest, hasher),
    };
    if body.string("password")?.flatten().is_some() {
        return Err(BapiError::invalid_value(
            "password_digest",
            "Send either password or password_digest, not both.",
        ));
    }
    let hasher = Hasher::parse(&hasher)
        .map_err(|e| BapiError::invalid_value("password_hasher", e.to_string()))?;
    ImportedDigest::new(hasher, &digest)
        .map(Some)
        .map_err(|e| BapiError::invalid_value("password_digest", e.to_string()))
}

/// `POST /v1/users` with Clerk's CreateUser parameters.
pub(crate) async fn create(
    State(bapi): State<Bapi>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = Body::read(bytes)?;
    let emails = body.strings("email_address")?;
    if emails.len() > 1 {
        return Err(BapiError::invalid_value(
            "email_address",
            "latchkey keeps one email address per account; send one.",
        ));
    }
    let email_address = emails.into_iter().next();
    let username = body.string("username")?.flatten();
    if email_address.is_none() && username.as_deref().is_none_or(|u| u.trim().is_empty()) {
        return Err(BapiError::missing("email_address"));
    }
    if let Some(email) = &email_address {
        validate::email(email)?;
    }
    let create = CreateUser {
        email_address,
        password: password_field(&body)?,
        password_digest: digest_field(&body)?,
        first_name: body.string("first_name")?.flatten(),
        last_name: body.string("last_name")?.flatten(),
        username,
        image_url: None,
        external_id: external_id_field(&body)?.flatten(),
        public_metadata: body.object("public_metadata")?,
        private_metadata: body.object("private_metadata")?,
        unsafe_metadata: body.object("unsafe_metadata")?,
        skip_password_checks: body.flag("skip_password_checks")?,
    };
    // `skip_password_requirement` is accepted: latchkey never requires a password.
    body.flag("skip_password_requirement")?;
    let user = admin::create_user(&bapi.identity, create).await?;
    render_one(&bapi, &user).await
}

/// `external_id` as given (`None` absent, `Some(None)` cleared by `null` or `""`), at most
/// [`MAX_EXTERNAL_ID_CHARS`] characters.
fn external_id_field(body: &Body) -> Result<Option<Option<String>>, BapiError> {
    let given = body.string("external_id")?;
    if let Some(Some(id)) = &given
        && id.chars().count() > MAX_EXTERNAL_ID_CHARS
    {
        return Err(BapiError::invalid_value(
            "external_id",
            format!("external_id may be at most {MAX_EXTERNAL_ID_CHARS} characters."),
        ));
    }
    Ok(given.map(|id| id.filter(|id| !id.is_empty())))
}

/// `PATCH /v1/users/{user_id}`: fields present change, absent ones stay; metadata objects
/// replace the stored ones whole.
pub(crate) async fn update(
    State(bapi): State<Bapi>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = Body::read(bytes)?;
    let profile = ProfileChange {
        first_name: text_field(&body, "first_name", |t| validate::name("first_name", t))?,
        last_name: text_field(&body, "last_name", |t| validate::name("last_name", t))?,
        username: text_field(&body, "username", validate::username)?,
        image_url: None,
        external_id: external_id_field(&body)?,
        public_metadata: body.object("public_metadata")?,
        private_metadata: body.object("private_metadata")?,
        unsafe_metadata: body.object("unsafe_metadata")?,
    };
    let update = UserUpdate {
        profile,
        password: password_field(&body)?,
        password_digest: digest_field(&body)?,
        skip_password_checks: body.flag("skip_password_checks")?,
        sign_out_of_other_sessions: body.flag("sign_out_of_other_sessions")?,
    };
    let user = admin_changes::update_user_as_operator(&bapi.identity, &id, update)
        .await
        .map_err(|e| not_found_user(e, &id))?;
    render_one(&bapi, &user).await
}

fn metadata_change(body: &Body) -> Result<MetadataChange, BapiError> {
    Ok(MetadataChange {
        public: body.object("public_metadata")?,
        private: body.object("private_metadata")?,
        unsafe_: body.object("unsafe_metadata")?,
    })
}

/// `PUT /v1/users/{user_id}/metadata`: each kind given replaces the stored one whole (what
/// `@clerk/backend`'s `updateUser` and `replaceUserMetadata` send).
pub(crate) async fn replace_metadata(
    State(bapi): State<Bapi>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let change = metadata_change(&Body::read(bytes)?)?;
    let user = admin_changes::change_metadata(&bapi.identity, &id, change, false)
        .await
        .map_err(|e| not_found_user(e, &id))?;
    render_one(&bapi, &user).await
}

/// `PATCH /v1/users/{user_id}/metadata`: deep merge; `null` removes a key.
pub(crate) async fn merge_metadata(
    State(bapi): State<Bapi>,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let change = metadata_change(&Body::read(bytes)?)?;
    let user = admin_changes::change_metadata(&bapi.identity, &id, change, true)
        .await
        .map_err(|e| not_found_user(e, &id))?;
    render_one(&bapi, &user).await
}

/// `DELETE /v1/users/{user_id}`: Clerk's deleted-object stub.
pub(crate) async fn delete(State(bapi): State<Bapi>, Path(id): Path<String>) -> Answer {
    match account::delete_account(&bapi.identity, &id).await {
        Ok(()) => Ok(Json(json!({"object": "user", "id": id, "deleted": true}))),
        Err(ChangeError::NotFound) => Err(BapiError::not_found("user", &id)),
        Err(other) => Err(other.into()),
    }
}

async fn set_banned(bapi: &Bapi, id: &str, banned: bool) -> Answer {
    let user = admin::set_banned(&bapi.identity, id, banned)
        .await
        .map_err(|e| not_found_user(e, id))?;
    render_one(bapi, &user).await
}

/// `POST /v1/users/{user_id}/ban`: every session is revoked.
pub(crate) async fn ban(State(bapi): State<Bapi>, Path(id): Path<String>) -> Answer {
    set_banned(&bapi, &id, true).await
}

/// `POST /v1/users/{user_id}/unban`.
pub(crate) async fn unban(State(bapi): State<Bapi>, Path(id): Path<String>) -> Answer {
    set_banned(&bapi, &id, false).await
}

/// `DELETE /v1/users/{user_id}/mfa`: removes every second factor (Clerk's `DisableMFA`); the
/// `user.updated` it emits records it.
pub(crate) async fn disable_mfa(State(bapi): State<Bapi>, Path(id): Path<String>) -> Answer {
    admin::reset_mfa(&bapi.identity, &id)
        .await
        .map_err(|e| not_found_user(e, &id))?;
    Ok(Json(json!({"user_id": id})))
}

/// `DELETE /v1/users/{user_id}/external_accounts/{external_account_id}`.
pub(crate) async fn delete_external_account(
    State(bapi): State<Bapi>,
    Path((user_id, account_id)): Path<(String, String)>,
) -> Answer {
    match admin::unlink_external_account(&bapi.identity, &user_id, &account_id).await {
        Ok(true) => Ok(Json(
            json!({"object": "external_account", "id": account_id, "deleted": true}),
        )),
        Ok(false) => Err(BapiError::not_found("external account", &account_id)),
        Err(error) => Err(not_found_user(error, &user_id)),
    }
}
