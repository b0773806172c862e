//! Answering with server-rendered pages: the headers every page carries, redirects after form
//! posts, cookies on either.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The policy every page carries.
const CSP: &str = "default-src 'self'; img-src 'self' https: data:; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Lets the page's forms end up at `origins` besides this site: a form posted here whose
/// answer redirects elsewhere (a "Continue with …" button going to its provider) is held to
/// `form-action` by browsers, redirect included.
pub fn allow_form_targets(response: &mut Response, origins: &[String]) {
    let extra: String = origins
        .iter()
        .filter(|o| {
            o.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        })
        .map(|o| format!(" {o}"))
        .collect();
    // Widens the policy the response carries (one that runs own scripts, say), or the default.
    let current = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(CSP)
        .to_owned();
    if let Ok(value) = HeaderValue::from_str(
        &current.replace("form-action 'self'", &format!("form-action 'self'{extra}")),
    ) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// A rendered page with the headers every page carries: no caching (pages hold CSRF tokens and
/// personal data), no framing, no scripts at all, and images only from this site or HTTPS.
pub fn html(
    status: StatusCode,
    body: Result<String, askama::Error>,
    set_cookies: &[String],
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(error = %error, "a page template failed to render");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response();
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    for cookie in set_cookies {
        append_cookie(&mut response, cookie);
    }
    response
}

/// The Content-Security-Policy of a page that runs latchkey's own scripts (served from
/// `/assets/`) and nothing else: no inline script, no other origin. Only the pages that need
/// a script (the WebAuthn calls of passkeys) are sent with it; [`html`] allows none.
pub const CSP_OWN_SCRIPTS: &str = "default-src 'self'; img-src 'self' https: data:; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Lets `response` (a page from [`html`]) run this site's own scripts.
pub fn allow_own_scripts(mut response: Response) -> Response {
    if response
        .headers()
        .contains_key(header::CONTENT_SECURITY_POLICY)
    {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_OWN_SCRIPTS),
        );
    }
    response
}

/// A `303 See Other` to `location` (after a form post), with cookies.
pub fn see_other(location: &str, set_cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in set_cookies {
        append_cookie(&mut response, cookie);
    }
    response
}

/// Adds a `Set-Cookie` header.
pub fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(response: &Response) -> &str {
        response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or_default()
    }

    #[test]
    fn form_targets_widen_form_action_only_and_keep_the_pages_policy() {
        let origins = [
            "https://accounts.example.com".to_owned(),
            "bad;origin".to_owned(),
        ];
        let mut page = allow_own_scripts(html(StatusCode::OK, Ok(String::new()), &[]));
        allow_form_targets(&mut page, &origins);
        let csp = policy(&page);
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(
            csp.contains("form-action 'self' https://accounts.example.com;"),
            "{csp}"
        );
        assert!(!csp.contains("bad"), "{csp}");

        let mut redirect = see_other("https://accounts.example.com/authorize", &[]);
        allow_form_targets(&mut redirect, &origins);
        assert!(policy(&redirect).contains("script-src 'none'"));
    }
}
