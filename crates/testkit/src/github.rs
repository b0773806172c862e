//! A GitHub-shaped OAuth 2.0 provider on loopback, following GitHub's documented endpoints and
//! JSON ("Authorizing OAuth apps", the REST API's users and emails): `GET
//! /login/oauth/authorize` consents at once, `POST /login/oauth/access_token` checks the client,
//! the code (single use), the redirect URI and the PKCE verifier and answers JSON, reporting a
//! refused code with 200 and `error` as GitHub does; `GET /api/user` and `GET /api/user/emails`
//! answer for a bearer token and refuse requests without `User-Agent`, as GitHub's API does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

/// The GitHub user signing in, and their addresses as `GET /user/emails` lists them.
#[derive(Debug, Clone)]
pub struct GitHubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    /// (email, primary, verified)
    pub emails: Vec<(String, bool, bool)>,
}

struct Script {
    user: GitHubUser,
    /// code → (redirect_uri, code_challenge)
    codes: HashMap<String, (String, String)>,
    tokens: Vec<String>,
}

#[derive(Clone)]
struct Shared {
    base: String,
    client_id: String,
    client_secret: String,
    script: Arc<Mutex<Script>>,
}

/// A running stand-in.
pub struct StandInGitHub {
    /// `http://127.0.0.1:<port>`: the base URL of `/login/oauth/…`.
    pub base: String,
    /// `<base>/api`, as a GitHub Enterprise Server's `/api/v3`.
    pub api: String,
    pub client_id: String,
    pub client_secret: String,
    script: Arc<Mutex<Script>>,
    stop: CancellationToken,
}

impl StandInGitHub {
    /// Starts on a free loopback port, signing in `user`.
    pub async fn start(user: GitHubUser) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script {
            user,
            codes: HashMap::new(),
            tokens: Vec::new(),
        }));
        let shared = Shared {
            base: base.clone(),
            client_id: "Iv1.8a61f9b3a7aba766".to_owned(),
            client_secret: "1e8e5d1f9c0a4b7d2e3f4a5b6c7d8e9f0a1b2c3d".to_owned(),
            script: script.clone(),
        };
        let router = axum::Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/api/user", get(user_api))
            .route("/api/user/emails", get(emails_api))
            .with_state(shared.clone());
        let stop = crate::serve_until_cancelled(listener, router);
        Self {
            api: format!("{base}/api"),
            base,
            client_id: shared.client_id,
            client_secret: shared.client_secret,
            script,
            stop,
        }
    }

    /// Who signs in next.
    pub fn set_user(&self, user: GitHubUser) {
        self.script.lock().unwrap().user = user;
    }
}

impl Drop for StandInGitHub {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn authorize(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    if field("client_id") != shared.client_id {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let code = latchkey_protocol::id::new_id("ghcode");
    let redirect_uri = field("redirect_uri");
    shared.script.lock().unwrap().codes.insert(
        code.clone(),
        (redirect_uri.clone(), field("code_challenge")),
    );
    let state = url::form_urlencoded::byte_serialize(field("state").as_bytes()).collect::<String>();
    Redirect::to(&format!("{redirect_uri}?code={code}&state={state}")).into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    // GitHub answers these with 200.
    Json(json!({
        "error": error,
        "error_description": description,
        "error_uri": format!("https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#{}", error.replace('_', "-")),
    }))
    .into_response()
}

async fn access_token(
    State(shared): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    if field("client_id") != shared.client_id || field("client_secret") != shared.client_secret {
        return oauth_error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let mut script = shared.script.lock().unwrap();
    let Some((redirect_uri, challenge)) = script.codes.remove(&field("code")) else {
        return oauth_error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    if field("redirect_uri") != redirect_uri {
        return oauth_error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    let verifier_hash = URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier").as_bytes()));
    if !challenge.is_empty() && verifier_hash != challenge {
        return oauth_error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    }
    let token = format!(
        "gho_{}",
        latchkey_protocol::id::new_id("t").trim_start_matches("t_")
    );
    script.tokens.push(token.clone());
    Json(json!({"access_token": token, "scope": "read:user,user:email", "token_type": "bearer"}))
        .into_response()
}

/// The user behind a request's bearer token, if it is one this stand-in issued and the request
/// names a `User-Agent`.
fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<GitHubUser, Box<Response>> {
    if !headers.contains_key("user-agent") {
        return Err(Box::new(
            (
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
        )
            .into_response(),
        ));
    }
    let script = shared.script.lock().unwrap();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        });
    if !token.is_some_and(|t| script.tokens.iter().any(|known| known == t)) {
        return Err(Box::new(
            (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})),
        )
            .into_response(),
        ));
    }
    Ok(script.user.clone())
}

async fn user_api(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let user = match authorized(&shared, &headers) {
        Ok(user) => user,
        Err(refused) => return *refused,
    };
    let base = &shared.base;
    let public_email: Value = user
        .emails
        .iter()
        .find(|(_, primary, _)| *primary)
        .map_or(Value::Null, |(email, _, _)| json!(email));
    Json(json!({
        "login": user.login,
        "id": user.id,
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", user.id),
        "gravatar_id": "",
        "url": format!("{base}/api/users/{}", user.login),
        "html_url": format!("{base}/{}", user.login),
        "type": "User",
        "site_admin": false,
        "name": user.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": public_email,
        "hireable": null,
        "bio": null,
        "public_repos": 2,
        "followers": 20,
        "following": 0,
        "created_at": "2008-01-14T04:33:35Z",
        "updated_at": "2008-01-14T04:33:35Z",
    }))
    .into_response()
}

async fn emails_api(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let user = match authorized(&shared, &headers) {
        Ok(user) => user,
        Err(refused) => return *refused,
    };
    let list: Vec<Value> = user
        .emails
        .iter()
        .map(|(email, primary, verified)| {
            json!({
                "email": email,
                "primary": primary,
                "verified": verified,
                "visibility": if *primary { json!("public") } else { Value::Null },
            })
        })
        .collect();
    Json(list).into_response()
}
