//! Clerk's Frontend API error envelope, `{"errors": [{code, message, long_message, meta:
//! {param_name}}], "meta": {}}`, and the mapping of the flows' errors to Clerk's codes.
//! Internal failures are logged once, here, and never echoed; a database that cannot be
//! reached is 503 with `Retry-After`.
//!
//! clerk-js signs the user out on any 401, so 401 is kept for "no session" alone: wrong
//! passwords and codes are 422 form errors, as Clerk answers them.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use latchkey_store::StoreError;
use latchkey_web::ErrorChain;
use serde_json::json;

use crate::flows::account::ChangeError;
use crate::flows::sign_in::SignInError;
use crate::flows::sign_up::SignUpError;
use crate::flows::{CodeError, EmailError, RequestError};
use crate::passwords::PolicyError;
use crate::users::validate::FieldError;

/// An error answer of the Frontend API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FapiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub long_message: String,
    pub param: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl FapiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: &str,
        long: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.to_owned(),
            long_message: long.into(),
            param: None,
            retry_after: None,
        }
    }

    #[must_use]
    pub fn param(mut self, name: &'static str) -> Self {
        self.param = Some(name);
        self
    }

    fn retry(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A 422 about one form field.
    pub fn form(
        code: &'static str,
        param: &'static str,
        message: &str,
        long: impl Into<String>,
    ) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message, long).param(param)
    }

    pub fn param_missing(param: &'static str) -> Self {
        Self::form(
            "form_param_missing",
            param,
            "is missing",
            format!("{param} must be included."),
        )
    }

    pub fn param_invalid(param: &'static str, long: impl Into<String>) -> Self {
        Self::form("form_param_value_invalid", param, "is invalid", long)
    }

    pub fn strategy_invalid() -> Self {
        Self::form(
            "strategy_for_user_invalid",
            "strategy",
            "Invalid verification strategy",
            "This strategy is not supported here.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "not found",
            "The requested resource was not found.",
        )
    }

    /// No signed-in session: the one answer that makes clerk-js sign the browser out.
    pub fn signed_out() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "signed_out",
            "Signed out",
            "You are signed out.",
        )
    }

    pub fn origin_not_allowed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "origin_invalid",
            "Invalid origin",
            "This request's origin is not one of the application's allowed origins.",
        )
    }

    pub fn redirect_not_allowed() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_url",
            "Invalid redirect URL",
            "The redirect_url is not on one of the application's allowed origins.",
        )
        .param("redirect_url")
    }

    pub fn verification_missing() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "verification_missing",
            "Verification missing",
            "Prepare a verification before attempting it.",
        )
    }

    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Try again",
            "The service is busy or its database is unreachable. Nothing was changed.",
        )
        .retry(2)
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_clerk_error",
            "Something went wrong",
            "Something went wrong on our side; it has been logged.",
        )
    }

    fn too_many(seconds: u64, long: String) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests",
            long,
        )
        .retry(seconds)
    }
}

impl IntoResponse for FapiError {
    fn into_response(self) -> Response {
        let mut meta = serde_json::Map::new();
        if let Some(param) = self.param {
            meta.insert("param_name".to_owned(), json!(param));
        }
        let body = json!({
            "errors": [{
                "code": self.code,
                "message": self.message,
                "long_message": self.long_message,
                "meta": meta,
            }],
            "meta": {},
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<StoreError> for FapiError {
    fn from(error: StoreError) -> Self {
        if matches!(error, StoreError::Unavailable(_)) {
            tracing::warn!(error = %ErrorChain(&error), "frontend API: database unavailable");
            Self::unavailable()
        } else {
            tracing::error!(error = %ErrorChain(&error), "frontend API: database error");
            Self::internal()
        }
    }
}

fn field_param(field: &str) -> &'static str {
    match field {
        "email_address" => "email_address",
        "first_name" => "first_name",
        "last_name" => "last_name",
        "username" => "username",
        "password" => "password",
        _ => "identifier",
    }
}

impl From<FieldError> for FapiError {
    fn from(error: FieldError) -> Self {
        let param = field_param(error.field);
        Self::form(
            "form_param_format_invalid",
            param,
            "is invalid",
            error.to_string(),
        )
    }
}

fn password_error(param: &'static str, error: &PolicyError) -> FapiError {
    let code = match error {
        PolicyError::TooCommon => "form_password_pwned",
        PolicyError::ContainsPersonalInfo => "form_password_validation_failed",
        PolicyError::TooShort => "form_password_length_too_short",
        PolicyError::TooLong => "form_password_length_too_long",
    };
    FapiError::form(code, param, "is invalid", error.to_string())
}

impl From<SignUpError> for FapiError {
    fn from(error: SignUpError) -> Self {
        match error {
            SignUpError::Field(field) => field.into(),
            SignUpError::Password(policy) => password_error("password", &policy),
            SignUpError::Throttled { retry_after_secs }
            | SignUpError::TooManyMails { retry_after_secs } => {
                Self::too_many(retry_after_secs, error.to_string())
            }
            SignUpError::Busy => Self::unavailable(),
            SignUpError::Internal => Self::internal(),
            SignUpError::Store(store) => store.into(),
        }
    }
}

impl From<SignInError> for FapiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::InvalidCredentials => Self::form(
                "form_password_incorrect",
                "password",
                "Password is incorrect. Try again, or use another method.",
                error.to_string(),
            ),
            SignInError::Locked { retry_after_secs } => Self::new(
                StatusCode::FORBIDDEN,
                "user_locked",
                "Account locked",
                error.to_string(),
            )
            .retry(retry_after_secs),
            SignInError::Banned => Self::new(
                StatusCode::FORBIDDEN,
                "user_banned",
                "Account banned",
                error.to_string(),
            ),
            SignInError::Throttled { retry_after_secs }
            | SignInError::TooManyMails { retry_after_secs } => {
                Self::too_many(retry_after_secs, error.to_string())
            }
            SignInError::Busy => Self::unavailable(),
            SignInError::Internal => Self::internal(),
            SignInError::Store(store) => store.into(),
        }
    }
}

impl From<RequestError> for FapiError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Field(field) => field.into(),
            RequestError::TooManyMails { retry_after_secs }
            | RequestError::Throttled { retry_after_secs } => {
                Self::too_many(retry_after_secs, error.to_string())
            }
            RequestError::Ended => Self::verification_missing(),
            RequestError::Store(store) => store.into(),
        }
    }
}

impl From<CodeError> for FapiError {
    fn from(error: CodeError) -> Self {
        let text = error.to_string();
        let code = |code: &'static str| Self::form(code, "code", "is incorrect", text.clone());
        match error {
            CodeError::Malformed | CodeError::Wrong { .. } => code("form_code_incorrect"),
            CodeError::Expired => code("verification_expired"),
            CodeError::TooManyAttempts => code("verification_failed"),
            CodeError::Used | CodeError::Ended => code("verification_missing"),
            CodeError::Banned => {
                Self::new(StatusCode::FORBIDDEN, "user_banned", "Account banned", text)
            }
            CodeError::Password(policy) => password_error("password", &policy),
            CodeError::Throttled { retry_after_secs } => Self::too_many(retry_after_secs, text),
            CodeError::Busy => Self::unavailable(),
            CodeError::Internal => Self::internal(),
            CodeError::Store(store) => store.into(),
        }
    }
}

impl From<EmailError> for FapiError {
    fn from(error: EmailError) -> Self {
        match error {
            EmailError::Field(field) => field.into(),
            EmailError::AlreadyYours => Self::form(
                "form_identifier_exists",
                "email_address",
                "That email address is taken. Please try another.",
                error.to_string(),
            ),
            EmailError::TooManyPending => Self::form(
                "form_param_value_invalid",
                "email_address",
                "Too many pending addresses",
                error.to_string(),
            ),
            EmailError::NotFound => Self::not_found(),
            EmailError::Primary => Self::new(
                StatusCode::BAD_REQUEST,
                "primary_email_address_required",
                "Primary address",
                error.to_string(),
            ),
            EmailError::Request(request) => request.into(),
            EmailError::Code(code) => code.into(),
            EmailError::Store(store) => store.into(),
        }
    }
}

impl From<ChangeError> for FapiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Field(field) => field.into(),
            ChangeError::Password(policy) => password_error("new_password", &policy),
            ChangeError::WrongPassword => Self::form(
                "form_password_validation_failed",
                "current_password",
                "Incorrect password",
                error.to_string(),
            ),
            ChangeError::TooManyAttempts { retry_after_secs } => {
                Self::too_many(retry_after_secs, error.to_string())
            }
            ChangeError::UsernameTaken => Self::form(
                "form_identifier_exists",
                "username",
                "That username is taken.",
                error.to_string(),
            ),
            ChangeError::NotFound => Self::not_found(),
            ChangeError::Busy => Self::unavailable(),
            ChangeError::Internal => Self::internal(),
            ChangeError::Store(store) => store.into(),
        }
    }
}
