//! Webhook endpoints: where events go, which types each wants, and the secrets that sign them.
//!
//! Each endpoint has its own `whsec_` secret (24 random bytes, as Svix makes them), stored
//! sealed under the master secret. Rotating adds a new current secret; the old one keeps
//! signing, beside the new, for [`ROTATION_OVERLAP_MS`] so receivers can switch without gaps.

use latchkey_protocol::clerk::EventType;
use latchkey_protocol::webhook::SigningSecret;
use latchkey_store::{DbRow, Row as _, StoreError, Tx};
use serde::Serialize;

use crate::state::Identity;

pub const ENDPOINT_PREFIX: &str = "ep";
const SECRET_PREFIX: &str = "whs";
const SEAL_PURPOSE: &str = "webhook-secret";
/// How long a replaced secret keeps signing (Svix's default grace period: 24 h).
pub const ROTATION_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

/// An endpoint, as operators see it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub id: String,
    /// `None` for the app's own receiver in the all-in-one run.
    pub url: Option<String>,
    /// Event types it receives; empty for all.
    pub event_types: Vec<String>,
    pub internal: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub failing_since: Option<i64>,
    pub disabled_at: Option<i64>,
}

/// Why an endpoint could not be added or changed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("the URL must be an absolute http:// or https:// URL without credentials: {0}")]
    BadUrl(String),
    #[error(
        "the URL reaches no public address ({0}); webhook endpoints on private, loopback and \
         link-local networks need LATCHKEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true"
    )]
    PrivateUrl(String),
    #[error("unknown event type {0:?}; expected names such as user.created or session.ended")]
    BadEventType(String),
    #[error("no such endpoint")]
    NotFound,
    #[error("the stored secret could not be opened (wrong master secret?)")]
    Sealed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn from_row(row: &DbRow) -> Result<Endpoint, StoreError> {
    let types: String = row.try_get("event_types")?;
    Ok(Endpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        event_types: types
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        internal: row.try_get::<i64, _>("internal")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        failing_since: row.try_get("failing_since")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

const COLUMNS: &str =
    "id, url, event_types, internal, created_at, updated_at, failing_since, disabled_at";

/// Checks an endpoint URL: absolute http(s), a host, no user info.
///
/// # Errors
/// [`EndpointError::BadUrl`].
pub fn validate_url(text: &str) -> Result<url::Url, EndpointError> {
    let url = url::Url::parse(text.trim()).map_err(|e| EndpointError::BadUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(EndpointError::BadUrl("not http(s) with a host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::BadUrl(
            "credentials in the URL would be sent to every receiver log".to_owned(),
        ));
    }
    Ok(url)
}

/// Checks event type names: `resource.action`, lower-case letters and dots.
///
/// # Errors
/// [`EndpointError::BadEventType`].
pub fn validate_event_types(types: &[String]) -> Result<Vec<String>, EndpointError> {
    types
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| {
            let ok = t.contains('.')
                && t.len() <= 64
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            if ok {
                Ok(t.to_owned())
            } else {
                Err(EndpointError::BadEventType(t.to_owned()))
            }
        })
        .collect()
}

/// Adds an endpoint; returns it with its new secret (shown once). Unless private networks
/// are allowed, a URL that can only reach a private, loopback or link-local address is
/// refused here, by the rules deliveries are held to, before anything is written.
///
/// # Errors
/// Invalid or private URL, invalid event types, or database failures.
pub async fn add_endpoint(
    identity: &Identity,
    url: &str,
    event_types: &[String],
) -> Result<(Endpoint, SigningSecret), EndpointError> {
    let url = validate_url(url)?;
    let types = validate_event_types(event_types)?;
    if !identity.config().webhook_allow_private_networks {
        super::client::refuse_private_destination(&url)
            .await
            .map_err(EndpointError::PrivateUrl)?;
    }
    let mut tx = identity.db().begin().await?;
    let (endpoint, secret) =
        insert_endpoint(identity, &mut tx, Some(url.as_str()), &types, false).await?;
    audited(identity, &mut tx, "webhook_endpoint.added", &endpoint.id).await?;
    tx.commit().await?;
    tracing::info!(endpoint.id = %endpoint.id, "webhook endpoint added");
    Ok((endpoint, secret))
}

/// Every endpoint.
///
/// # Errors
/// Database failures.
pub async fn list_endpoints(identity: &Identity) -> Result<Vec<Endpoint>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let q = tx.query_owned(format!(
        "SELECT {COLUMNS} FROM identity_webhook_endpoints ORDER BY created_at, id"
    ));
    let rows = tx.fetch_all(q).await?;
    tx.commit().await?;
    rows.iter().map(from_row).collect()
}

/// One endpoint.
///
/// # Errors
/// Database failures.
pub async fn get_endpoint(identity: &Identity, id: &str) -> Result<Option<Endpoint>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_webhook_endpoints WHERE id = $1"
        ))
        .bind(id);
    let row = tx.fetch_optional(q).await?;
    tx.commit().await?;
    row.as_ref().map(from_row).transpose()
}

/// Removes an endpoint; its pending deliveries stop.
///
/// # Errors
/// [`EndpointError::NotFound`] or database failures.
pub async fn remove_endpoint(identity: &Identity, id: &str) -> Result<(), EndpointError> {
    let mut tx = identity.db().begin().await?;
    for sql in [
        "DELETE FROM identity_webhook_deliveries WHERE endpoint_id = $1",
        "DELETE FROM identity_webhook_secrets WHERE endpoint_id = $1",
    ] {
        let q = tx.query(sql).bind(id);
        tx.execute(q).await?;
    }
    let q = tx
        .query("DELETE FROM identity_webhook_endpoints WHERE id = $1")
        .bind(id);
    if tx.execute(q).await? == 0 {
        return Err(EndpointError::NotFound);
    }
    audited(identity, &mut tx, "webhook_endpoint.removed", id).await?;
    tx.commit().await?;
    tracing::info!(endpoint.id = %id, "webhook endpoint removed");
    Ok(())
}

/// Re-enables a disabled endpoint; deliveries it missed resume.
///
/// # Errors
/// [`EndpointError::NotFound`] or database failures.
pub async fn enable_endpoint(identity: &Identity, id: &str) -> Result<(), EndpointError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let q = tx
        .query("UPDATE identity_webhook_endpoints SET disabled_at = NULL, failing_since = NULL, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now);
    if tx.execute(q).await? == 0 {
        return Err(EndpointError::NotFound);
    }
    audited(identity, &mut tx, "webhook_endpoint.enabled", id).await?;
    tx.commit().await?;
    Ok(())
}

/// Stops deliveries to an endpoint until it is enabled again (they wait, pending).
///
/// # Errors
/// [`EndpointError::NotFound`] or database failures.
pub async fn disable_endpoint(identity: &Identity, id: &str) -> Result<(), EndpointError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let q = tx
        .query(
            "UPDATE identity_webhook_endpoints SET disabled_at = $2, updated_at = $2 \
             WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(now);
    if tx.execute(q).await? == 0 && get_endpoint(identity, id).await?.is_none() {
        return Err(EndpointError::NotFound);
    }
    audited(identity, &mut tx, "webhook_endpoint.disabled", id).await?;
    tx.commit().await?;
    tracing::info!(endpoint.id = %id, "webhook endpoint disabled");
    Ok(())
}

/// An audit entry about an endpoint, by whoever is acting.
async fn audited(
    identity: &Identity,
    tx: &mut latchkey_store::Tx,
    action: &str,
    endpoint_id: &str,
) -> Result<(), StoreError> {
    let entry = crate::audit::Entry::new(action, None)
        .with(serde_json::json!({ "endpoint_id": endpoint_id }));
    crate::audit::record(identity, tx, entry).await
}

/// Makes a new current secret; the old one signs too for [`ROTATION_OVERLAP_MS`].
///
/// # Errors
/// [`EndpointError::NotFound`] or database failures.
pub async fn rotate_endpoint_secret(
    identity: &Identity,
    id: &str,
) -> Result<SigningSecret, EndpointError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let q = tx
        .query("SELECT id FROM identity_webhook_endpoints WHERE id = $1")
        .bind(id);
    if tx.fetch_optional(q).await?.is_none() {
        return Err(EndpointError::NotFound);
    }
    let q = tx
        .query("UPDATE identity_webhook_secrets SET expires_at = $2 WHERE endpoint_id = $1 AND expires_at IS NULL")
        .bind(id)
        .bind(now + ROTATION_OVERLAP_MS);
    tx.execute(q).await?;
    let secret = SigningSecret::generate();
    insert_secret(identity, &mut tx, id, &secret, now).await?;
    audited(identity, &mut tx, "webhook_endpoint.secret_rotated", id).await?;
    tx.commit().await?;
    tracing::info!(endpoint.id = %id, "webhook secret rotated");
    Ok(secret)
}

/// The secrets that sign deliveries to an endpoint now: the current one first, then any
/// replaced one still in its overlap.
///
/// # Errors
/// Database failures, or a secret sealed under another master secret.
pub(crate) async fn signing_secrets(
    identity: &Identity,
    tx: &mut Tx,
    endpoint_id: &str,
    now: i64,
) -> Result<Vec<SigningSecret>, EndpointError> {
    let q = tx
        .query(
            "SELECT secret_sealed FROM identity_webhook_secrets \
             WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2) \
             ORDER BY CASE WHEN expires_at IS NULL THEN 0 ELSE 1 END, created_at DESC",
        )
        .bind(endpoint_id)
        .bind(now);
    let mut secrets = Vec::new();
    for row in tx.fetch_all(q).await? {
        let sealed: String = row.try_get("secret_sealed").map_err(StoreError::from)?;
        let raw = identity
            .master()
            .open(SEAL_PURPOSE, &sealed)
            .map_err(|_| EndpointError::Sealed)?;
        let secret = SigningSecret::parse(&String::from_utf8_lossy(&raw))
            .map_err(|_| EndpointError::Sealed)?;
        secrets.push(secret);
    }
    Ok(secrets)
}

/// What the app's own receiver is subscribed to: user changes for its table, and the ends of
/// sessions, which it refuses before their tokens expire.
const INTERNAL_TYPES: [EventType; 6] = [
    EventType::UserCreated,
    EventType::UserUpdated,
    EventType::UserDeleted,
    EventType::SessionEnded,
    EventType::SessionRevoked,
    EventType::SessionRemoved,
];

/// The app's own receiver in the all-in-one run: created on first start (subscribed to
/// [`INTERNAL_TYPES`]; an endpoint made by an older version is subscribed to them now),
/// reached on whichever instance delivers. Returns its current secret, which the app part is
/// configured with.
///
/// # Errors
/// Database failures, or a secret sealed under another master secret.
pub async fn ensure_internal_endpoint(identity: &Identity) -> Result<SigningSecret, EndpointError> {
    let now = identity.now_ms();
    let types = INTERNAL_TYPES.map(|kind| kind.as_str().to_owned());
    let mut tx = identity.db().begin().await?;
    let q = tx.query(
        "SELECT id FROM identity_webhook_endpoints WHERE internal = 1 ORDER BY created_at LIMIT 1",
    );
    let existing = tx.fetch_optional(q).await?;
    let id = match existing {
        Some(row) => {
            let id = row.try_get::<String, _>("id").map_err(StoreError::from)?;
            let q = tx
                .query(
                    "UPDATE identity_webhook_endpoints SET event_types = $2, updated_at = $3 \
                     WHERE id = $1 AND event_types <> $2",
                )
                .bind(&id)
                .bind(types.join(","))
                .bind(now);
            tx.execute(q).await?;
            id
        }
        None => {
            let (endpoint, _) = insert_endpoint(identity, &mut tx, None, &types, true).await?;
            tracing::info!(endpoint.id = %endpoint.id, "registered the app's own webhook receiver");
            endpoint.id
        }
    };
    let secrets = signing_secrets(identity, &mut tx, &id, now).await?;
    tx.commit().await?;
    secrets.into_iter().next().ok_or(EndpointError::NotFound)
}

async fn insert_endpoint(
    identity: &Identity,
    tx: &mut Tx,
    url: Option<&str>,
    types: &[String],
    internal: bool,
) -> Result<(Endpoint, SigningSecret), EndpointError> {
    let now = latchkey_protocol::time::now_ms();
    let id = latchkey_protocol::id::new_id(ENDPOINT_PREFIX);
    let q = tx
        .query(
            "INSERT INTO identity_webhook_endpoints (id, url, event_types, internal, created_at, updated_at, failing_since, disabled_at) \
             VALUES ($1, $2, $3, $4, $5, $5, NULL, NULL)",
        )
        .bind(&id)
        .bind(url)
        .bind(types.join(","))
        .bind(i64::from(internal))
        .bind(now);
    tx.execute(q).await?;
    let secret = SigningSecret::generate();
    insert_secret(identity, tx, &id, &secret, now).await?;
    let endpoint = Endpoint {
        id,
        url: url.map(str::to_owned),
        event_types: types.to_vec(),
        internal,
        created_at: now,
        updated_at: now,
        failing_since: None,
        disabled_at: None,
    };
    Ok((endpoint, secret))
}

async fn insert_secret(
    identity: &Identity,
    tx: &mut Tx,
    endpoint_id: &str,
    secret: &SigningSecret,
    now: i64,
) -> Result<(), StoreError> {
    let sealed = identity
        .master()
        .seal(SEAL_PURPOSE, secret.expose().as_bytes());
    let q = tx
        .query(
            "INSERT INTO identity_webhook_secrets (id, endpoint_id, secret_sealed, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, NULL)",
        )
        .bind(latchkey_protocol::id::new_id(SECRET_PREFIX))
        .bind(endpoint_id)
        .bind(sealed)
        .bind(now);
    tx.execute(q).await?;
    Ok(())
}
