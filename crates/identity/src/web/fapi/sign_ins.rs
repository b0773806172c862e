//! `/v1/client/sign_ins`: Clerk's sign-in resource over the hosted pages' use cases:
//! `flows::sign_in` (password: throttles, lockout, dummy hash for unknown addresses),
//! `flows::sign_in_code` (a mailed code) and `flows::reset` (a reset code, then a new
//! password).
//!
//! Clerk answers an unknown identifier with `form_identifier_not_found`; latchkey tells
//! nobody whether an address has an account, so every well-formed address gets the same
//! sign-in offering the same factors, and the flows' stand-ins do the rest.

use axum::extract::{Path, State};
use axum::response::Response;

use super::attempt::{ClientState, SignInState, browser_token};
use super::client;
use super::{FapiError, Input, json};
use crate::flows::reset;
use crate::flows::sign_in::{self, SignInOutcome};
use crate::flows::sign_in_code::{self, CodeOutcome};
use crate::passwords::Password;
use crate::sessions::SignedIn;
use crate::state::Identity;
use crate::users::validate;
use crate::verifications::{Code, Purpose};
use crate::web::session_cookies;

const EMAIL_CODE: &str = "email_code";
const RESET_CODE: &str = "reset_password_email_code";

fn found(state: &ClientState, id: &str) -> Result<SignInState, FapiError> {
    state
        .sign_in
        .clone()
        .filter(|s| s.id == id)
        .ok_or_else(FapiError::not_found)
}

/// What the sign-in answers after a step, the client included.
async fn answer(
    identity: &Identity,
    input: &Input,
    mut state: ClientState,
    sign_in: SignInState,
    signed: Option<&SignedIn>,
) -> Result<Response, FapiError> {
    let response = json::sign_in(&sign_in);
    state.sign_in = Some(sign_in);
    client::reply_after_step(identity, input, &state, response, signed).await
}

/// `POST /v1/client/sign_ins` `{identifier[, strategy, password]}`.
pub(crate) async fn create(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let strategy = input.field("strategy");
    if !matches!(strategy, None | Some("password" | EMAIL_CODE | RESET_CODE)) {
        return Err(FapiError::strategy_invalid());
    }
    let identifier = input.required("identifier")?;
    let email = validate::email(identifier).map_err(|e| {
        FapiError::form(
            "form_param_format_invalid",
            "identifier",
            "is invalid",
            e.to_string(),
        )
    })?;
    let mut state = ClientState::read(&identity, &input.headers);
    state.sign_up = None;
    let mut sign_in = SignInState {
        id: latchkey_protocol::id::new_id("sia"),
        identifier: email.address,
        status: "needs_first_factor".to_owned(),
        created_at: identity.now_ms(),
        ..SignInState::default()
    };
    let mut signed = None;
    if strategy == Some("password") && input.raw("password").is_some() {
        signed = with_password(&identity, &input, &mut sign_in).await?;
    }
    answer(&identity, &input, state, sign_in, signed.as_ref()).await
}

/// `GET /v1/client/sign_ins/{id}`.
pub(crate) async fn get(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let sign_in = found(&state, &id)?;
    answer(&identity, &input, state, sign_in, None).await
}

/// `POST …/prepare_first_factor` `{strategy: email_code | reset_password_email_code}`: mails
/// the code (or, for an address without an account, writes a stand-in; same answer).
pub(crate) async fn prepare_first_factor(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let mut sign_in = found(&state, &id)?;
    let pending = match input.field("strategy") {
        Some(EMAIL_CODE) => {
            sign_in_code::request_sign_in_code(&identity, &sign_in.identifier, "", &input.ctx)
                .await?
        }
        Some(RESET_CODE) => {
            reset::request_password_reset(&identity, &sign_in.identifier, &input.ctx).await?
        }
        Some("password") => {
            return answer(&identity, &input, state, sign_in, None).await;
        }
        _ => return Err(FapiError::strategy_invalid()),
    };
    sign_in.prepared = Some(
        if pending.purpose == Purpose::ResetPassword {
            RESET_CODE
        } else {
            EMAIL_CODE
        }
        .to_owned(),
    );
    sign_in.verification = Some(pending.token.expose().to_owned());
    sign_in.reset_code = None;
    sign_in.status = "needs_first_factor".to_owned();
    answer(&identity, &input, state, sign_in, None).await
}

/// The password step, through `flows::sign_in`.
async fn with_password(
    identity: &Identity,
    input: &Input,
    sign_in: &mut SignInState,
) -> Result<Option<SignedIn>, FapiError> {
    let password = input.required_raw("password")?;
    let previous = session_cookies::client_token(&input.headers);
    let outcome = sign_in::sign_in(
        identity,
        &sign_in.identifier,
        Password::new(password.to_owned()),
        previous.as_ref(),
        "",
        &input.ctx,
    )
    .await?;
    match outcome {
        SignInOutcome::SignedIn(signed) => {
            sign_in.status = "complete".to_owned();
            sign_in.prepared = Some("password".to_owned());
            sign_in.created_session_id = Some(signed.session.id.clone());
            Ok(Some(*signed))
        }
        // The account never verified its address: the flow mailed a code to it instead.
        SignInOutcome::VerifyEmail(pending) => {
            sign_in.prepared = Some(EMAIL_CODE.to_owned());
            sign_in.verification = Some(pending.token.expose().to_owned());
            Ok(None)
        }
        SignInOutcome::SecondFactor(_) => Err(FapiError::new(
            http::StatusCode::UNPROCESSABLE_ENTITY,
            "strategy_for_user_invalid",
            "Second factor required",
            "This account has a second factor; sign in on the hosted sign-in page.",
        )),
    }
}

/// The mailed-code step, through `flows::sign_in_code`: `verification` is the pending code's
/// (a `BrowserToken`); the right code opens the session. Sign-ups verify their address with it
/// too.
pub(super) async fn with_code(
    identity: &Identity,
    input: &Input,
    verification: Option<&str>,
) -> Result<SignedIn, FapiError> {
    let code = input.required("code")?;
    let token = browser_token(verification).ok_or_else(FapiError::verification_missing)?;
    let previous = session_cookies::client_token(&input.headers);
    let outcome =
        sign_in_code::sign_in_with_code(identity, &token, code, previous.as_ref(), &input.ctx)
            .await?;
    let CodeOutcome::SignedIn(signed, _) = outcome else {
        return Err(FapiError::strategy_invalid());
    };
    Ok(*signed)
}

/// `POST …/attempt_first_factor` `{strategy, password | code}`.
pub(crate) async fn attempt_first_factor(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let mut sign_in = found(&state, &id)?;
    if sign_in.status == "complete" {
        return Err(FapiError::verification_missing());
    }
    match input.field("strategy") {
        Some("password") => {
            let signed = with_password(&identity, &input, &mut sign_in).await?;
            answer(&identity, &input, state, sign_in, signed.as_ref()).await
        }
        Some(EMAIL_CODE) => {
            let verification = sign_in
                .verification
                .as_deref()
                .filter(|_| sign_in.prepared.as_deref() == Some(EMAIL_CODE));
            let signed = with_code(&identity, &input, verification).await?;
            sign_in.status = "complete".to_owned();
            sign_in.created_session_id = Some(signed.session.id.clone());
            sign_in.verification = None;
            answer(&identity, &input, state, sign_in, Some(&signed)).await
        }
        Some(RESET_CODE) => {
            // Checked, and spent, with the new password (`reset_password`): the flow takes
            // both in one step so a code buys at most one password hash.
            let code = input.required("code")?;
            if Code::parse(code).is_none() {
                return Err(FapiError::form(
                    "form_code_incorrect",
                    "code",
                    "is incorrect",
                    "Enter the 6-digit code from the email.",
                ));
            }
            if sign_in.prepared.as_deref() != Some(RESET_CODE) {
                return Err(FapiError::verification_missing());
            }
            sign_in.reset_code = Some(code.to_owned());
            sign_in.status = "needs_new_password".to_owned();
            answer(&identity, &input, state, sign_in, None).await
        }
        _ => Err(FapiError::strategy_invalid()),
    }
}

/// `POST …/reset_password` `{password, sign_out_of_other_sessions}`: the reset code and the
/// new password through `flows::reset` (every session of the account ends), then the sign-in
/// with the new password.
pub(crate) async fn reset_password(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let mut sign_in = found(&state, &id)?;
    let (Some(code), Some(token)) = (
        sign_in.reset_code.clone(),
        browser_token(sign_in.verification.as_deref()),
    ) else {
        return Err(FapiError::verification_missing());
    };
    let password = input.required_raw("password")?.to_owned();
    if let Err(error) = reset::reset_password(
        &identity,
        &token,
        &code,
        Password::new(password.clone()),
        &input.ctx,
    )
    .await
    {
        // A weak password leaves the code to be used with a better one; any other refusal
        // (a wrong code counts as an attempt) sends the person back to the code.
        if !matches!(error, crate::flows::CodeError::Password(_)) {
            sign_in.reset_code = None;
            sign_in.status = "needs_first_factor".to_owned();
        }
        let mut state = state;
        state.sign_in = Some(sign_in);
        let mut response = axum::response::IntoResponse::into_response(FapiError::from(error));
        session_cookies::append_cookie(&mut response, &state.cookie(&identity));
        return Ok(response);
    }
    sign_in.reset_code = None;
    sign_in.verification = None;
    let mut json_input = input;
    json_input.form.insert("password".to_owned(), password);
    let signed = with_password(&identity, &json_input, &mut sign_in).await?;
    answer(&identity, &json_input, state, sign_in, signed.as_ref()).await
}
