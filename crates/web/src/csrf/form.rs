//! [`CsrfForm`]: the one way a form post reaches a handler in either part.
//!
//! A handler taking `CsrfForm<T>` only runs for posts that pass both checks of [`Csrf::verify`]
//! (token bound to the cookie, then where the request comes from); every other post is answered
//! here, in one style for both parts: a page saying why, with status 403.

use askama::Template;
use axum::extract::{FromRef, FromRequest, RawForm, Request};
use axum::response::{IntoResponse as _, Response};
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Csrf, CsrfError};
use crate::pages::html;

/// A form a browser posts from one of our pages.
pub trait ProtectedForm: DeserializeOwned {
    /// The page holding the form: the refusal page links back to it, since reloading it issues
    /// a fresh token.
    const PAGE: &'static str;
}

/// A form post whose CSRF checks passed; the token itself is not part of `T`.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

/// Only the token (field [`super::FIELD`]), read before the rest of the form.
#[derive(Deserialize)]
struct Token {
    #[serde(default, rename = "csrf_token")]
    value: Option<String>,
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    Csrf: FromRef<S>,
    T: ProtectedForm,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let csrf = Csrf::from_ref(state);
        let headers = request.headers().clone();
        let RawForm(body) = RawForm::from_request(request, state)
            .await
            .map_err(axum::response::IntoResponse::into_response)?;
        // A body that is not a form at all carries no token either.
        let token = serde_urlencoded::from_bytes::<Token>(&body)
            .ok()
            .and_then(|token| token.value);
        if let Err(error) = csrf.verify(&headers, token.as_deref()) {
            return Err(refused(error, T::PAGE));
        }
        serde_urlencoded::from_bytes::<T>(&body)
            .map(CsrfForm)
            .map_err(|_| {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The form could not be read; reload the page and try again.",
                )
                    .into_response()
            })
    }
}

#[derive(Template)]
#[template(path = "refused.html")]
struct RefusedPage<'a> {
    message: &'a str,
    back_href: &'a str,
}

/// The answer to a form post that failed the CSRF check: 403 and a page saying why.
#[must_use]
pub fn refused(error: CsrfError, back_href: &str) -> Response {
    tracing::warn!(reason = %error, "refused a form post without a valid CSRF token");
    let page = RefusedPage {
        message: &error.to_string(),
        back_href,
    };
    html(StatusCode::FORBIDDEN, page.render(), &[])
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::HeaderMap;

    use super::super::FIELD;
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Note {
        #[serde(default)]
        title: String,
    }

    impl ProtectedForm for Note {
        const PAGE: &'static str = "/notes";
    }

    fn csrf() -> Csrf {
        Csrf::new([7; 32], false, "http://127.0.0.1:3000".to_owned())
    }

    fn post(cookie: Option<&str>, origin: Option<&str>, body: String) -> Request {
        let mut builder =
            Request::post("/notes").header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            builder = builder.header("cookie", cookie.split(';').next().unwrap_or_default());
        }
        if let Some(origin) = origin {
            builder = builder.header("origin", origin);
        }
        builder.body(Body::from(body)).unwrap()
    }

    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_good_token_hands_over_the_form_without_it() {
        let issued = csrf().issue(&HeaderMap::new());
        let cookie = issued.set_cookie.unwrap();
        let body = format!("{FIELD}={}&title=Hello", issued.token);
        let CsrfForm(note) =
            CsrfForm::<Note>::from_request(post(Some(&cookie), None, body), &csrf())
                .await
                .unwrap();
        assert_eq!(
            note,
            Note {
                title: "Hello".to_owned()
            }
        );
    }

    #[tokio::test]
    async fn a_missing_token_or_a_foreign_origin_gets_the_refusal_page() {
        let issued = csrf().issue(&HeaderMap::new());
        let cookie = issued.set_cookie.unwrap();
        let cases = [
            (
                post(Some(&cookie), None, "title=Hello".to_owned()),
                "security token",
            ),
            (
                post(
                    Some(&cookie),
                    Some("https://evil.example"),
                    format!("{FIELD}={}&title=Hello", issued.token),
                ),
                "another site",
            ),
        ];
        for (request, reason) in cases {
            let response = CsrfForm::<Note>::from_request(request, &csrf())
                .await
                .unwrap_err();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
            let page = text(response).await;
            assert!(page.contains(reason), "{page}");
            assert!(page.contains("href=\"/notes\""), "{page}");
        }
    }
}
