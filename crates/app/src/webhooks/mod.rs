//! `POST /api/webhooks/clerk`: Clerk's (or latchkey's identity's) user events, verified and
//! applied to the app's `users` table exactly once, in the right order; session ends and bans
//! recorded as revocations (see [`crate::session::revocations`]) in the same transaction, and
//! in shadow mode each applied user change handed to the identity's copy (see [`shadow`]).
//!
//! Order of work: refuse without a configured secret (503); read at most 1 MiB of raw body
//! (413); verify the signature over those exact bytes (400, nothing written); parse (400, the
//! failure recorded so a fixed resend succeeds); then record the message and apply it in one
//! transaction (200), shared with other requests' user events when they arrive together
//! (group commit, [`group`]). A transient database failure answers 503 so the sender retries.

mod apply;
pub mod group;
pub mod inbox;
pub mod shadow;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use http::StatusCode;
use latchkey_protocol::clerk::{Event, EventError};
use latchkey_protocol::webhook::WebhookHeaders;
use latchkey_web::ApiError;
use serde::Serialize;

pub use apply::{Delivery, Targets, apply, record_invalid, revocation};
pub use group::GroupCommit;
pub use inbox::Outcome;

use crate::AppState;

/// Largest body accepted; Clerk's user payloads are a few KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The receiver's answer body.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    /// `applied`, `stale`, `ignored` or `duplicate`.
    pub outcome: &'static str,
}

pub(crate) async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let Some(verifier) = state.verifier.as_deref() else {
        return Err(ApiError::unavailable(
            "webhook_secret_missing",
            "CLERK_WEBHOOK_SIGNING_SECRET is not set; set it to this endpoint's signing secret (whsec_...)",
        ));
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes, or could not be read"),
            )
        })?;
    let lookup = WebhookHeaders::from_lookup(|name| headers.get(name).map(|v| v.as_bytes()));
    let verified = lookup
        .and_then(|h| verifier.verify(&h, &bytes, latchkey_protocol::time::now_secs()))
        .map_err(|error| {
            tracing::warn!(reason = error.code(), "refused an unverified webhook");
            ApiError::bad_request(error.code(), error.to_string())
        })?;

    let delivery = match Event::parse(&bytes) {
        Ok(event) => {
            let user_id = event_user_id(&event).map(str::to_owned);
            let kind = event.kind.clone();
            let delivery = if state.shadow.is_none() && GroupCommit::takes(&event) {
                state.group.apply(&verified.id, event).await?
            } else {
                let targets = Targets {
                    revocations: state.auth.revocations(),
                    shadow: state.shadow.as_deref(),
                };
                apply(&state.db, targets, &verified.id, &event).await?
            };
            if let Some(clerk_user_id) = &user_id {
                state.auth.forget(clerk_user_id);
            }
            tracing::info!(event.id = %verified.id, "event.type" = %kind, outcome = ?delivery, "webhook received");
            delivery
        }
        Err(error) => {
            let kind = event_type_hint(&bytes);
            let delivery =
                record_invalid(&state.db, &verified.id, kind.as_deref(), &error.to_string())
                    .await?;
            if delivery == Delivery::Processed(Outcome::Failed) {
                tracing::warn!(event.id = %verified.id, reason = %error, "signed webhook is not a valid event");
                return Err(invalid_event(&error));
            }
            delivery
        }
    };
    Ok(Json(Receipt {
        outcome: match delivery {
            Delivery::Duplicate => "duplicate",
            Delivery::Processed(outcome) => outcome.as_str(),
        },
    }))
}

/// The user an event is about, for dropping cached rows.
fn event_user_id(event: &Event) -> Option<&str> {
    match &event.data {
        latchkey_protocol::clerk::EventData::User(user) => Some(&user.id),
        latchkey_protocol::clerk::EventData::UserDeleted(stub) => stub.id.as_deref(),
        _ => None,
    }
}

fn invalid_event(error: &EventError) -> ApiError {
    ApiError::bad_request("invalid_event", error.to_string())
}

/// The `type` of a body that failed to parse as an event, if it has one, for the record.
fn event_type_hint(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    serde_json::from_slice::<Typed>(body)
        .ok()
        .and_then(|t| t.kind)
        .filter(|k| k.len() <= 100)
}
