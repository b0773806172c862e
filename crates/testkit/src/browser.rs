//! A minimal browser for page tests: it keeps cookies, follows nothing by itself, and reads the
//! hidden fields of forms. Real-browser tests (Chromium) cover rendering; this covers the HTTP
//! contract of the pages precisely.

use std::collections::BTreeMap;

use crate::{Call, Reply};

/// One browser profile: a cookie jar and the server it talks to.
#[derive(Debug, Clone)]
pub struct Browser {
    base: String,
    pub cookies: BTreeMap<String, String>,
    client: reqwest::Client,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Browser {
    #[must_use]
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            cookies: BTreeMap::new(),
            client: crate::client::client(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36".to_owned(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn call(&self, method: reqwest::Method, path: &str) -> Call {
        let mut call = Call::new(self.client.request(method, format!("{}{path}", self.base)))
            .header("user-agent", &self.user_agent);
        if !self.cookies.is_empty() {
            call = call.header("cookie", &self.cookie_header());
        }
        call
    }

    /// Remembers the cookies a response sets (or deletes).
    pub fn absorb(&mut self, reply: &Reply) {
        for value in reply.headers.get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = parts.any(|attr| attr.trim().eq_ignore_ascii_case("max-age=0"));
            if expired {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// `GET path`, keeping cookies, expecting `status`.
    pub async fn get(&mut self, path: &str, status: u16) -> Reply {
        let reply = self.call(reqwest::Method::GET, path).expect(status).await;
        self.absorb(&reply);
        reply
    }

    /// Posts a form as a same-origin page would (with an `Origin` header), expecting `status`.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)], status: u16) -> Reply {
        let reply = self
            .call(reqwest::Method::POST, path)
            .header("origin", &self.base)
            .form(fields)
            .expect(status)
            .await;
        self.absorb(&reply);
        reply
    }

    /// Loads the page at `form_page`, then submits its form at `action` with its CSRF token and
    /// `fields`, expecting `status`.
    pub async fn submit(
        &mut self,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
        status: u16,
    ) -> Reply {
        let page = self.get(form_page, 200).await;
        let token = csrf_token(&page.text());
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(action, &all, status).await
    }

    /// A raw request with this browser's cookies, for cases the helpers above do not cover.
    #[must_use]
    pub fn request(&self, method: reqwest::Method, path: &str) -> Call {
        self.call(method, path)
    }

    /// The origin this browser talks to, for an `Origin` header.
    #[must_use]
    pub fn request_base(&self) -> String {
        self.base.clone()
    }

    /// The value of a cookie, if set.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }
}

/// The value of the first `csrf_token` hidden field in `html`.
///
/// # Panics
/// If the page has no such field.
#[must_use]
pub fn csrf_token(html: &str) -> String {
    hidden_field(html, "csrf_token")
        .unwrap_or_else(|| panic!("the page has no csrf_token field: {html}"))
}

/// The value of the first hidden input named `name`.
#[must_use]
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "="),
    )
}
