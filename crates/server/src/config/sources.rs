//! The layers a setting's text may come from, and which one wins.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::settings::{ALL, Fixed, Optional, Setting};

/// Where a value came from, named the way the operator wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Env(&'static str),
    File { key: &'static str, path: PathBuf },
    Default(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => f.write_str(flag),
            Self::Env(var) => f.write_str(var),
            Self::File { key, path } => write!(f, "{key} in {}", path.display()),
            Self::Default(var) => write!(f, "default {var}"),
        }
    }
}

/// A setting that could not be used. Displays as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {origin}: {message}")]
    Invalid { origin: Origin, message: String },
    #[error("cannot read config file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// The raw layers before validation.
#[derive(Debug, Default)]
pub struct Sources {
    /// Flag values given on the command line, by setting key.
    pub flags: HashMap<&'static str, String>,
    /// Environment variables (injected, so tests need not touch the process environment).
    pub env: HashMap<String, String>,
    /// Values from the config file, and the file's path.
    pub file: HashMap<String, String>,
    pub file_path: Option<PathBuf>,
}

impl Sources {
    /// Reads the config file: `explicit` must exist; otherwise `latchkey.toml` in the working
    /// directory is used if present.
    ///
    /// # Errors
    /// If the file cannot be read, is not TOML, or names a setting that does not exist.
    pub fn load_file(&mut self, explicit: Option<&Path>) -> Result<(), ConfigError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => {
                let default = PathBuf::from("latchkey.toml");
                if !default.exists() {
                    return Ok(());
                }
                default
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.clone(),
                message: e.message().to_owned(),
            })?;
        for (key, value) in flatten_oauth(table) {
            if !ALL.iter().any(|s| s.key == key) {
                return Err(ConfigError::File {
                    path,
                    message: format!("unknown setting \"{key}\""),
                });
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError::File {
                        path,
                        message: format!(
                            "{key} must be a string, number or boolean, not {}",
                            other.type_str()
                        ),
                    });
                }
            };
            self.file.insert(key, text);
        }
        self.file_path = Some(path);
        Ok(())
    }

    /// The winning text of `setting` and where it came from: a flag, else a non-empty
    /// environment variable, else the file.
    #[must_use]
    pub fn get(&self, setting: &Setting) -> Option<(String, Origin)> {
        if let Some(value) = self.flags.get(setting.key) {
            return Some((value.clone(), Origin::Flag(setting.flag)));
        }
        if let Some(value) = self.env.get(setting.env).filter(|v| !v.is_empty()) {
            return Some((value.clone(), Origin::Env(setting.env)));
        }
        self.file.get(setting.key).map(|value| {
            (
                value.clone(),
                Origin::File {
                    key: setting.key,
                    path: self.file_path.clone().unwrap_or_default(),
                },
            )
        })
    }

    /// The value of `setting`: the given one, else its declared default.
    ///
    /// # Errors
    /// The parser's message, attributed to where the value came from.
    pub fn value<T>(&self, setting: &Fixed<T>) -> Result<T, ConfigError> {
        match self.parse(&setting.setting, setting.parse)? {
            Some(value) => Ok(value),
            None => (setting.parse)(setting.default).map_err(|message| ConfigError::Invalid {
                origin: Origin::Default(setting.setting.env),
                message,
            }),
        }
    }

    /// The value of `setting` if any layer gives it.
    ///
    /// # Errors
    /// The parser's message, attributed to where the value came from.
    pub fn given<T>(&self, setting: &Optional<T>) -> Result<Option<T>, ConfigError> {
        self.parse(&setting.setting, setting.parse)
    }

    fn parse<T>(
        &self,
        setting: &Setting,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(setting) {
            None => Ok(None),
            Some((raw, origin)) => parse(raw.trim())
                .map(Some)
                .map_err(|message| ConfigError::Invalid { origin, message }),
        }
    }
}

/// `[oauth.google] client_id = …` (and `[oauth.custom] …`) as the flat keys the settings
/// declare (`oauth_google_client_id`); every other entry as it is.
fn flatten_oauth(table: toml::Table) -> Vec<(String, toml::Value)> {
    let mut flat = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(providers) if key == "oauth" => {
                for (provider, value) in providers {
                    match value {
                        toml::Value::Table(entries) => flat.extend(
                            entries
                                .into_iter()
                                .map(|(name, value)| (format!("oauth_{provider}_{name}"), value)),
                        ),
                        other => flat.push((format!("oauth_{provider}"), other)),
                    }
                }
            }
            other => flat.push((key, other)),
        }
    }
    flat
}
