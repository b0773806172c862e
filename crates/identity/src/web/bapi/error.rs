//! Clerk's error envelope for the management API: `{"errors": [{"message", "long_message",
//! "code", "meta"}]}` with Clerk's codes and status codes, and the mapping from the identity's
//! domain errors to it. Internal failures are logged once, here, and never echoed.
//!
//! Codes and messages follow Clerk's published Backend API error index (clerk/clerk-docs,
//! `docs/guides/development/errors/backend-api.mdx`); where Clerk documents no code for a case
//! (rate limiting, an unavailable database) the code is latchkey's own.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use latchkey_store::StoreError;
use latchkey_web::ErrorChain;
use serde_json::{Value, json};

use crate::flows::account::ChangeError;
use crate::flows::admin::AdminError;
use crate::passwords::PolicyError;
use crate::users::validate::FieldError;
use crate::webhooks::EndpointError;

/// An error answer of the management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BapiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub long_message: String,
    /// The request parameter at fault, sent as `meta.param_name`.
    pub param: Option<String>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl BapiError {
    fn new(
        status: StatusCode,
        code: &'static str,
        message: &str,
        long_message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.to_owned(),
            long_message: long_message.into(),
            param: None,
            retry_after: None,
        }
    }

    fn with_param(mut self, name: &str) -> Self {
        self.param = Some(name.to_owned());
        self
    }

    fn unprocessable(
        code: &'static str,
        message: &str,
        param: &str,
        long_message: impl Into<String>,
    ) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message,
            long_message,
        )
        .with_param(param)
    }

    /// No `Authorization` header at all.
    pub fn missing_authorization() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Invalid authentication",
            "Unable to authenticate the request: send your secret key as 'Authorization: Bearer <secret key>'.",
        )
    }

    /// An `Authorization` header that is not `Bearer <key>`.
    pub fn authorization_format() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authorization_header_format_invalid",
            "Invalid Authorization header format",
            "Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'",
        )
    }

    /// A key that is malformed, unknown or revoked: all read the same.
    pub fn invalid_key() -> Self {
        let text = "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.";
        Self::new(StatusCode::UNAUTHORIZED, "clerk_key_invalid", text, text)
    }

    /// No `what` (user, session, webhook endpoint) with this id.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "not found",
            format!("No {what} was found with id {id}"),
        )
    }

    pub fn invalid_value(param: &str, long_message: impl Into<String>) -> Self {
        Self::unprocessable(
            "form_param_value_invalid",
            "is invalid",
            param,
            long_message,
        )
    }

    pub fn invalid_format(param: &str, long_message: impl Into<String>) -> Self {
        Self::unprocessable(
            "form_param_format_invalid",
            "is invalid",
            param,
            long_message,
        )
    }

    pub fn invalid_type(param: &str, expected: &str) -> Self {
        Self::unprocessable(
            "form_param_type_invalid",
            "is invalid",
            param,
            format!("`{param}` must be a `{expected}`."),
        )
    }

    pub fn missing(param: &str) -> Self {
        Self::unprocessable(
            "form_param_missing",
            "is missing",
            param,
            format!("{param} must be included."),
        )
    }

    /// `param` is not allowed together with `condition`.
    pub fn disallowed(param: &str, condition: &str) -> Self {
        Self::unprocessable(
            "form_conditional_param_disallowed",
            "is not allowed",
            param,
            format!("`{param}` isn't allowed when {condition}."),
        )
    }

    pub fn unknown_param(param: &str) -> Self {
        Self::unprocessable(
            "form_param_unknown",
            "is unknown",
            param,
            format!(
                "{param} is not a valid parameter for this request (or is not supported by latchkey)."
            ),
        )
    }

    pub fn too_many_values(param: &str, max: usize) -> Self {
        Self::unprocessable(
            "form_param_array_size_exceeded",
            "exceeds maximum size",
            param,
            format!("{param} should not exceed {max} items."),
        )
    }

    /// An identifier (email address, username) that another account holds.
    pub fn identifier_exists(param: &str, what: &str) -> Self {
        Self::unprocessable(
            "form_identifier_exists",
            &format!("That {what} is taken. Please try another."),
            param,
            format!("That {what} is taken. Please try another."),
        )
    }

    /// A body that is not a JSON object.
    /// A path or query string with control characters (NUL among them, which no database
    /// text column takes).
    pub fn request_invalid() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "request_invalid",
            "Request invalid",
            "The request's path or query string holds control characters.",
        )
    }

    pub fn body_invalid() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "request_body_invalid",
            "Request body invalid",
            "The request body is invalid. Please consult the API documentation for more information.",
        )
    }

    /// A body past the body limit; latchkey's own code, as Clerk documents none.
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_body_too_large",
            "Request body too large",
            "The request body is larger than the 2 MB this API accepts.",
        )
    }

    /// A request that is well-formed but cannot apply to the resource as it is.
    pub fn bad_request(long_message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Bad request",
            long_message,
        )
    }

    /// Past the per-key rate limit.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests",
            format!("Too many requests with this secret key; retry in {retry_after_secs} seconds."),
        );
        error.retry_after = Some(retry_after_secs);
        error
    }

    /// The service cannot do this now but may shortly.
    pub fn unavailable(code: &'static str, long_message: &str) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            "Service unavailable",
            long_message,
        );
        error.retry_after = Some(1);
        error
    }

    /// A failure the caller cannot fix; the cause is logged here, once, and not sent.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %ErrorChain(cause), "management API: internal error");
        Self::unexpected()
    }

    /// An internal failure already logged where it happened.
    pub fn unexpected() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_clerk_error",
            "Oops, an unexpected error occurred",
            "There was an internal error on our servers. It has been logged.",
        )
    }

    /// How the body reads on the wire.
    pub fn body(&self) -> Value {
        let meta = match &self.param {
            Some(name) => json!({"param_name": name}),
            None => json!({}),
        };
        json!({"errors": [{
            "message": self.message,
            "long_message": self.long_message,
            "code": self.code,
            "meta": meta,
        }]})
    }
}

impl IntoResponse for BapiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<StoreError> for BapiError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() {
            tracing::warn!(error = %ErrorChain(&error), "management API: database unavailable or busy");
            Self::unavailable(
                "database_unavailable",
                "The database is unavailable or busy; retry shortly.",
            )
        } else {
            Self::internal(&error)
        }
    }
}

impl From<PolicyError> for BapiError {
    fn from(error: PolicyError) -> Self {
        let (code, message) = match error {
            PolicyError::TooShort => ("form_password_length_too_short", "Password is too short."),
            PolicyError::TooLong => ("form_password_length_too_long", "Password is too long."),
            PolicyError::TooCommon => ("form_password_pwned", "Password is too common."),
            PolicyError::ContainsPersonalInfo => (
                "form_password_not_strong_enough",
                "Given password is not strong enough.",
            ),
        };
        Self::unprocessable(code, message, "password", error.to_string())
    }
}

impl From<FieldError> for BapiError {
    fn from(error: FieldError) -> Self {
        Self::invalid_format(error.field, error.message)
    }
}

impl From<AdminError> for BapiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Field(e) => e.into(),
            AdminError::Password(e) => e.into(),
            AdminError::EmailTaken => Self::identifier_exists("email_address", "email address"),
            AdminError::UsernameTaken => Self::identifier_exists("username", "username"),
            AdminError::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                "resource_not_found",
                "not found",
                "Resource not found",
            ),
            AdminError::Busy => Self::unavailable(
                "service_busy",
                "The password hasher is busy; retry shortly.",
            ),
            AdminError::Internal => Self::unexpected(),
            AdminError::Store(e) => e.into(),
        }
    }
}

impl From<ChangeError> for BapiError {
    fn from(error: ChangeError) -> Self {
        AdminError::from(error).into()
    }
}

impl From<EndpointError> for BapiError {
    fn from(error: EndpointError) -> Self {
        match error {
            EndpointError::BadUrl(_) => Self::invalid_format("url", error.to_string()),
            EndpointError::PrivateUrl(_) => Self::invalid_value("url", error.to_string()),
            EndpointError::BadEventType(_) => Self::invalid_value("events", error.to_string()),
            EndpointError::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                "resource_not_found",
                "not found",
                "Resource not found",
            ),
            EndpointError::Sealed => Self::internal(&error),
            EndpointError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_clerks() {
        let body = BapiError::missing("user_id").body();
        assert_eq!(body["errors"][0]["code"], "form_param_missing");
        assert_eq!(body["errors"][0]["meta"]["param_name"], "user_id");
        assert_eq!(
            body["errors"][0]["long_message"],
            "user_id must be included."
        );
        let limited = BapiError::rate_limited(7);
        assert_eq!(
            (limited.status.as_u16(), limited.retry_after),
            (429, Some(7))
        );
    }
}
