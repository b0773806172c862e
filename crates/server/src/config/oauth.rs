//! Social sign-in providers from their settings: Google, Microsoft and GitHub when their
//! client id and secret are given, and one generic OpenID Connect provider when its id, issuer, client
//! id and secret are. A half-configured provider stops the start with one line naming what is
//! missing, rather than showing a button that cannot work.

use latchkey_identity::oauth::{ClientSecret, ProviderSettings};

use super::settings::{self, Optional};
use super::{ConfigError, Origin, Secret, Sources};

/// Every configured provider, in button order: Google, Microsoft, GitHub, the custom one.
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
    if let Some((id, secret)) = client(
        sources,
        &settings::OAUTH_GITHUB_CLIENT_ID,
        &settings::OAUTH_GITHUB_CLIENT_SECRET,
    )? {
        let base = sources.value(&settings::OAUTH_GITHUB_BASE_URL)?;
        let api = sources.value(&settings::OAUTH_GITHUB_API_URL)?;
        providers.push(ProviderSettings::github(base, api, id, secret));
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
            providers.push(ProviderSettings::custom(
                &custom_id, name, issuer, id, secret,
            ));
        }
        (None, None, None) if name.is_none() => {}
        (custom_id, issuer, client) => {
            let missing = [
                (custom_id.is_none(), &settings::OAUTH_CUSTOM_ID.setting),
                (issuer.is_none(), &settings::OAUTH_CUSTOM_ISSUER.setting),
                (client.is_none(), &settings::OAUTH_CUSTOM_CLIENT_ID.setting),
            ];
            let (_, setting) = missing
                .iter()
                .find(|(absent, _)| *absent)
                .copied()
                .unwrap_or((true, &settings::OAUTH_CUSTOM_ID.setting));
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
            message: format!(
                "{} is set, so the client secret is needed too",
                id.setting.env
            ),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            origin: Origin::Default(id.setting.env),
            message: format!(
                "{} is set, so the client id is needed too",
                secret.setting.env
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::Config;
    use super::*;

    fn from_file(text: &str) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!(
            "latchkey-oauth-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latchkey.toml");
        std::fs::write(&path, text).unwrap();
        let mut sources = Sources::default();
        let loaded = sources.load_file(Some(&path));
        std::fs::remove_dir_all(&dir).unwrap();
        loaded?;
        Config::resolve(&sources)
    }

    #[test]
    fn provider_tables_in_the_file_are_the_flat_settings() {
        let config = from_file(
            "[oauth.google]\nclient_id = \"g-id\"\nclient_secret = \"g-secret\"\n\n\
             [oauth.custom]\nid = \"acme\"\nname = \"Acme SSO\"\n\
             issuer = \"https://sso.example.com/realms/main/\"\n\
             client_id = \"c-id\"\nclient_secret = \"c-secret\"\n",
        )
        .unwrap();
        let keys: Vec<(&str, &str)> = config
            .oauth
            .iter()
            .map(|p| (p.key.as_str(), p.name.as_str()))
            .collect();
        assert_eq!(keys, [("google", "Google"), ("custom_acme", "Acme SSO")]);
        assert_eq!(
            config.oauth[0].issuer.as_str(),
            "https://accounts.google.com/"
        );
        assert_eq!(
            config.oauth[1].issuer.as_str(),
            "https://sso.example.com/realms/main"
        );
        assert_eq!(config.oauth[1].clerk_provider(), "oauth_custom_acme");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("g-secret") && !shown.contains("c-secret"),
            "{shown}"
        );

        let err = from_file("[oauth.google]\nclient_idd = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("oauth_google_client_idd"), "{err}");
    }

    #[test]
    fn a_half_configured_provider_stops_the_start_without_showing_its_secret() {
        let env = |pairs: &[(&str, &str)]| Sources {
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            file_path: Some(PathBuf::from("latchkey.toml")),
            ..Sources::default()
        };
        let err = Config::resolve(&env(&[(
            "LATCHKEY_OAUTH_MICROSOFT_CLIENT_SECRET",
            "very-secret-value",
        )]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("LATCHKEY_OAUTH_MICROSOFT_CLIENT_ID"), "{err}");
        assert!(!err.contains("very-secret-value"), "{err}");

        let err = Config::resolve(&env(&[
            ("LATCHKEY_OAUTH_CUSTOM_ID", "acme"),
            ("LATCHKEY_OAUTH_CUSTOM_CLIENT_ID", "id"),
            ("LATCHKEY_OAUTH_CUSTOM_CLIENT_SECRET", "secret"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("LATCHKEY_OAUTH_CUSTOM_ISSUER"), "{err}");

        for (var, value) in [
            ("LATCHKEY_OAUTH_CUSTOM_ID", "Acme_1"),
            (
                "LATCHKEY_OAUTH_GOOGLE_BASE_URL",
                "http://accounts.example.com",
            ),
            (
                "LATCHKEY_OAUTH_GOOGLE_BASE_URL",
                "https://accounts.example.com/?x=1",
            ),
        ] {
            let err = Config::resolve(&env(&[
                (var, value),
                ("LATCHKEY_OAUTH_GOOGLE_CLIENT_ID", "id"),
                ("LATCHKEY_OAUTH_GOOGLE_CLIENT_SECRET", "secret"),
            ]))
            .unwrap_err()
            .to_string();
            assert!(err.starts_with(&format!("invalid {var}: ")), "{err}");
        }
    }
}
