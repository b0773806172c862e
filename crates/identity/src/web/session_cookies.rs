//! Browser sessions over cookies: setting and clearing them, finding the signed-in account, and
//! keeping the short-lived `__session` token fresh.
//!
//! * `__client`: the opaque session handle (`HttpOnly`), checked against the database.
//! * `__session`: the 60-second RS256 session token any verifier can check offline. Also
//!   `HttpOnly`: latchkey's pages need no script to read it.
//! * `__client_uat`: when the client last signed in or out (seconds), as Clerk sets it.
//!
//! [`refresh_session_token`] runs in front of every route: when a browser with a live
//! `__client` arrives without a valid, unexpiring `__session`, it mints one, hands it to the
//! handler as if the browser had sent it, and sets it on the response. A revoked or expired
//! session gets its cookies cleared instead, and no new token.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, header};
use latchkey_protocol::jwt::{VerifyOptions, verify_session_token};
use latchkey_web::cookies;

use crate::sessions::SignedIn;
use crate::sessions::{ClientToken, SessionRecord};
use crate::state::Identity;
use crate::users::UserRecord;

pub const CLIENT_COOKIE: &str = "__client";
pub const SESSION_COOKIE: &str = "__session";
pub const CLIENT_UAT_COOKIE: &str = "__client_uat";

/// Tokens with less than this left are replaced before a request is handled.
const REMINT_BEFORE_EXPIRY_SECS: i64 = 15;

fn lifetime_secs(identity: &Identity) -> i64 {
    identity.config().session_lifetime_ms / 1000
}

/// `Set-Cookie` values for a new session.
#[must_use]
pub fn sign_in_cookies(identity: &Identity, signed: &SignedIn) -> Vec<String> {
    let secure = identity.config().secure_cookies();
    let lifetime = Some(lifetime_secs(identity));
    vec![
        cookies::build(
            CLIENT_COOKIE,
            signed.client_token.expose(),
            secure,
            true,
            lifetime,
        ),
        cookies::build(
            SESSION_COOKIE,
            &signed.session_token,
            secure,
            true,
            lifetime,
        ),
        cookies::build(
            CLIENT_UAT_COOKIE,
            &signed.session.created_at.div_euclid(1000).to_string(),
            secure,
            false,
            lifetime,
        ),
    ]
}

/// `Set-Cookie` values that sign the browser out.
#[must_use]
pub fn sign_out_cookies(identity: &Identity) -> Vec<String> {
    let secure = identity.config().secure_cookies();
    vec![
        cookies::clear(CLIENT_COOKIE, secure, true),
        cookies::clear(SESSION_COOKIE, secure, true),
        cookies::build(
            CLIENT_UAT_COOKIE,
            "0",
            secure,
            false,
            Some(lifetime_secs(identity)),
        ),
    ]
}

/// The `__client` cookie of a request, if well-formed.
#[must_use]
pub fn client_token(headers: &HeaderMap) -> Option<ClientToken> {
    cookies::get(headers, CLIENT_COOKIE).and_then(ClientToken::from_cookie)
}

/// The signed-in session and account of a browser request, checked against the database
/// (so a revoked session is refused at once).
pub async fn current(
    identity: &Identity,
    headers: &HeaderMap,
) -> Result<Option<(SessionRecord, UserRecord)>, latchkey_store::StoreError> {
    match client_token(headers) {
        Some(token) => lifecycle::authenticate(identity, &token).await,
        None => Ok(None),
    }
}

/// Whether `token` is a session token of ours with at least a few seconds left.
fn is_fresh(identity: &Identity, token: &str) -> bool {
    let now = identity.now_ms();
    let options = VerifyOptions::new(now + REMINT_BEFORE_EXPIRY_SECS * 1000).with_clock_skew_ms(0);
    verify_session_token(token, &identity.keys().verifying(), &options).is_ok()
}

/// Middleware: keeps `__session` fresh for browsers holding a live `__client` (see the module
/// documentation).
pub async fn refresh_session_token(
    State(identity): State<Identity>,
    mut request: Request,
    next: Next,
) -> Response {
    // Clerk's scripts manage `__session` themselves on the Frontend API's paths: an HttpOnly
    // one set here would shadow theirs.
    if crate::web::fapi::is_fapi_path(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(client) = client_token(request.headers()) else {
        return next.run(request).await;
    };
    if cookies::get(request.headers(), SESSION_COOKIE)
        .is_some_and(|token| is_fresh(&identity, token))
    {
        return next.run(request).await;
    }
    let secure = identity.config().secure_cookies();
    match lifecycle::authenticate(&identity, &client).await {
        Ok(Some((session, _))) => {
            let token = token::mint_session_token(&identity, &session).await;
            replace_cookie(request.headers_mut(), SESSION_COOKIE, Some(&token));
            let mut response = next.run(request).await;
            let lifetime = Some(lifetime_secs(&identity));
            append_cookie(
                &mut response,
                &cookies::build(SESSION_COOKIE, &token, secure, true, lifetime),
            );
            append_cookie(
                &mut response,
                &cookies::build(CLIENT_COOKIE, client.expose(), secure, true, lifetime),
            );
            response
        }
        Ok(None) => {
            replace_cookie(request.headers_mut(), SESSION_COOKIE, None);
            replace_cookie(request.headers_mut(), CLIENT_COOKIE, None);
            let mut response = next.run(request).await;
            for cookie in sign_out_cookies(&identity) {
                append_cookie(&mut response, &cookie);
            }
            response
        }
        // The database is unreachable: leave the request as it came; its token, if expired,
        // will not be accepted, and the next request tries again.
        Err(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not refresh a session token");
            next.run(request).await
        }
    }
}

/// Rewrites the request's `Cookie` headers with `name` set to `value` (or removed).
fn replace_cookie(headers: &mut HeaderMap, name: &str, value: Option<&str>) {
    let mut pairs: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').is_none_or(|(k, _)| k != name))
        .map(str::to_owned)
        .collect();
    if let Some(value) = value {
        pairs.push(format!("{name}={value}"));
    }
    headers.remove(header::COOKIE);
    if let Ok(value) = HeaderValue::from_str(&pairs.join("; ")) {
        headers.insert(header::COOKIE, value);
    }
}

use crate::sessions::lifecycle;
use crate::sessions::token;
pub(crate) use latchkey_web::pages::append_cookie;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_a_cookie_keeps_the_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; __session=old".parse().unwrap());
        headers.append(header::COOKIE, "b=2".parse().unwrap());
        replace_cookie(&mut headers, SESSION_COOKIE, Some("new"));
        assert_eq!(cookies::get(&headers, "__session"), Some("new"));
        assert_eq!(cookies::get(&headers, "a"), Some("1"));
        assert_eq!(cookies::get(&headers, "b"), Some("2"));
        replace_cookie(&mut headers, SESSION_COOKIE, None);
        assert_eq!(cookies::get(&headers, "__session"), None);
    }
}
