//! A local stand-in for Clerk's Backend API, behaving as docs/PROTOCOLS.md §5 documents it: a bare
//! JSON array of users from `GET /v1/users` (limit 1-500, newest first, `starting_after`
//! cursor), `GET /v1/users/{id}`, `GET /v1/jwks`, bearer secret keys, and 429 with
//! `Retry-After` when rate limiting. It also mints session tokens as Clerk's Frontend API does.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use latchkey_protocol::jwt::{Jwks, SessionClaims, SigningKey};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Fake {
    /// Newest first, as Clerk lists them by default.
    users: Vec<Value>,
    requests: u64,
    rate_limit_every: Option<u64>,
    rate_limited: u64,
}

/// A running stand-in.
pub struct FakeClerk {
    pub url: String,
    pub secret_key: String,
    key: Arc<SigningKey>,
    state: Arc<Mutex<Fake>>,
    stop: CancellationToken,
}

#[derive(Debug, serde::Deserialize)]
struct ListParams {
    limit: Option<i64>,
    offset: Option<i64>,
    order_by: Option<String>,
    starting_after: Option<String>,
}

impl FakeClerk {
    /// Starts with `count` users; every `rate_limit_every`-th request is answered 429.
    pub async fn start(count: usize, rate_limit_every: Option<u64>) -> Self {
        let key = Arc::new(crate::oidc::rsa_key("ins_fakeclerk"));
        let base = 1_700_000_000_000_i64;
        let users = (0..count)
            .rev()
            .map(|n| {
                let created = base + i64::try_from(n).unwrap() * 1000;
                let mut user = crate::clerk::user(
                    &format!("user_fake{n:06}"),
                    created,
                    &format!("fake{n}@example.com"),
                    "Fake",
                );
                user["created_at"] = json!(created);
                user
            })
            .collect();
        let state = Arc::new(Mutex::new(Fake {
            users,
            requests: 0,
            rate_limit_every,
            rate_limited: 0,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let secret_key = format!(
            "sk_test_{}",
            latchkey_protocol::id::new_id("fake").trim_start_matches("fake_")
        );
        let router = axum::Router::new()
            .route("/v1/users", get(list))
            .route("/v1/users/{id}", get(one))
            .route("/v1/jwks", get(jwks))
            .with_state((state.clone(), secret_key.clone(), key.clone()));
        let stop = crate::serve_until_cancelled(listener, router);
        Self {
            url,
            secret_key,
            key,
            state,
            stop,
        }
    }

    /// Adds a user (as the newest) and returns it.
    pub fn add_user(&self, id: &str, email: &str) -> Value {
        let now = latchkey_protocol::time::now_ms();
        let mut user = crate::clerk::user(id, now, email, "New");
        user["created_at"] = json!(now);
        self.state.lock().unwrap().users.insert(0, user.clone());
        user
    }

    /// Changes a user's first name, moving its `updated_at` forward.
    pub fn rename(&self, id: &str, first_name: &str) {
        let mut state = self.state.lock().unwrap();
        let user = state.users.iter_mut().find(|u| u["id"] == id).unwrap();
        user["first_name"] = json!(first_name);
        user["updated_at"] = json!(user["updated_at"].as_i64().unwrap() + 60_000);
    }

    /// Deletes a user.
    pub fn remove(&self, id: &str) {
        self.state.lock().unwrap().users.retain(|u| u["id"] != id);
    }

    /// How many requests were refused with 429.
    #[must_use]
    pub fn rate_limited(&self) -> u64 {
        self.state.lock().unwrap().rate_limited
    }

    /// A session token for `user_id`, as Clerk's Frontend API mints them (60 s, RS256).
    #[must_use]
    pub fn mint(&self, user_id: &str, azp: Option<&str>) -> String {
        self.mint_with_status(user_id, azp, None)
    }

    /// A session token of session `sid` for `user_id`, issued at `iat` (Unix seconds).
    #[must_use]
    pub fn mint_session(&self, user_id: &str, sid: &str, iat: i64) -> String {
        let mut claims = SessionClaims::new(user_id.to_owned(), iat + 60);
        claims.sid = Some(sid.to_owned());
        claims.iss = Some("https://clerk.fake.example".to_owned());
        claims.iat = Some(iat);
        claims.nbf = Some(iat - 10);
        claims.v = Some(2);
        self.key.sign(&claims)
    }

    /// [`Self::mint`] with Clerk's session status claim `sts` (e.g. `pending`).
    #[must_use]
    pub fn mint_with_status(&self, user_id: &str, azp: Option<&str>, sts: Option<&str>) -> String {
        let now = latchkey_protocol::time::now_secs();
        let mut claims = SessionClaims::new(user_id.to_owned(), now + 60);
        claims.sid = Some(latchkey_protocol::id::new_id("sess"));
        claims.iss = Some("https://clerk.fake.example".to_owned());
        claims.azp = azp.map(str::to_owned);
        claims.iat = Some(now);
        claims.nbf = Some(now - 10);
        claims.v = Some(2);
        claims.sts = sts.map(str::to_owned);
        self.key.sign(&claims)
    }
}

impl Drop for FakeClerk {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type Shared = (Arc<Mutex<Fake>>, String, Arc<SigningKey>);

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message, "long_message": message, "code": code}]})),
    )
        .into_response()
}

/// Authentication and rate limiting, as Clerk applies them to every call.
fn admit(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {}", state.1));
    if !authorized {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Invalid authentication",
        ));
    }
    let mut fake = state.0.lock().unwrap();
    fake.requests += 1;
    if fake
        .rate_limit_every
        .is_some_and(|every| fake.requests.is_multiple_of(every))
    {
        fake.rate_limited += 1;
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests",
        );
        response
            .headers_mut()
            .insert("retry-after", "1".parse().unwrap());
        return Some(response);
    }
    None
}

async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    let limit = params.limit.unwrap_or(10);
    if !(1..=500).contains(&limit) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "limit must be 1 to 500",
        );
    }
    if params.starting_after.is_some()
        && (params.offset.unwrap_or(0) != 0
            || !matches!(
                params.order_by.as_deref(),
                None | Some("-created_at" | "created_at" | "+created_at")
            ))
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "starting_after needs created_at ordering and no offset",
        );
    }
    let fake = state.0.lock().unwrap();
    let start = match &params.starting_after {
        Some(cursor) => match fake.users.iter().position(|u| u["id"] == cursor.as_str()) {
            Some(index) => index + 1,
            None => return Json(Value::Array(Vec::new())).into_response(),
        },
        None => usize::try_from(params.offset.unwrap_or(0)).unwrap_or(0),
    };
    let page: Vec<Value> = fake
        .users
        .iter()
        .skip(start)
        .take(usize::try_from(limit).unwrap())
        .cloned()
        .collect();
    Json(Value::Array(page)).into_response()
}

async fn one(State(state): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refused) = admit(&state, &headers) {
        return refused;
    }
    let fake = state.0.lock().unwrap();
    match fake.users.iter().find(|u| u["id"] == id.as_str()) {
        Some(user) => Json(user.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "resource_not_found", "not found"),
    }
}

async fn jwks(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {}", state.1));
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Invalid authentication",
        );
    }
    Json(Jwks {
        keys: vec![state.2.public_jwk()],
    })
    .into_response()
}
