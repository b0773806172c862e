//! The hosted pages: `/sign-up`, `/sign-in`, `/sign-out`, `/user`. Server-rendered with askama
//! (escaping on), usable without JavaScript, every form protected against CSRF.

mod account;
mod sign;

use askama::Template;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};

use crate::state::Identity;

/// The identity's page routes.
pub fn router(identity: Identity) -> Router {
    Router::new()
        .route("/sign-in", get(sign::sign_in_page).post(sign::sign_in))
        .route("/sign-up", get(sign::sign_up_page).post(sign::sign_up))
        .route("/sign-out", post(sign::sign_out))
        .route("/user", get(account::page))
        .route("/user/profile", post(account::save_profile))
        .route("/user/password", post(account::change_password))
        .route("/user/sessions/revoke", post(account::revoke_session))
        .route("/user/sessions/revoke-others", post(account::revoke_others))
        .route("/user/delete", post(account::delete))
        .with_state(identity)
}

/// A rendered page with the headers every page carries: no caching (pages hold CSRF tokens and
/// personal data), no framing, and a strict content policy (no scripts at all).
pub(crate) fn html(
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
        HeaderValue::from_static("default-src 'self'; img-src 'self' https: data:; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    for cookie in set_cookies {
        crate::auth::append_cookie(&mut response, cookie);
    }
    response
}

/// A `303 See Other` to `location` (after a form post), with cookies.
pub(crate) fn see_other(location: &str, set_cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in set_cookies {
        crate::auth::append_cookie(&mut response, cookie);
    }
    response
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    back_href: &'a str,
    back_label: &'a str,
}

/// A page that only says what went wrong, with a way back.
pub(crate) fn message(
    status: StatusCode,
    title: &str,
    message: &str,
    back_href: &str,
    retry_after: Option<u64>,
) -> Response {
    let page = MessagePage {
        title,
        message,
        back_href,
        back_label: "Go back",
    };
    let mut response = html(status, page.render(), &[]);
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The answer to a form post that failed the CSRF check.
pub(crate) fn csrf_refused(error: latchkey_web::csrf::CsrfError, back_href: &str) -> Response {
    tracing::warn!(reason = %error, "refused a form post without a valid CSRF token");
    message(
        StatusCode::FORBIDDEN,
        "Request refused",
        &error.to_string(),
        back_href,
        None,
    )
}

/// The answer when the database or hasher is unavailable.
pub(crate) fn unavailable(back_href: &str) -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again in a moment",
        "The service is busy or its database is unreachable. Nothing was changed.",
        back_href,
        Some(2),
    )
}

/// `?redirect_url=…` for links between the sign-in and sign-up pages, if the target is safe.
pub(crate) fn redirect_query(target: &str) -> String {
    if target.is_empty() {
        String::new()
    } else {
        format!(
            "?redirect_url={}",
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        )
    }
}

/// Formats Unix milliseconds as `2026-11-26 07:12 UTC` and as an ISO 8601 timestamp.
pub(crate) fn format_utc(ms: i64) -> (String, String) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    (
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC"),
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_dates() {
        assert_eq!(super::format_utc(0).1, "1970-01-01T00:00:00Z");
        assert_eq!(
            super::format_utc(1_716_883_200_412).0,
            "2024-05-28 08:00 UTC"
        );
        assert_eq!(super::format_utc(951_782_400_000).1, "2000-02-29T00:00:00Z");
    }
}
