//! What a Frontend API call carries: its headers, its query string and its form-encoded body
//! (Clerk's scripts send snake_case fields, `application/x-www-form-urlencoded`), and who is
//! asking.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::HeaderMap;

use super::FapiError;
use crate::context::{Peer, RequestContext};
use crate::state::Identity;

/// The most a form body may be: Clerk's bodies are a few fields.
const MAX_BODY: usize = 64 * 1024;

/// A parsed Frontend API request.
pub(crate) struct Input {
    pub headers: HeaderMap,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
    pub ctx: RequestContext,
}

impl Input {
    /// A body field, trimmed; `None` when absent or empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A body field exactly as sent (passwords: spaces count).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.form
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required body field.
    pub fn required(&self, name: &'static str) -> Result<&str, FapiError> {
        self.field(name)
            .ok_or_else(|| FapiError::param_missing(name))
    }

    /// A required body field exactly as sent (a password).
    pub fn required_raw(&self, name: &'static str) -> Result<&str, FapiError> {
        self.raw(name).ok_or_else(|| FapiError::param_missing(name))
    }

    /// Refuses the call unless it names `strategy`, the only one its route offers.
    pub fn require_strategy(&self, strategy: &str) -> Result<(), FapiError> {
        if self.field("strategy") == Some(strategy) {
            Ok(())
        } else {
            Err(FapiError::strategy_invalid())
        }
    }

    /// The page's origin, the `azp` of tokens minted for it (the CORS layer has checked it).
    pub fn origin(&self, identity: &Identity) -> String {
        self.headers
            .get(http::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .filter(|o| identity.config().fapi_origin_allowed(o))
            .map_or_else(|| identity.config().origin(), str::to_owned)
    }
}

impl FromRequest<Identity> for Input {
    type Rejection = FapiError;

    async fn from_request(request: Request, identity: &Identity) -> Result<Self, FapiError> {
        let (mut parts, body) = request.into_parts();
        let Ok(peer) = Peer::from_request_parts(&mut parts, identity).await;
        let ctx = RequestContext::read(&parts.headers, peer, identity.config().trust_forwarded_for);
        let query = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let is_form = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let request = Request::from_parts(parts, body);
        let headers = request.headers().clone();
        let bytes = Bytes::from_request(request, &())
            .await
            .map_err(|_| FapiError::param_invalid("body", "The request body could not be read."))?;
        if bytes.len() > MAX_BODY {
            return Err(FapiError::param_invalid(
                "body",
                "The request body is too large.",
            ));
        }
        let form = if is_form {
            url::form_urlencoded::parse(&bytes).into_owned().collect()
        } else {
            HashMap::new()
        };
        Ok(Self {
            headers,
            query,
            form,
            ctx,
        })
    }
}
