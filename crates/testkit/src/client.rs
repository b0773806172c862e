//! An HTTP client whose every call states the status it expects.

use std::sync::Once;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

/// reqwest is built without a default TLS backend; latchkey uses ring everywhere.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub(crate) fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A request being built.
pub struct Call {
    inner: reqwest::RequestBuilder,
}

impl Call {
    pub(crate) fn new(inner: reqwest::RequestBuilder) -> Self {
        Self { inner }
    }

    #[must_use]
    pub fn header(self, name: &str, value: &str) -> Self {
        Self {
            inner: self.inner.header(name, value),
        }
    }

    #[must_use]
    pub fn bearer(self, token: &str) -> Self {
        Self {
            inner: self.inner.bearer_auth(token),
        }
    }

    #[must_use]
    pub fn json(self, body: &impl serde::Serialize) -> Self {
        Self {
            inner: self.inner.json(body),
        }
    }

    #[must_use]
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self {
            inner: self.inner.body(body),
        }
    }

    #[must_use]
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        Self {
            inner: self.inner.form(fields),
        }
    }

    /// Sends the request and asserts the response status, showing the body when it differs.
    pub async fn expect(self, status: u16) -> Reply {
        let reply = self.send().await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "expected status {status}, got {}; body: {}",
            reply.status,
            reply.text()
        );
        reply
    }

    /// Sends the request, whatever the status.
    pub async fn send(self) -> Reply {
        let response = self.inner.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON.
    #[must_use]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not the expected JSON ({e}): {}", self.text()))
    }

    /// A header's value, if present and text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
