//! latchkey as a WebAuthn relying party, through the `webauthn_rp` crate: options for the
//! browser, and the checks of its answers (origin, RP id hash, challenge, signature, user
//! verification, signature counter). The RP id is the host of `public_url`; the only origin
//! accepted is `public_url`'s. Every passkey is discoverable and requires user verification, so
//! a passkey sign-in proves two factors at once (something held, and a PIN or biometric).

use webauthn_rp::bin::{Decode as _, Encode as _};
use webauthn_rp::request::auth::AuthenticationVerificationOptions;
use webauthn_rp::request::register::{
    CredProtect, Nickname, PublicKeyCredentialUserEntity, RegistrationVerificationOptions,
    UserHandle64, Username,
};
use webauthn_rp::request::{
    AsciiDomain, ExtensionInfo, PublicKeyCredentialDescriptor, RpId, TimedCeremony as _,
};
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, CredentialId};
use webauthn_rp::{
    AuthenticatedCredential, DiscoverableAuthentication64, DiscoverableAuthenticationServerState,
    DiscoverableCredentialRequestOptions, PublicKeyCredentialCreationOptions, Registration,
    RegistrationServerState,
};

/// Why the relying party could not go on. Details go to the log, never to the browser.
#[derive(Debug, thiserror::Error)]
pub enum RpError {
    /// The answer is not a WebAuthn response at all.
    #[error("the answer is not a WebAuthn response: {0}")]
    Malformed(String),
    /// The answer is well formed but fails a check (origin, RP id, signature, counter, …).
    #[error("the WebAuthn response was refused: {0}")]
    Refused(String),
    /// Stored state could not be read back, or the options could not be made.
    #[error("WebAuthn state is unusable: {0}")]
    Internal(String),
}

/// A ceremony's start: the challenge it is stored under, the state to store, the options to
/// send (`PublicKeyCredentialCreationOptionsJSON` or `…RequestOptionsJSON`).
#[derive(Debug)]
pub struct Started {
    pub challenge: u128,
    pub server_state: Vec<u8>,
    pub options: serde_json::Value,
}

/// A credential the browser just registered, checked and ready to store.
#[derive(Debug)]
pub struct NewCredential {
    pub credential_id: Vec<u8>,
    pub static_state: Vec<u8>,
    pub dynamic_state: Vec<u8>,
}

/// A registration answer, parsed but not yet checked.
#[derive(Debug)]
pub struct RegistrationAnswer(Registration);

/// A sign-in answer, parsed but not yet checked.
#[derive(Debug)]
pub struct SignInAnswer(DiscoverableAuthentication64);

impl RegistrationAnswer {
    /// Parses the browser's `PublicKeyCredential.toJSON()` of a registration.
    ///
    /// # Errors
    /// [`RpError::Malformed`].
    pub fn parse(json: &[u8]) -> Result<(Self, u128), RpError> {
        let registration =
            Registration::from_json_relaxed(json).map_err(|e| RpError::Malformed(e.to_string()))?;
        let challenge = registration
            .challenge_relaxed()
            .map_err(|e| RpError::Malformed(e.to_string()))?;
        Ok((Self(registration), challenge.0))
    }
}

impl SignInAnswer {
    /// Parses the browser's `PublicKeyCredential.toJSON()` of an assertion.
    ///
    /// # Errors
    /// [`RpError::Malformed`].
    pub fn parse(json: &[u8]) -> Result<(Self, u128), RpError> {
        let authentication = DiscoverableAuthentication64::from_json_relaxed(json)
            .map_err(|e| RpError::Malformed(e.to_string()))?;
        let challenge = authentication
            .challenge_relaxed()
            .map_err(|e| RpError::Malformed(e.to_string()))?;
        Ok((Self(authentication), challenge.0))
    }

    /// The raw credential id the browser answered with.
    #[must_use]
    pub fn credential_id(&self) -> &[u8] {
        self.0.raw_id().into_inner()
    }

    /// The user handle the authenticator returned.
    #[must_use]
    pub fn user_handle(&self) -> &[u8] {
        self.0.response().user_handle().as_ref()
    }
}

/// latchkey's relying party: its RP id and the origin it accepts.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    rp_id: RpId,
    origin: String,
}

fn internal(error: impl std::fmt::Display) -> RpError {
    RpError::Internal(error.to_string())
}

fn to_json(value: &impl serde::Serialize) -> Result<serde_json::Value, RpError> {
    serde_json::to_value(value).map_err(internal)
}

impl RelyingParty {
    /// The relying party of a deployment at `public_url`; `None` if its host is an IP address
    /// (browsers refuse those as RP ids).
    #[must_use]
    pub fn new(public_url: &url::Url) -> Option<Self> {
        let Some(url::Host::Domain(host)) = public_url.host() else {
            return None;
        };
        let domain = AsciiDomain::try_from(host.to_ascii_lowercase()).ok()?;
        Some(Self {
            rp_id: RpId::Domain(domain),
            origin: public_url.origin().ascii_serialization(),
        })
    }

    /// Starts registering a passkey for the account with `user_handle`, `name` (its address)
    /// and `display_name`, excluding the credentials it already has.
    ///
    /// # Errors
    /// [`RpError::Internal`] if the handle or options are unusable.
    pub fn start_registration(
        &self,
        user_handle: &[u8],
        name: &str,
        display_name: &str,
        existing: Vec<Vec<u8>>,
    ) -> Result<Started, RpError> {
        let handle: [u8; 64] = user_handle.try_into().map_err(internal)?;
        let handle = UserHandle64::decode(handle).map_err(internal)?;
        // Names outside the PRECIS profiles (rare addresses) fall back to plain ones: they are
        // only labels in the browser's passkey list.
        let name = Username::try_from(name).unwrap_or_else(|_| {
            Username::try_from("account").unwrap_or_else(|_| unreachable!("a plain ASCII name"))
        });
        let display_name = Nickname::try_from(display_name).ok();
        let mut exclude = Vec::with_capacity(existing.len());
        for id in existing {
            exclude.push(PublicKeyCredentialDescriptor {
                id: CredentialId::<Vec<u8>>::decode(id).map_err(internal)?,
                transports: AuthTransports::decode(0).map_err(internal)?,
            });
        }
        let user = PublicKeyCredentialUserEntity {
            name,
            id: &handle,
            display_name,
        };
        let mut options = PublicKeyCredentialCreationOptions::passkey(&self.rp_id, user, exclude);
        // Authenticators that know credProtect keep the credential for verified users only; the
        // others still make it (enforcing would fail the ceremony there). Every assertion
        // requires user verification anyway.
        options.extensions.cred_protect =
            CredProtect::UserVerificationRequired(ExtensionInfo::AllowDontEnforceValue);
        let (server, client) = options.start_ceremony().map_err(internal)?;
        Ok(Started {
            challenge: server.sent_challenge().0,
            server_state: server.encode().map_err(internal)?,
            options: to_json(&client)?,
        })
    }

    /// Checks a registration answer against the stored state of its ceremony.
    ///
    /// # Errors
    /// [`RpError::Refused`] for an answer that fails a check; [`RpError::Internal`] for
    /// stored state that cannot be read.
    pub fn finish_registration(
        &self,
        server_state: &[u8],
        answer: &RegistrationAnswer,
    ) -> Result<NewCredential, RpError> {
        let server = RegistrationServerState::<64>::decode(server_state).map_err(internal)?;
        let origins = [self.origin.clone()];
        let options = RegistrationVerificationOptions::<String, String> {
            allowed_origins: &origins,
            error_on_unsolicited_extensions: false,
            ..RegistrationVerificationOptions::default()
        };
        let credential = server
            .verify(&self.rp_id, &answer.0, &options)
            .map_err(|e| RpError::Refused(e.to_string()))?;
        Ok(NewCredential {
            credential_id: credential.id().into_inner().to_vec(),
            static_state: credential.static_state().encode().map_err(internal)?,
            dynamic_state: credential
                .dynamic_state()
                .encode()
                .map_err(internal)?
                .to_vec(),
        })
    }

    /// Starts a sign-in with any passkey the browser has for this site.
    ///
    /// # Errors
    /// [`RpError::Internal`] if the options cannot be made.
    pub fn start_sign_in(&self) -> Result<Started, RpError> {
        let (server, client) = DiscoverableCredentialRequestOptions::passkey(&self.rp_id)
            .start_ceremony()
            .map_err(internal)?;
        Ok(Started {
            challenge: server.sent_challenge().0,
            server_state: server.encode().map_err(internal)?,
            options: to_json(&client)?,
        })
    }

    /// Checks a sign-in answer against the stored state of its ceremony and the stored
    /// credential (whose user handle must be the one the authenticator returned). Returns the
    /// credential's new dynamic state (counter and flags) to store.
    ///
    /// # Errors
    /// [`RpError::Refused`] for an answer that fails a check (a counter that did not move
    /// forward among them); [`RpError::Internal`] for stored state that cannot be read.
    pub fn finish_sign_in(
        &self,
        server_state: &[u8],
        answer: &SignInAnswer,
        static_state: &[u8],
        dynamic_state: &[u8],
        user_handle: &[u8],
    ) -> Result<Vec<u8>, RpError> {
        let server =
            DiscoverableAuthenticationServerState::decode(server_state).map_err(internal)?;
        let handle: [u8; 64] = user_handle.try_into().map_err(internal)?;
        let handle = UserHandle64::decode(handle).map_err(internal)?;
        let static_state =
            StaticState::<CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>>::decode(
                static_state,
            )
            .map_err(internal)?;
        let dynamic: [u8; 7] = dynamic_state.try_into().map_err(internal)?;
        let dynamic_state = DynamicState::decode(dynamic).map_err(internal)?;
        let mut credential =
            AuthenticatedCredential::new(answer.0.raw_id(), &handle, static_state, dynamic_state)
                .map_err(internal)?;
        let origins = [self.origin.clone()];
        let options = AuthenticationVerificationOptions::<String, String> {
            allowed_origins: &origins,
            error_on_unsolicited_extensions: false,
            ..AuthenticationVerificationOptions::default()
        };
        server
            .verify(&self.rp_id, &answer.0, &mut credential, &options)
            .map_err(|e| RpError::Refused(e.to_string()))?;
        Ok(credential
            .dynamic_state()
            .encode()
            .map_err(internal)?
            .to_vec())
    }
}
