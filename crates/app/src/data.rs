//! The app's own data about its users: preferences and notes. Every function is scoped to one
//! user's id, so a handler cannot read or change another user's rows by passing a foreign id.

use latchkey_store::{Db, DbRow, RowExt as _, StoreError, Tx};
use serde::Serialize;

pub const NOTE_PREFIX: &str = "note";

/// How a user wants the app to look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preferences {
    pub theme: Theme,
    pub locale: String,
    pub time_zone: String,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            theme: Theme::System,
            locale: "en-US".to_owned(),
            time_zone: "UTC".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    System,
}

impl Theme {
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "light" => Some(Self::Light),
            "dark" => Some(Self::Dark),
            "system" => Some(Self::System),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Dark => "dark",
            Self::System => "system",
        }
    }
}

/// Locales the settings page offers.
pub const LOCALES: &[(&str, &str)] = &[
    ("en-US", "English (United States)"),
    ("en-GB", "English (United Kingdom)"),
    ("de-DE", "Deutsch"),
    ("es-ES", "Español"),
    ("fr-FR", "Français"),
    ("it-IT", "Italiano"),
    ("ja-JP", "日本語"),
    ("pt-BR", "Português (Brasil)"),
];

/// A time zone name as the IANA database spells them (`Europe/Paris`, `UTC`): checked for
/// shape, since the app only displays it.
#[must_use]
pub fn valid_time_zone(text: &str) -> bool {
    text == "UTC"
        || (text.len() <= 64
            && text.contains('/')
            && !text.starts_with('/')
            && !text.ends_with('/')
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+')))
}

/// The user's preferences, or the defaults.
///
/// # Errors
/// Database failures.
pub async fn preferences(tx: &mut Tx, user_id: &str) -> Result<Preferences, StoreError> {
    let q = tx
        .query("SELECT theme, locale, time_zone FROM app_preferences WHERE user_id = $1")
        .bind(user_id);
    match tx.fetch_optional(q).await? {
        Some(row) => preferences_from(&row),
        None => Ok(Preferences::default()),
    }
}

/// Preferences from a row with `theme`, `locale` and `time_zone`, the defaults where null.
fn preferences_from(row: &DbRow) -> Result<Preferences, StoreError> {
    let defaults = Preferences::default();
    Ok(Preferences {
        theme: row
            .col::<Option<String>>("theme")?
            .and_then(|theme| Theme::parse(&theme))
            .unwrap_or(defaults.theme),
        locale: row
            .col::<Option<String>>("locale")?
            .unwrap_or(defaults.locale),
        time_zone: row
            .col::<Option<String>>("time_zone")?
            .unwrap_or(defaults.time_zone),
    })
}

/// The user's preferences and how many notes they have, in one statement (one consistent
/// read, one round trip): what `GET /api/me` answers on every request.
///
/// # Errors
/// Database failures.
pub async fn summary(db: &Db, user_id: &str) -> Result<(Preferences, i64), StoreError> {
    let read = db.read_one().await?;
    let q = read
        .query(
            "SELECT p.theme, p.locale, p.time_zone, \
                 (SELECT count(*) FROM app_notes WHERE user_id = $1) AS note_count \
             FROM (SELECT 1 AS one) AS one LEFT JOIN app_preferences p ON p.user_id = $1",
        )
        .bind(user_id);
    let row = read.fetch_one(q).await?;
    Ok((preferences_from(&row)?, row.col("note_count")?))
}

/// Stores the user's preferences.
///
/// # Errors
/// Database failures.
pub async fn save_preferences(
    tx: &mut Tx,
    user_id: &str,
    preferences: &Preferences,
    now: i64,
) -> Result<(), StoreError> {
    let q = tx
        .query(
            "INSERT INTO app_preferences (user_id, theme, locale, time_zone, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET theme = excluded.theme, locale = excluded.locale, \
                 time_zone = excluded.time_zone, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(preferences.theme.as_str())
        .bind(&preferences.locale)
        .bind(&preferences.time_zone)
        .bind(now);
    tx.execute(q).await?;
    Ok(())
}

/// A note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Note {
    pub id: String,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn note_from(row: &DbRow) -> Result<Note, StoreError> {
    row.decode()
}

/// The user's notes, newest first.
///
/// # Errors
/// Database failures.
pub async fn notes(tx: &mut Tx, user_id: &str) -> Result<Vec<Note>, StoreError> {
    let q = tx
        .query("SELECT id, title, body, created_at, updated_at FROM app_notes WHERE user_id = $1 ORDER BY created_at DESC, id DESC")
        .bind(user_id);
    tx.fetch_all(q).await?.iter().map(note_from).collect()
}

/// One of the user's notes.
///
/// # Errors
/// Database failures.
pub async fn note(tx: &mut Tx, user_id: &str, id: &str) -> Result<Option<Note>, StoreError> {
    let q = tx
        .query("SELECT id, title, body, created_at, updated_at FROM app_notes WHERE user_id = $1 AND id = $2")
        .bind(user_id)
        .bind(id);
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(note_from)
        .transpose()
}

/// How many notes the user has.
///
/// # Errors
/// Database failures.
pub async fn note_count(tx: &mut Tx, user_id: &str) -> Result<i64, StoreError> {
    let q = tx
        .query("SELECT count(*) AS n FROM app_notes WHERE user_id = $1")
        .bind(user_id);
    tx.fetch_one(q).await?.col("n")
}

/// Adds a note.
///
/// # Errors
/// Database failures.
pub async fn create_note(
    tx: &mut Tx,
    user_id: &str,
    title: &str,
    body: &str,
    now: i64,
) -> Result<Note, StoreError> {
    let id = latchkey_protocol::id::new_id(NOTE_PREFIX);
    let q = tx
        .query("INSERT INTO app_notes (id, user_id, title, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
        .bind(&id)
        .bind(user_id)
        .bind(title)
        .bind(body)
        .bind(now);
    tx.execute(q).await?;
    Ok(Note {
        id,
        title: title.to_owned(),
        body: body.to_owned(),
        created_at: now,
        updated_at: now,
    })
}

/// Changes one of the user's notes; `false` if it is not theirs or does not exist.
///
/// # Errors
/// Database failures.
pub async fn update_note(
    tx: &mut Tx,
    user_id: &str,
    id: &str,
    title: &str,
    body: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query("UPDATE app_notes SET title = $3, body = $4, updated_at = $5 WHERE user_id = $1 AND id = $2")
        .bind(user_id)
        .bind(id)
        .bind(title)
        .bind(body)
        .bind(now);
    Ok(tx.execute(q).await? > 0)
}

/// Deletes one of the user's notes; `false` if it is not theirs or does not exist.
///
/// # Errors
/// Database failures.
pub async fn delete_note(tx: &mut Tx, user_id: &str, id: &str) -> Result<bool, StoreError> {
    let q = tx
        .query("DELETE FROM app_notes WHERE user_id = $1 AND id = $2")
        .bind(user_id)
        .bind(id);
    Ok(tx.execute(q).await? > 0)
}

/// Deletes everything the app holds for a user (called with the tombstone, same transaction).
///
/// # Errors
/// Database failures.
pub async fn delete_all_for(tx: &mut Tx, user_id: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM app_notes WHERE user_id = $1",
        "DELETE FROM app_preferences WHERE user_id = $1",
    ] {
        let q = tx.query(sql).bind(user_id);
        tx.execute(q).await?;
    }
    Ok(())
}
