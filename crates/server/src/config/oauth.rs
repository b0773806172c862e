//! Social sign-in providers from their settings: Google and Microsoft when their client id
//! and secret are given, and one generic OpenID Connect provider when its id, issuer, client
//! id and secret are. A half-configured provider stops the start with one line naming what is
//! missing, rather than showing a button that cannot work.

use latchkey_identity::oauth::{ClientSecret, ProviderSettings};

use super::settings::{self, Optional};
use super::{ConfigError, Origin, Secret, Sources};

/// Every configured provider, in button order: Google, Microsoft, the custom one.
///
/// # Errors
/// A provider with some of its settings but not all, or a value that does not parse.
pub(super) fn providers(sources: &Sources) -> Result<Vec<ProviderSettings>, ConfigError> {
    let mut providers = Vec::new();
    if let Some((id, secret)) = client(
        sources,
        &settings::OAUTH_GOOGLE_CLIENT_ID,
        &settings::OAUTH_GOOGLE_CLIENT_SECRET,
    )? {
        let issuer = sources.value(&settings::OAUTH_GOOGLE_BASE_URL)?;
        providers.push(ProviderSettings::google(issuer, id, secret));
    }
    if let Some((id, secret)) = client(
        sources,
        &settings::OAUTH_MICROSOFT_CLIENT_ID,
        &settings::OAUTH_MICROSOFT_CLIENT_SECRET,
    )? {
        let issuer = sources.value(&settings::OAUTH_MICROSOFT_BASE_URL)?;
        providers.push(ProviderSettings::microsoft(issuer, id, secret));
    }
    let custom_id = sources.given(&settings::OAUTH_CUSTOM_ID)?;
    let issuer = sources.given(&settings::OAUTH_CUSTOM_ISSUER)?;
    let name = sources.given(&settings::OAUTH_CUSTOM_NAME)?;
    let client = client(
        sources,
        &settings::OAUTH_CUSTOM_CLIENT_ID,
        &settings::OAUTH_CUSTOM_CLIENT_SECRET,
    )?;
    match (custom_id, issuer, client) {
        (Some(custom_id), Some(issuer), Some((id, secret))) => {
            let name = name.unwrap_or_else(|| custom_id.clone());
            providers.push(ProviderSettings::custom(&custom_id, name, issuer, id, secret));
        }
        (None, None, None) if name.is_none() => {}
        (custom_id, issuer, client) => {
            let missing = [
                (custom_id.is_none(), &settings::OAUTH_CUSTOM_ID.setting),
                (issuer.is_none(), &settings::OAUTH_CUSTOM_ISSUER.setting),
                (client.is_none(), &settings::OAUTH_CUSTOM_CLIENT_ID.setting),
            ];
            let (_, setting) = missing.iter().find(|(absent, _)| *absent).copied().unwrap_or((
                true,
                &settings::OAUTH_CUSTOM_ID.setting,
            ));
            return Err(ConfigError::Invalid {
                origin: Origin::Default(setting.env),
                message: "a custom OpenID Connect provider needs its id, issuer, client id and client secret".to_owned(),
            });
        }
    }
    Ok(providers)
}

/// A client id and secret given together, or neither.
fn client(
    sources: &Sources,
    id: &Optional<String>,
    secret: &Optional<Secret>,
) -> Result<Option<(String, ClientSecret)>, ConfigError> {
    match (sources.given(id)?, sources.given(secret)?) {
        (Some(id), Some(secret)) => Ok(Some((id, ClientSecret::new(secret.0)))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Invalid {
            origin: Origin::Default(secret.setting.env),
            message: format!("{} is set, so the client secret is needed too", id.setting.env),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            origin: Origin::Default(id.setting.env),
            message: format!("{} is set, so the client id is needed too", secret.setting.env),
        }),
    }
}
