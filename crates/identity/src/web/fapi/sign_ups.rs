//! `/v1/client/sign_ups`: Clerk's sign-up resource over `flows::sign_up` and the code that
//! verifies the address (`flows::sign_in_code`), exactly as the hosted `/sign-up` and
//! `/verify` use them.
//!
//! Clerk's components send the address and the password together, then ask for the code
//! (`prepare_verification`) and enter it (`attempt_verification`). The flow runs as soon as
//! both are known: it creates the account and mails the code (or, for a taken address, tells
//! its owner and answers the same), so the first `prepare_verification` has nothing left to
//! do and later ones send the code again. A password is never kept between requests.

use axum::extract::{Path, State};
use axum::response::Response;

use super::attempt::{ClientState, SignUpState, browser_token};
use super::{FapiError, Input, client, json, sign_ins};
use crate::flows::sign_in_code;
use crate::flows::sign_up::{self, SignUp};
use crate::passwords::Password;
use crate::sessions::SignedIn;
use crate::state::Identity;
use crate::users::validate;

/// Strategies a sign-up may name at creation; others (social, tickets, wallets) are refused.
fn check_strategy(input: &Input) -> Result<(), FapiError> {
    match input.field("strategy") {
        None | Some("email_code") => Ok(()),
        Some(_) => Err(FapiError::strategy_invalid()),
    }
}

fn found(state: &ClientState, id: &str) -> Result<SignUpState, FapiError> {
    state
        .sign_up
        .clone()
        .filter(|s| s.id == id)
        .ok_or_else(FapiError::not_found)
}

/// What the sign-up answers after a step, the client included.
async fn answer(
    identity: &Identity,
    input: &Input,
    mut state: ClientState,
    sign_up: SignUpState,
    signed: Option<&SignedIn>,
) -> Result<Response, FapiError> {
    let response = json::sign_up(&sign_up);
    state.sign_up = Some(sign_up);
    client::reply_after_step(identity, input, &state, response, signed).await
}

/// Takes the sign-up's fields from the form; runs the flow once address and password are in.
async fn apply(
    identity: &Identity,
    input: &Input,
    sign_up: &mut SignUpState,
) -> Result<(), FapiError> {
    check_strategy(input)?;
    if let Some(name) = input.form.get("first_name") {
        sign_up.first_name = validate::name("first_name", name)?;
    }
    if let Some(name) = input.form.get("last_name") {
        sign_up.last_name = validate::name("last_name", name)?;
    }
    if let Some(address) = input.field("email_address") {
        let email = validate::email(address)?;
        if sign_up.submitted && sign_up.email_address.as_deref() != Some(email.address.as_str()) {
            return Err(FapiError::param_invalid(
                "email_address",
                "The code was sent to the first address; start a new sign-up to use another.",
            ));
        }
        sign_up.email_address = Some(email.address);
    }
    let (Some(address), Some(password)) = (sign_up.email_address.clone(), input.raw("password"))
    else {
        return Ok(());
    };
    if sign_up.submitted {
        return Ok(());
    }
    let request = SignUp {
        email_address: address,
        password: Password::new(password.to_owned()),
        first_name: sign_up.first_name.clone().unwrap_or_default(),
        last_name: sign_up.last_name.clone().unwrap_or_default(),
        redirect_url: String::new(),
    };
    let pending = sign_up::sign_up(identity, request, &input.ctx).await?;
    sign_up.submitted = true;
    sign_up.verification = Some(pending.token.expose().to_owned());
    Ok(())
}

/// `POST /v1/client/sign_ups`.
pub(crate) async fn create(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let mut state = ClientState::read(&identity, &input.headers);
    let mut sign_up = SignUpState {
        id: latchkey_protocol::id::new_id("sua"),
        status: "missing_requirements".to_owned(),
        created_at: identity.now_ms(),
        ..SignUpState::default()
    };
    apply(&identity, &input, &mut sign_up).await?;
    state.sign_in = None;
    answer(&identity, &input, state, sign_up, None).await
}

/// `GET /v1/client/sign_ups/{id}`.
pub(crate) async fn get(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let sign_up = found(&state, &id)?;
    answer(&identity, &input, state, sign_up, None).await
}

/// `PATCH /v1/client/sign_ups/{id}`.
pub(crate) async fn update(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let mut sign_up = found(&state, &id)?;
    apply(&identity, &input, &mut sign_up).await?;
    answer(&identity, &input, state, sign_up, None).await
}

/// `POST /v1/client/sign_ups/{id}/prepare_verification` `{strategy: email_code}`.
pub(crate) async fn prepare_verification(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let mut sign_up = found(&state, &id)?;
    input.require_strategy("email_code")?;
    if !sign_up.submitted {
        return Err(FapiError::param_missing("password"));
    }
    if sign_up.prepared {
        let token = browser_token(sign_up.verification.as_deref())
            .ok_or_else(FapiError::verification_missing)?;
        sign_in_code::resend_code(&identity, &token).await?;
    }
    sign_up.prepared = true;
    answer(&identity, &input, state, sign_up, None).await
}

/// `POST /v1/client/sign_ups/{id}/attempt_verification` `{strategy: email_code, code}`: the
/// right code verifies the address and starts the session.
pub(crate) async fn attempt_verification(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let state = ClientState::read(&identity, &input.headers);
    let mut sign_up = found(&state, &id)?;
    input.require_strategy("email_code")?;
    let signed = sign_ins::with_code(&identity, &input, sign_up.verification.as_deref()).await?;
    sign_up.status = "complete".to_owned();
    sign_up.created_session_id = Some(signed.session.id.clone());
    sign_up.created_user_id = Some(signed.user_id.clone());
    sign_up.verification = None;
    answer(&identity, &input, state, sign_up, Some(&signed)).await
}
