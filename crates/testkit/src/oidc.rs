//! A scriptable OpenID Connect provider on loopback, for the refusals a well-behaved provider
//! never produces: it serves a discovery document, a JWKS, an authorization endpoint that
//! consents at once (or says `access_denied`), and a token endpoint that checks the client's
//! credentials, the code (single use), the redirect URI and the PKCE verifier (RFC 7636 S256)
//! as a real provider does, then answers with an ID token that is right or forged in one way
//! the test chose. The browser journey runs against `oidc-provider` from npm instead
//! (`interop/oidc-provider.mjs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit as _, Mac as _};
use latchkey_protocol::jwt::SigningKey;
use rsa::pkcs8::EncodePrivateKey as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

/// The one way the next ID token is wrong, or [`Forgery::None`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    None,
    WrongAudience,
    WrongIssuer,
    WrongNonce,
    Expired,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 keyed with the client secret while the JWKS announces RS256.
    Hs256WithClientSecret,
    /// Signed by a key the JWKS does not list.
    UnknownKey,
}

/// The person signing in at the provider.
#[derive(Debug, Clone)]
pub struct Person {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
}

impl Person {
    /// A person with a verified address.
    #[must_use]
    pub fn verified(sub: &str, email: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            email: Some(email.to_owned()),
            email_verified: Some(true),
            given_name: Some("Ada".to_owned()),
            family_name: Some("Lovelace".to_owned()),
            picture: Some("https://images.example.com/ada.png".to_owned()),
        }
    }
}

struct Script {
    person: Person,
    forgery: Forgery,
    deny: bool,
    refuse_code: bool,
    /// How long the token endpoint takes to answer.
    token_delay: std::time::Duration,
    /// code → (redirect_uri, code_challenge, nonce)
    codes: HashMap<String, (String, String, String)>,
    token_requests: u64,
}

/// A running stand-in provider.
pub struct StandInProvider {
    /// The issuer, `http://127.0.0.1:<port>`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    script: Arc<Mutex<Script>>,
    stop: CancellationToken,
}

#[derive(Clone)]
struct Shared {
    issuer: String,
    client_id: String,
    client_secret: String,
    key: Arc<SigningKey>,
    stray: Arc<SigningKey>,
    script: Arc<Mutex<Script>>,
}

/// A fresh RSA-2048 signing key under `kid`, for a stand-in that signs tokens.
pub(crate) fn rsa_key(kid: &str) -> SigningKey {
    let private = rsa::PrivateKey::new_with_exp(
        &mut getrandom::SysRng,
        2048,
        rsa::BoxedUint::from(65_537_u64),
    )
    .unwrap();
    let der = private.to_pkcs8_der().unwrap();
    SigningKey::from_pkcs8_der(der.as_bytes(), kid).unwrap()
}

impl StandInProvider {
    /// Starts on a free loopback port, signing in `person`.
    pub async fn start(person: Person) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script {
            person,
            forgery: Forgery::None,
            deny: false,
            refuse_code: false,
            token_delay: std::time::Duration::ZERO,
            codes: HashMap::new(),
            token_requests: 0,
        }));
        let shared = Shared {
            issuer: issuer.clone(),
            client_id: "latchkey-test-client".to_owned(),
            client_secret: "stand-in-client-secret-0123456789".to_owned(),
            key: Arc::new(rsa_key("standin-1")),
            stray: Arc::new(rsa_key("standin-stray")),
            script: script.clone(),
        };
        let router = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(shared.clone());
        let stop = crate::serve_until_cancelled(listener, router);
        Self {
            issuer,
            client_id: shared.client_id,
            client_secret: shared.client_secret,
            script,
            stop,
        }
    }

    /// Who signs in next.
    pub fn set_person(&self, person: Person) {
        self.script.lock().unwrap().person = person;
    }

    /// How the next ID tokens are forged.
    pub fn forge(&self, forgery: Forgery) {
        self.script.lock().unwrap().forgery = forgery;
    }

    /// Whether the person says no at the provider.
    pub fn deny(&self, deny: bool) {
        self.script.lock().unwrap().deny = deny;
    }

    /// Whether the token endpoint refuses every code.
    pub fn refuse_codes(&self, refuse: bool) {
        self.script.lock().unwrap().refuse_code = refuse;
    }

    /// Makes the token endpoint answer only after `delay` (a slow provider).
    pub fn delay_tokens(&self, delay: std::time::Duration) {
        self.script.lock().unwrap().token_delay = delay;
    }

    /// Token requests answered so far.
    #[must_use]
    pub fn token_requests(&self) -> u64 {
        self.script.lock().unwrap().token_requests
    }

    /// Stops answering (the provider is down).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for StandInProvider {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn discovery(State(shared): State<Shared>) -> Json<Value> {
    let issuer = &shared.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
}

async fn jwks(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({"keys": [shared.key.public_jwk()]}))
}

async fn authorize(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    let (redirect_uri, state) = (field("redirect_uri"), field("state"));
    if field("client_id") != shared.client_id
        || field("response_type") != "code"
        || field("code_challenge_method") != "S256"
        || field("code_challenge").is_empty()
        || !field("scope").split(' ').any(|s| s == "openid")
    {
        return (StatusCode::BAD_REQUEST, "invalid_request").into_response();
    }
    let mut script = shared.script.lock().unwrap();
    let state_q = url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>();
    if script.deny {
        return Redirect::to(&format!(
            "{redirect_uri}?error=access_denied&state={state_q}"
        ))
        .into_response();
    }
    let code = latchkey_protocol::id::new_id("code");
    script.codes.insert(
        code.clone(),
        (
            redirect_uri.clone(),
            field("code_challenge"),
            field("nonce"),
        ),
    );
    Redirect::to(&format!("{redirect_uri}?code={code}&state={state_q}")).into_response()
}

fn client_authenticated(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!("{}:{}", shared.client_id, shared.client_secret);
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .is_some_and(|decoded| decoded == expected.as_bytes())
}

async fn token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let delay = shared.script.lock().unwrap().token_delay;
    tokio::time::sleep(delay).await;
    let mut script = shared.script.lock().unwrap();
    script.token_requests += 1;
    let refused = || {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response()
    };
    if !client_authenticated(&shared, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some((redirect_uri, challenge, nonce)) = script.codes.remove(&field("code")) else {
        return refused();
    };
    let verifier_hash = URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier").as_bytes()));
    if script.refuse_code
        || field("grant_type") != "authorization_code"
        || field("redirect_uri") != redirect_uri
        || verifier_hash != challenge
    {
        return refused();
    }
    let id_token = id_token(&shared, &script, &nonce);
    Json(json!({
        "access_token": "stand-in-access-token",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid email profile",
        "id_token": id_token,
    }))
    .into_response()
}

fn id_token(shared: &Shared, script: &Script, nonce: &str) -> String {
    let now = latchkey_protocol::time::now_ms() / 1000;
    let person = &script.person;
    let mut claims = json!({
        "iss": shared.issuer,
        "sub": person.sub,
        "aud": shared.client_id,
        "nonce": nonce,
        "iat": now,
        "exp": now + 300,
    });
    for (name, value) in [
        ("email", person.email.as_ref().map(|v| json!(v))),
        ("email_verified", person.email_verified.map(|v| json!(v))),
        ("given_name", person.given_name.as_ref().map(|v| json!(v))),
        ("family_name", person.family_name.as_ref().map(|v| json!(v))),
        ("picture", person.picture.as_ref().map(|v| json!(v))),
    ] {
        if let Some(value) = value {
            claims[name] = value;
        }
    }
    let header = json!({"alg": "RS256", "kid": shared.key.kid(), "typ": "JWT"});
    match script.forgery {
        Forgery::None => shared.key.sign_json(&header, &claims),
        Forgery::WrongAudience => {
            claims["aud"] = json!("some-other-client");
            shared.key.sign_json(&header, &claims)
        }
        Forgery::WrongIssuer => {
            claims["iss"] = json!("https://issuer.example.com");
            shared.key.sign_json(&header, &claims)
        }
        Forgery::WrongNonce => {
            claims["nonce"] = json!("not-the-nonce-that-was-sent");
            shared.key.sign_json(&header, &claims)
        }
        Forgery::Expired => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
            shared.key.sign_json(&header, &claims)
        }
        Forgery::AlgNone => format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ),
        Forgery::Hs256WithClientSecret => {
            let signed = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(
                    json!({"alg": "HS256", "kid": shared.key.kid(), "typ": "JWT"}).to_string()
                ),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let mut mac =
                hmac::Hmac::<Sha256>::new_from_slice(shared.client_secret.as_bytes()).unwrap();
            mac.update(signed.as_bytes());
            format!(
                "{signed}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        }
        Forgery::UnknownKey => shared.stray.sign_json(
            &json!({"alg": "RS256", "kid": shared.stray.kid(), "typ": "JWT"}),
            &claims,
        ),
    }
}
