//! GitHub: OAuth 2.0 without OpenID Connect (docs/PROTOCOLS.md §11.5). No discovery document
//! and no ID token: the endpoints are fixed paths under the base URL, and who signed in is
//! read from the REST API (`GET /user`, `GET /user/emails`) with the access token. What it
//! says is put in the same shape as an ID token's claims, so the use case treats every
//! provider alike.

use latchkey_protocol::jwt::IdTokenClaims;
use serde::Deserialize;

use super::ProviderSettings;
use super::provider::{Discovery, ProviderError, Verified, read_body};

/// The authorization and token endpoints under `base` (`https://github.com`, or a GitHub
/// Enterprise Server's address).
pub(super) fn endpoints(provider: &ProviderSettings) -> Discovery {
    let base = provider.issuer.as_str().trim_end_matches('/');
    Discovery {
        issuer: base.to_owned(),
        authorization_endpoint: format!("{base}/login/oauth/authorize"),
        token_endpoint: format!("{base}/login/oauth/access_token"),
        jwks_uri: String::new(),
    }
}

/// The token endpoint's answer: GitHub reports a refused code with 200 and `error`.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

/// Exchanges the code (with its PKCE verifier), then reads the user and their addresses.
pub(super) async fn exchange(
    client: &reqwest::Client,
    provider: &ProviderSettings,
    code: &str,
    code_verifier: &str,
    redirect_uri: &str,
) -> Result<Verified, ProviderError> {
    let endpoints = endpoints(provider);
    let response = client
        .post(&endpoints.token_endpoint)
        .header(http::header::ACCEPT, "application/json")
        .form(&[
            ("client_id", provider.client_id.as_str()),
            ("client_secret", provider.client_secret.expose()),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
        ])
        .send()
        .await
        .map_err(|_| ProviderError::Unreachable)?;
    if response.status().is_client_error() {
        return Err(ProviderError::CodeRefused);
    }
    if !response.status().is_success() {
        return Err(ProviderError::Status(response.status().as_u16()));
    }
    let answer: TokenAnswer = serde_json::from_slice(&read_body(response).await?)
        .map_err(|_| ProviderError::Invalid("the token response"))?;
    let token = answer.access_token.ok_or(ProviderError::CodeRefused)?;
    let api = provider
        .api_url
        .as_ref()
        .map_or("https://api.github.com", url::Url::as_str)
        .trim_end_matches('/')
        .to_owned();
    let user: User = api_get(client, &format!("{api}/user"), &token).await?;
    let emails: Vec<Email> = api_get(client, &format!("{api}/user/emails"), &token).await?;
    // The primary address if it is verified, else any verified one, else the primary.
    let chosen = emails
        .iter()
        .find(|e| e.primary && e.verified)
        .or_else(|| emails.iter().find(|e| e.verified))
        .or_else(|| emails.iter().find(|e| e.primary));
    let (given_name, family_name) = match user.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => match name.split_once(' ') {
            Some((first, last)) => (Some(first.to_owned()), Some(last.trim().to_owned())),
            None => (Some(name.to_owned()), None),
        },
        _ => (None, None),
    };
    let claims = IdTokenClaims {
        iss: endpoints.issuer,
        sub: user.id.to_string(),
        email: chosen.map(|e| e.email.clone()),
        email_verified: chosen.map(|e| e.verified),
        name: user.name,
        given_name,
        family_name,
        picture: user.avatar_url,
        preferred_username: Some(user.login),
        tid: None,
        xms_edov: None,
    };
    // GitHub separates granted scopes with commas; Clerk shows them with spaces.
    let scopes = answer
        .scope
        .map_or_else(|| provider.scopes().to_owned(), |s| s.replace(',', " "));
    Ok(Verified { claims, scopes })
}

async fn api_get<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<T, ProviderError> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .header(http::header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .send()
        .await
        .map_err(|_| ProviderError::Unreachable)?;
    if !response.status().is_success() {
        return Err(ProviderError::Status(response.status().as_u16()));
    }
    serde_json::from_slice(&read_body(response).await?)
        .map_err(|_| ProviderError::Invalid("the user API's answer"))
}
