//! `latchkey users …` and `latchkey keys …`: operating on the identity part from a shell.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use clap::Subcommand;
use latchkey_identity::Identity;
use latchkey_identity::flows::admin::{AdminError, CreateUser};
use latchkey_identity::passwords::{Password, PasswordHasher};
use latchkey_identity::users::{ListQuery, OrderBy, UserRecord};

use super::{EXIT_FAILURE, fail};
use crate::Config;
use crate::startup::{self, StartError};
use latchkey_identity::flows::account;
use latchkey_identity::flows::admin;
use latchkey_identity::flows::operators;
use latchkey_identity::sessions::lifecycle;

/// Exit status when the thing asked about does not exist.
const EXIT_NOT_FOUND: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List accounts, newest first
    List {
        /// Print Clerk's User JSON objects as an array
        #[arg(long)]
        json: bool,
        /// Only accounts whose id, email, name or username contain this text
        #[arg(long)]
        query: Option<String>,
        /// How many accounts, 1 to 500
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one account by id or email address
    Show {
        /// `user_…` or an email address
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Create an account (its email counts as verified)
    Create {
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input (one line)
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete an account and end its sessions
    Delete {
        user: String,
        /// Required: deleting cannot be undone
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Ban an account: it cannot sign in and its sessions end
    Ban {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Lift a ban
    Unban {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// End every session of an account
    RevokeSessions {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Let an account use the operators' console at /admin (only ever granted here)
    GrantOperator { user: String },
    /// Take the operator role away
    RevokeOperator { user: String },
    /// Remove an account's second factors (authenticator app, backup codes), for a person
    /// locked out of them; emits `user.updated`
    ResetMfa {
        user: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new session-token signing key: published at once, signing after 60 s (when every
    /// instance has it); the old one stays published until its tokens expired
    Rotate {
        /// Sign with the new key at once (a single instance, or a leaked key); other instances
        /// refuse its tokens until their next key reload (up to 30 s)
        #[arg(long)]
        now: bool,
    },
    /// Make a new management API secret key (`sk_live_…`) and print it; it is shown only once
    SecretKey,
    /// List the management API secret keys (their first characters, never the keys)
    ListSecretKeys {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a management API secret key by id (`key_…`); servers stop accepting it within 30 s
    RevokeSecretKey { id: String },
}

/// Prints a management API secret key with what it is for. Standard output only: never logged.
pub(crate) fn announce_secret_key(key: &str, which: &str) {
    print(&format!(
        "{which} management API secret key (shown once; use it as `Authorization: Bearer <key>`):\n  {key}"
    ));
}

/// The identity part, for a command that does not serve.
pub(crate) async fn identity_for_command(config: &Config) -> Result<Identity, StartError> {
    let master = startup::master_key(config)?;
    let db = startup::prepare_database(config).await?;
    let public_url = config.public_url.clone().unwrap_or_else(|| {
        url::Url::parse(&format!("http://{}", config.addr)).expect("an address forms a URL")
    });
    let mut identity_config = latchkey_identity::IdentityConfig::new(public_url);
    identity_config.trust_forwarded_for = config.trust_forwarded_for;
    identity_config.webhook_allow_private_networks = config.webhook_allow_private_networks;
    Ok(Identity::new(db, identity_config, &master, PasswordHasher::new(1)?).await?)
}

fn print(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            print(&text);
            ExitCode::SUCCESS
        }
        Err(error) => fail(EXIT_FAILURE, &error),
    }
}

fn one_line(user: &UserRecord) -> String {
    format!(
        "{}  {}  {}{}",
        user.id,
        user.primary_email()
            .map_or("-", |e| e.email_address.as_str()),
        user.display_name(),
        if user.banned_at.is_some() {
            "  (banned)"
        } else {
            ""
        }
    )
}

async fn show(identity: &Identity, user: &UserRecord, json: bool) -> ExitCode {
    if json {
        match admin::user_json(identity, user).await {
            Ok(value) => print_json(&value),
            Err(error) => fail(EXIT_FAILURE, &error),
        }
    } else {
        print(&one_line(user));
        ExitCode::SUCCESS
    }
}

async fn lookup(identity: &Identity, key: &str) -> Result<UserRecord, ExitCode> {
    match admin::find_user(identity, key).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => {
            let _ = writeln!(std::io::stderr().lock(), "latchkey: no user {key}");
            Err(ExitCode::from(EXIT_NOT_FOUND))
        }
        Err(error) => Err(fail(EXIT_FAILURE, &error)),
    }
}

fn admin_failure(error: &AdminError) -> ExitCode {
    fail(
        if matches!(error, AdminError::NotFound) {
            EXIT_NOT_FOUND
        } else {
            EXIT_FAILURE
        },
        error,
    )
}

pub async fn run_users(command: UsersCommand, config: &Config) -> ExitCode {
    let identity = match identity_for_command(config).await {
        Ok(identity) => identity,
        Err(error) => return fail(EXIT_FAILURE, &error),
    };
    let code = match command {
        UsersCommand::List { json, query, limit } => {
            let list = ListQuery {
                limit: limit.clamp(1, 500),
                order_by: OrderBy::CreatedDesc,
                text: query,
                ..ListQuery::default()
            };
            let listed = async {
                let mut tx = identity.db().begin_read().await?;
                let users = latchkey_identity::users::list(&mut tx, &list).await?;
                tx.commit().await?;
                Ok::<_, latchkey_store::StoreError>(users)
            }
            .await;
            match listed {
                Ok(users) if json => {
                    let mut values = Vec::new();
                    for user in &users {
                        match admin::user_json(&identity, user).await {
                            Ok(value) => values.push(value),
                            Err(error) => return fail(EXIT_FAILURE, &error),
                        }
                    }
                    print_json(&values)
                }
                Ok(users) => {
                    for user in &users {
                        print(&one_line(user));
                    }
                    print(&format!("{} users", users.len()));
                    ExitCode::SUCCESS
                }
                Err(error) => fail(EXIT_FAILURE, &error),
            }
        }
        UsersCommand::Show { user, json } => match lookup(&identity, &user).await {
            Ok(user) => show(&identity, &user, json).await,
            Err(code) => code,
        },
        UsersCommand::Create {
            email,
            password_stdin,
            first_name,
            last_name,
            username,
            json,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                if let Err(error) = std::io::stdin().read_to_string(&mut line) {
                    return fail(EXIT_FAILURE, &error);
                }
                Some(Password::new(
                    line.trim_end_matches(['\n', '\r']).to_owned(),
                ))
            } else {
                None
            };
            let create = CreateUser {
                email_address: email,
                password,
                first_name,
                last_name,
                username,
                ..CreateUser::default()
            };
            match admin::create_user(&identity, create).await {
                Ok(user) => show(&identity, &user, json).await,
                Err(error) => admin_failure(&error),
            }
        }
        UsersCommand::Delete { user, yes, json } => {
            if !yes {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "latchkey: deleting cannot be undone; add --yes to confirm"
                );
                return ExitCode::from(super::EXIT_CONFIG);
            }
            let user = match lookup(&identity, &user).await {
                Ok(user) => user,
                Err(code) => return code,
            };
            match account::delete_account(&identity, &user.id).await {
                Ok(()) if json => print_json(
                    &serde_json::json!({"object": "user", "id": user.id, "deleted": true}),
                ),
                Ok(()) => {
                    print(&format!("deleted {}", user.id));
                    ExitCode::SUCCESS
                }
                Err(error) => admin_failure(&error.into()),
            }
        }
        UsersCommand::Ban { user, json } => ban(&identity, &user, true, json).await,
        UsersCommand::Unban { user, json } => ban(&identity, &user, false, json).await,
        UsersCommand::RevokeSessions { user, json } => {
            let user = match lookup(&identity, &user).await {
                Ok(user) => user,
                Err(code) => return code,
            };
            match lifecycle::revoke_other_sessions(&identity, &user.id, None).await {
                Ok(count) if json => {
                    print_json(&serde_json::json!({"user_id": user.id, "revoked_sessions": count}))
                }
                Ok(count) => {
                    print(&format!("revoked {count} sessions of {}", user.id));
                    ExitCode::SUCCESS
                }
                Err(error) => fail(EXIT_FAILURE, &error),
            }
        }
        UsersCommand::GrantOperator { user } => set_operator(&identity, &user, true).await,
        UsersCommand::RevokeOperator { user } => set_operator(&identity, &user, false).await,
        UsersCommand::ResetMfa { user, json } => {
            let user = match lookup(&identity, &user).await {
                Ok(user) => user,
                Err(code) => return code,
            };
            match admin::reset_mfa(&identity, &user.id).await {
                Ok(removed) if json => {
                    print_json(&serde_json::json!({"user_id": user.id, "removed": removed}))
                }
                Ok(true) => {
                    print(&format!("removed the second factors of {}", user.id));
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    print(&format!("{} had no second factor", user.id));
                    ExitCode::SUCCESS
                }
                Err(error) => admin_failure(&error),
            }
        }
    };
    identity.db().close().await;
    code
}

async fn set_operator(identity: &Identity, key: &str, operator: bool) -> ExitCode {
    let user = match lookup(identity, key).await {
        Ok(user) => user,
        Err(code) => return code,
    };
    match operators::set_operator(identity, &user.id, operator).await {
        Ok(changed) => {
            let state = match (operator, changed) {
                (true, true) => "is now an operator",
                (true, false) => "was already an operator",
                (false, true) => "is no longer an operator",
                (false, false) => "was not an operator",
            };
            print(&format!("{} {state}", user.id));
            ExitCode::SUCCESS
        }
        Err(error) => admin_failure(&error),
    }
}

async fn ban(identity: &Identity, key: &str, banned: bool, json: bool) -> ExitCode {
    let user = match lookup(identity, key).await {
        Ok(user) => user,
        Err(code) => return code,
    };
    match admin::set_banned(identity, &user.id, banned).await {
        Ok(user) => show(identity, &user, json).await,
        Err(error) => admin_failure(&error),
    }
}

pub async fn run_keys(command: KeysCommand, config: &Config) -> ExitCode {
    match command {
        KeysCommand::SecretKey => {
            with_identity(config, async |identity| {
                let key = latchkey_identity::secret_keys::create_secret_key(identity).await?;
                announce_secret_key(&key, "a new");
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        KeysCommand::ListSecretKeys { json } => {
            with_db(config, async |db| {
                let keys = latchkey_identity::secret_keys::list_secret_keys(db).await?;
                if json {
                    return Ok(print_json(&keys));
                }
                for key in keys {
                    let state = match key.revoked_at {
                        Some(at) => format!("revoked {}", latchkey_web::time::format_utc(at).1),
                        None => "active".to_owned(),
                    };
                    print(&format!(
                        "{}  {}…  created {}  {state}",
                        key.id,
                        key.prefix,
                        latchkey_web::time::format_utc(key.created_at).1
                    ));
                }
                Ok(ExitCode::SUCCESS)
            })
            .await
        }
        KeysCommand::RevokeSecretKey { id } => {
            with_identity(config, async |identity| {
                if latchkey_identity::secret_keys::revoke_secret_key(identity, &id).await? {
                    print(&format!(
                        "revoked {id}; servers stop accepting it within {} s",
                        latchkey_identity::secret_keys::CACHE_TTL.as_secs()
                    ));
                    Ok(ExitCode::SUCCESS)
                } else {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "latchkey: no active secret key {id}"
                    );
                    Ok(ExitCode::from(EXIT_NOT_FOUND))
                }
            })
            .await
        }
        KeysCommand::Rotate { now } => {
            let master = match startup::master_key(config) {
                Ok(master) => master,
                Err(error) => return fail(EXIT_FAILURE, &error),
            };
            let db = match startup::prepare_database(config).await {
                Ok(db) => db,
                Err(error) => return fail(EXIT_FAILURE, &error),
            };
            let sign_after = if now {
                std::time::Duration::ZERO
            } else {
                latchkey_identity::keys::SIGN_AFTER_PUBLISHED
            };
            let result = latchkey_identity::keys::rotate(&db, &master, sign_after).await;
            db.close().await;
            match result {
                Ok(kid) => {
                    print(&format!(
                        "new signing key {kid}, published now; running servers sign with it within {} s, and the old key stays published for {} minutes",
                        sign_after.as_secs() + latchkey_identity::keys::RELOAD_EVERY.as_secs(),
                        latchkey_identity::keys::PUBLISHED_AFTER_RETIREMENT_MS / 60_000
                    ));
                    ExitCode::SUCCESS
                }
                Err(error) => fail(EXIT_FAILURE, &error),
            }
        }
    }
}

/// Runs `work` with the identity part, then closes its database.
async fn with_identity(
    config: &Config,
    work: impl AsyncFnOnce(&Identity) -> Result<ExitCode, latchkey_store::StoreError>,
) -> ExitCode {
    let identity = match identity_for_command(config).await {
        Ok(identity) => identity,
        Err(error) => return fail(EXIT_FAILURE, &error),
    };
    let result = work(&identity).await;
    identity.db().close().await;
    result.unwrap_or_else(|error| fail(EXIT_FAILURE, &error))
}

/// Runs `work` on the prepared database, then closes it.
async fn with_db(
    config: &Config,
    work: impl AsyncFnOnce(&latchkey_store::Db) -> Result<ExitCode, latchkey_store::StoreError>,
) -> ExitCode {
    let db = match startup::prepare_database(config).await {
        Ok(db) => db,
        Err(error) => return fail(EXIT_FAILURE, &error),
    };
    let result = work(&db).await;
    db.close().await;
    result.unwrap_or_else(|error| fail(EXIT_FAILURE, &error))
}
