//! The settings on the command line and in the environment.
//!
//! The flags are built from the settings' declarations ([`crate::config::settings`]) and read
//! back through the same list, so every setting has a flag and no flag is parsed and then
//! ignored.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, CommandFactory as _, FromArgMatches as _};

use super::Cli;
use crate::config::{self, ConfigError, Origin, Setting, Sources};

/// The variable naming the config file, like `--config`. Not a setting: the file cannot name
/// itself.
const CONFIG_ENV: &str = "LATCHKEY_CONFIG";

/// The whole command line: [`Cli`]'s commands and `--config`, and a global flag per setting.
#[must_use]
pub fn command() -> clap::Command {
    config::ALL
        .iter()
        .copied()
        .fold(Cli::command(), |command, setting| {
            command.arg(flag(setting))
        })
}

/// A setting's flag. Its value stays text until [`crate::config::Config::resolve`] validates
/// it, so an error names the setting the way it was given.
fn flag(setting: &'static Setting) -> Arg {
    Arg::new(setting.key)
        .long(setting.flag.trim_start_matches('-'))
        .value_name(setting.value_name)
        .help(setting.help_line())
        .action(ArgAction::Set)
        .global(true)
}

/// Parses `args` into the command and the settings given as flags, by key.
///
/// # Errors
/// A usage error, or the `--help` or `--version` text; [`clap::Error::exit`] shows either.
pub fn parse_from<I, T>(args: I) -> Result<(Cli, HashMap<&'static str, String>), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = command();
    let matches = command.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    let flags = config::ALL
        .iter()
        .filter_map(|setting| {
            let value = matches.get_one::<String>(setting.key)?;
            Some((setting.key, value.clone()))
        })
        .collect();
    Ok((cli, flags))
}

/// The flag and environment layers, and the config file to read: `--config`, else
/// `LATCHKEY_CONFIG`.
pub fn sources(
    config_flag: Option<PathBuf>,
    flags: HashMap<&'static str, String>,
    env: impl IntoIterator<Item = (String, String)>,
) -> (Option<PathBuf>, Sources) {
    let sources = Sources {
        flags,
        env: env.into_iter().collect(),
        ..Sources::default()
    };
    let config_file = config_flag.or_else(|| {
        sources
            .env
            .get(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    (config_file, sources)
}

/// The environment variables latchkey reads: every setting's, and the config file's path.
fn own_variables() -> impl Iterator<Item = &'static str> {
    config::ALL
        .iter()
        .map(|setting| setting.env)
        .chain([CONFIG_ENV])
}

/// The environment as text. A variable whose name or value is not UTF-8 (which
/// `std::env::vars` would panic on) is skipped, as it cannot concern latchkey; unless it is one
/// of latchkey's own, which is refused by name rather than taken as unset. The value is never
/// shown: it may be a secret.
///
/// # Errors
/// One of latchkey's own variables is not UTF-8.
pub fn utf8_environment(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut env = Vec::new();
    for (name, value) in vars {
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => env.push((name, value)),
            Err(_) => {
                if let Some(own) = own_variables().find(|own| *own == name) {
                    return Err(ConfigError::Invalid {
                        origin: Origin::Env(own),
                        message: "the value is not UTF-8 text".to_owned(),
                    });
                }
            }
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::settings::{CLERK_SECRET_KEY, CLERK_WEBHOOK_SIGNING_SECRET, Fallback};
    use crate::config::{ALL, Config};

    #[test]
    fn the_command_line_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn every_setting_has_a_flag_that_takes_effect() {
        for setting in ALL {
            for args in [
                vec!["latchkey", setting.flag, "value"],
                vec!["latchkey", "migrate", setting.flag, "value"],
            ] {
                let (_, flags) = parse_from(args.iter().copied())
                    .unwrap_or_else(|e| panic!("{} is not a flag: {e}", setting.flag));
                let (_, sources) = super::sources(None, flags, Vec::new());
                assert_eq!(
                    sources.get(setting),
                    Some(("value".to_owned(), Origin::Flag(setting.flag))),
                    "{args:?} is parsed but ignored",
                );
            }
        }
    }

    #[test]
    fn help_names_every_settings_flag_environment_variable_and_default() {
        // clap wraps lines to the terminal; compare with runs of whitespace as one space.
        let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let help = words(&command().render_long_help().to_string());
        for setting in ALL {
            let usage = format!("{} <{}>", setting.flag, setting.value_name);
            assert!(help.contains(&usage), "--help shows {usage}");
            let env = format!("[env: {}]", setting.env);
            assert!(help.contains(&env), "--help names {env}");
            let default = match setting.default {
                Fallback::Value(text) | Fallback::Derived(text) => text,
                Fallback::Absent => continue,
            };
            let line = words(&format!("[default: {default}] {env}"));
            assert!(help.contains(&line), "--help shows {line}");
        }
    }

    /// A valid value of each setting, unlike its default.
    fn sample(key: &str) -> &'static str {
        match key {
            "addr" => "127.0.0.1:4000",
            "metrics_addr" => "127.0.0.1:9464",
            "data_dir" => "/var/lib/latchkey-sample",
            "public_url" => "https://auth.example.com",
            "database_url" => "sqlite:///tmp/latchkey-sample.db",
            "direct_database_url" => "sqlite:///tmp/latchkey-sample-direct.db",
            "database_max_connections" => "4",
            "database_statement_timeout" => "2m",
            "database_acquire_timeout" => "750ms",
            "log_format" => "json",
            "clerk_webhook_signing_secret" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "secret" => "a master secret of at least 32 characters",
            "trust_forwarded_for" => "true",
            "sign_in_attempts_per_ip" => "7",
            "sign_ups_per_ip" => "3",
            "internal_webhook" => "false",
            "webhook_allow_private_networks" => "on",
            "webhook_retry_schedule" => "1s,2s",
            "webhook_timeout" => "3s",
            "app_name" => "Acme \"Notes\"",
            "authorized_parties" => "https://app.example.com,http://localhost:5173",
            "clerk_publishable_key" => "pk_test_Y2xlcmsuZXhhbXBsZS5jb20k",
            "clerk_secret_key" => "sk_test_0123456789",
            "clerk_jwt_key" => PUBLIC_PEM,
            "clerk_api_url" => "https://clerk.example.com",
            "clerk_sign_in_url" => "https://accounts.example.com/sign-in",
            "clerk_account_url" => "https://accounts.example.com/user",
            "identity_shadow" => "true",
            "audit_retention" => "90d",
            "smtp_url" => "smtps://user:pw@mail.example.com:465",
            "mail_from" => "Acme <no-reply@acme.example>",
            "mail_retry_schedule" => "1s,1m",
            "email_code_lifetime" => "2m",
            "reset_code_lifetime" => "1h",
            "header_timeout" => "5s",
            "idle_timeout" => "2m",
            "request_timeout" => "30s",
            "max_connections" => "64",
            "allowed_hosts" => "auth.example.com, other.example.com",
            "fapi_allowed_origins" => "https://app.example.com,http://localhost:3000",
            "frontend_api_host" => "clerk.example.com",
            "clerk_assets_dir" => "/var/lib/latchkey-clerk",
            "oauth_google_client_id"
            | "oauth_microsoft_client_id"
            | "oauth_github_client_id"
            | "oauth_custom_client_id" => "1234-sample.apps.example.com",
            "oauth_google_client_secret"
            | "oauth_microsoft_client_secret"
            | "oauth_github_client_secret"
            | "oauth_custom_client_secret" => "sample-client-secret",
            "oauth_google_base_url" | "oauth_microsoft_base_url" | "oauth_github_base_url" => {
                "https://accounts.example.com"
            }
            "oauth_github_api_url" => "https://api.github.example.com",
            "oauth_custom_id" => "acme",
            "oauth_custom_name" => "Acme SSO",
            "oauth_custom_issuer" => "https://sso.example.com/realms/acme",
            other => panic!("give the new setting {other} a sample value in this test"),
        }
    }

    /// An RSA-2048 public key in Clerk's "PEM Public Key" form.
    const PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxy5Jy2CHYDl4mn3ltp4u
PR7rJHIl+4gMBejLdXuw5bOJ3KUgqLqnud70AlaHCtLIV4rvqi6OZqaEjCFcpdn2
KK+M4kbtdyz4/l95z02tbGg/wTJf1svPEcSup8EEdFjX/f7h7kC8ccZanSFU0hf0
lzAPxJuXENhLLOJ9botjmHt8rO5bIZpOt1Z4iKSk3QxxciNBQlqnH69XP6zo/d+C
gGNuDtDnwBz/Y6yuYbK9jFjDZCDTd9ayubmuqmx5QiJb9c56FXUy8voHz6DE8Z0X
CAZmOPmOLr5wdii/EfefXAW52IsChTd2qefuPbRaa1hBTos7NyzhCboL5RoA6TNn
7wIDAQAB
-----END PUBLIC KEY-----";

    /// What a setting needs besides itself to take effect: Clerk's URLs apply in Clerk mode; a
    /// sign-in provider's settings apply with the rest of that provider's.
    fn companions(setting: &Setting) -> Vec<(String, String)> {
        if setting.key.starts_with("clerk_") && setting.key.ends_with("_url") {
            let key = &CLERK_SECRET_KEY.setting;
            return vec![(key.env.to_owned(), sample(key.key).to_owned())];
        }
        if setting.key == "identity_shadow" {
            return [
                &CLERK_SECRET_KEY.setting,
                &CLERK_WEBHOOK_SIGNING_SECRET.setting,
            ]
            .into_iter()
            .map(|key| (key.env.to_owned(), sample(key.key).to_owned()))
            .collect();
        }
        let group = [
            "oauth_google_",
            "oauth_microsoft_",
            "oauth_github_",
            "oauth_custom_",
        ]
        .into_iter()
        .find(|prefix| setting.key.starts_with(prefix));
        let Some(group) = group else {
            return Vec::new();
        };
        ALL.iter()
            .filter(|other| other.key.starts_with(group) && other.key != setting.key)
            .filter(|other| {
                !other.key.ends_with("_base_url")
                    && !other.key.ends_with("_api_url")
                    && other.key != "oauth_custom_name"
            })
            .map(|other| (other.env.to_owned(), sample(other.key).to_owned()))
            .collect()
    }

    /// `text` as a TOML basic string.
    fn toml_string(text: &str) -> String {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    }

    #[derive(Debug, Clone, Copy)]
    enum Layer {
        Flag,
        Env,
        File,
    }

    /// The layers as `latchkey` builds them, with `value` given for `setting` through `layer`
    /// only, and `env` in the environment.
    fn given(
        layer: Layer,
        setting: &Setting,
        value: &str,
        mut env: Vec<(String, String)>,
        dir: &Path,
    ) -> Sources {
        let file = dir.join("latchkey.toml");
        let mut args = vec!["latchkey".to_owned()];
        let mut text = String::new();
        match layer {
            // With `=`, a value that starts with `-` (a PEM key) is not taken for a flag.
            Layer::Flag => args.push(format!("{}={value}", setting.flag)),
            Layer::Env => env.push((setting.env.to_owned(), value.to_owned())),
            Layer::File => text = format!("{} = {}\n", setting.key, toml_string(value)),
        }
        std::fs::write(&file, text).unwrap();
        env.push((CONFIG_ENV.to_owned(), file.to_str().unwrap().to_owned()));
        let env = utf8_environment(env.into_iter().map(|(k, v)| (k.into(), v.into()))).unwrap();
        let (cli, flags) = parse_from(args).unwrap();
        let (config_file, mut sources) = super::sources(cli.config, flags, env);
        sources.load_file(config_file.as_deref()).unwrap();
        sources
    }

    /// Through the flag, the environment and the file, each setting's sample reaches
    /// `Sources::get` from that layer, and `Config::resolve` accepts it and comes out different.
    #[test]
    fn every_setting_is_reachable_through_every_layer_and_takes_effect() {
        let dir = std::env::temp_dir().join(format!("latchkey-layers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for setting in ALL {
            let value = sample(setting.key);
            let without = Sources {
                env: companions(setting).into_iter().collect(),
                ..Sources::default()
            };
            // A provider's id or secret alone does not resolve: the setting then takes effect
            // by completing it.
            let without = format!("{:?}", Config::resolve(&without).map_err(|e| e.to_string()));
            for layer in [Layer::Flag, Layer::Env, Layer::File] {
                let sources = given(layer, setting, value, companions(setting), &dir);
                let origin = match layer {
                    Layer::Flag => Origin::Flag(setting.flag),
                    Layer::Env => Origin::Env(setting.env),
                    Layer::File => Origin::File {
                        key: setting.key,
                        path: dir.join("latchkey.toml"),
                    },
                };
                assert_eq!(
                    sources.get(setting),
                    Some((value.to_owned(), origin)),
                    "{} through {layer:?}",
                    setting.key
                );
                let config = Config::resolve(&sources)
                    .unwrap_or_else(|e| panic!("{} through {layer:?}: {e}", setting.key));
                assert_ne!(
                    format!("{:?}", Ok::<_, String>(config)),
                    without,
                    "{} through {layer:?} changes nothing",
                    setting.key
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_utf8_variables_are_skipped_unless_they_are_latchkeys() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt as _;

        let bytes = |b: &[u8]| OsString::from_vec(b.to_vec());
        let env = super::utf8_environment([
            (bytes(b"JUNK"), bytes(b"\xff\xfe")),
            (bytes(b"JUNK_\xff"), bytes(b"x")),
            (bytes(b"LATCHKEY_ADDR"), bytes(b"127.0.0.1:1")),
            (bytes(b"LATCHKEY_NOT_A_SETTING"), bytes(b"\xff")),
        ])
        .unwrap();
        assert_eq!(
            env,
            [("LATCHKEY_ADDR".to_owned(), "127.0.0.1:1".to_owned())]
        );
        for own in ["LATCHKEY_SECRET", "DATABASE_URL", "LATCHKEY_CONFIG"] {
            let error = super::utf8_environment([(bytes(own.as_bytes()), bytes(b"s3cr\xfft"))])
                .unwrap_err()
                .to_string();
            assert_eq!(error, format!("invalid {own}: the value is not UTF-8 text"));
        }
    }
}
