//! What every app page shares: the header (app name; Sign in, or the user button with avatar or
//! initials and its menu) and the user's theme and language.

use http::HeaderMap;
use latchkey_store::StoreError;

use crate::AppState;
use crate::data::{self, Preferences, Theme};
use crate::session::CurrentUser;
use crate::users::AppUser;

/// The user button's contents.
pub(crate) struct UserButton {
    pub name: String,
    pub email: Option<String>,
    pub initials: String,
    pub image_url: Option<String>,
}

/// The layout's data.
pub(crate) struct Chrome {
    pub app_name: String,
    pub title: String,
    pub lang: String,
    /// `light` or `dark`; `None` follows the system.
    pub theme: Option<&'static str>,
    pub user: Option<UserButton>,
    pub csrf_token: String,
    pub sign_in_url: String,
    pub account_url: String,
    pub sign_out_path: Option<String>,
    /// Who is acting as the user (the session token's `act.sub`: an operator impersonating).
    pub impersonator: Option<String>,
    /// A CSRF cookie to set, if the browser had none.
    pub set_cookie: Option<String>,
}

/// "Ada Lovelace", or the username, or the email, or "Your account".
pub(crate) fn display_name(user: &AppUser) -> String {
    let full = [user.first_name.as_deref(), user.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !full.trim().is_empty() {
        return full;
    }
    user.username
        .clone()
        .or_else(|| user.email.clone())
        .unwrap_or_else(|| "Your account".to_owned())
}

fn initials(user: &AppUser) -> String {
    let from_names: String = [user.first_name.as_deref(), user.last_name.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|n| n.chars().next())
        .flat_map(char::to_uppercase)
        .collect();
    if !from_names.is_empty() {
        return from_names;
    }
    user.email
        .as_deref()
        .or(user.username.as_deref())
        .and_then(|s| s.chars().next())
        .map_or_else(|| "?".to_owned(), |c| c.to_uppercase().collect())
}

impl Chrome {
    /// The layout for a page titled `title`, for `current` (signed in or not).
    ///
    /// # Errors
    /// Database failures (reading the user's preferences).
    pub(crate) async fn build(
        state: &AppState,
        headers: &HeaderMap,
        title: &str,
        current: Option<&CurrentUser>,
    ) -> Result<(Self, Preferences), StoreError> {
        let preferences = match current {
            Some(current) => {
                let mut tx = state.db.begin_read().await?;
                let preferences = data::preferences(&mut tx, &current.user.id).await?;
                tx.commit().await?;
                preferences
            }
            None => Preferences::default(),
        };
        let issued = state.csrf.issue(headers);
        let config = &state.auth.verifier().config;
        let chrome = Self {
            app_name: state.app_name.to_string(),
            title: title.to_owned(),
            lang: preferences.locale.clone(),
            theme: match preferences.theme {
                Theme::System => None,
                other => Some(other.as_str()),
            },
            user: current.map(|c| UserButton {
                name: display_name(&c.user),
                email: c.user.email.clone(),
                initials: initials(&c.user),
                image_url: c
                    .user
                    .image_url
                    .clone()
                    .filter(|u| u.starts_with("https://")),
            }),
            csrf_token: issued.token,
            sign_in_url: config.sign_in_url.clone(),
            account_url: config.account_url.clone(),
            sign_out_path: config.sign_out_path.clone(),
            impersonator: current.and_then(|c| {
                c.claims
                    .extra
                    .get("act")
                    .and_then(|act| act.get("sub"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            }),
            set_cookie: issued.set_cookie,
        };
        Ok((chrome, preferences))
    }

    pub(crate) fn cookies(&self) -> Vec<String> {
        self.set_cookie.iter().cloned().collect()
    }
}
