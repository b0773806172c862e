//! Listing and counting accounts with the filters the management API and the CLI offer.

use latchkey_store::{Row as _, StoreError, Tx};

use super::{USER_COLUMNS, UserRecord, attach_children, user_from_row};

/// Sort order; Clerk's default is newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderBy {
    #[default]
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
}

impl OrderBy {
    /// Clerk's spelling: `-created_at`, `+created_at`, `created_at`, `-updated_at`, …
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "-created_at" => Some(Self::CreatedDesc),
            "created_at" | "+created_at" => Some(Self::CreatedAsc),
            "-updated_at" => Some(Self::UpdatedDesc),
            "updated_at" | "+updated_at" => Some(Self::UpdatedAsc),
            _ => None,
        }
    }

    fn sql(self) -> (&'static str, &'static str, &'static str) {
        // (ORDER BY, comparison for "after the cursor", cursor column)
        match self {
            Self::CreatedDesc => ("created_at DESC, id DESC", "<", "created_at"),
            Self::CreatedAsc => ("created_at ASC, id ASC", ">", "created_at"),
            Self::UpdatedDesc => ("updated_at DESC, id DESC", "<", "updated_at"),
            Self::UpdatedAsc => ("updated_at ASC, id ASC", ">", "updated_at"),
        }
    }

    /// Whether `starting_after` may be used with this order (Clerk: created_at orders only).
    #[must_use]
    pub fn allows_cursor(self) -> bool {
        matches!(self, Self::CreatedDesc | Self::CreatedAsc)
    }
}

/// Which accounts to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: u32,
    pub offset: u32,
    pub order_by: OrderBy,
    /// Only accounts after this id in the chosen order.
    pub starting_after: Option<String>,
    /// Only accounts with one of these email addresses (any case).
    pub email_addresses: Vec<String>,
    /// Only these ids.
    pub user_ids: Vec<String>,
    /// Only accounts whose id, email, names or username contain this text (any case).
    pub text: Option<String>,
    /// The operators' console's filters.
    pub console: ConsoleFilters,
}

/// What the operators' console can narrow a listing to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsoleFilters {
    /// Banned (`true`) or not.
    pub banned: Option<bool>,
    /// Only accounts with no verified address.
    pub unverified: bool,
    /// With a confirmed second factor (`true`) or without.
    pub second_factor: Option<bool>,
    /// Created at or after / before these times (Unix ms).
    pub created_from: Option<i64>,
    pub created_before: Option<i64>,
}

impl ConsoleFilters {
    /// The `WHERE` conditions; every value is a number or a constant, so nothing is bound.
    fn clauses(self) -> Vec<String> {
        let mut clauses = Vec::new();
        match self.banned {
            Some(true) => clauses.push("banned_at IS NOT NULL".to_owned()),
            Some(false) => clauses.push("banned_at IS NULL".to_owned()),
            None => {}
        }
        if self.unverified {
            clauses.push(
                "id NOT IN (SELECT user_id FROM identity_email_addresses \
                 WHERE verification_status = 'verified')"
                    .to_owned(),
            );
        }
        let with_factor =
            "id IN (SELECT user_id FROM identity_totp WHERE confirmed_at IS NOT NULL)";
        match self.second_factor {
            Some(true) => clauses.push(with_factor.to_owned()),
            Some(false) => clauses.push(format!("NOT {with_factor}")),
            None => {}
        }
        if let Some(from) = self.created_from {
            clauses.push(format!("created_at >= {from}"));
        }
        if let Some(before) = self.created_before {
            clauses.push(format!("created_at < {before}"));
        }
        clauses
    }
}

/// Builds the shared `WHERE` clause and its bound values (all text).
fn filters(query: &ListQuery, first_placeholder: usize) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    let mut next = first_placeholder;
    let mut placeholder = |values: &mut Vec<String>, value: String| {
        values.push(value);
        let p = format!("${next}");
        next += 1;
        p
    };
    if !query.email_addresses.is_empty() {
        let list: Vec<String> = query
            .email_addresses
            .iter()
            .map(|e| placeholder(&mut values, e.trim().to_lowercase()))
            .collect();
        clauses.push(format!(
            "id IN (SELECT user_id FROM identity_email_addresses WHERE email_normalized IN ({}))",
            list.join(", ")
        ));
    }
    if !query.user_ids.is_empty() {
        let list: Vec<String> = query
            .user_ids
            .iter()
            .map(|id| placeholder(&mut values, id.clone()))
            .collect();
        clauses.push(format!("id IN ({})", list.join(", ")));
    }
    if let Some(text) = query
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = placeholder(&mut values, format!("%{escaped}%"));
        clauses.push(format!(
            "(lower(id) LIKE {p} ESCAPE '\\' OR lower(coalesce(first_name, '')) LIKE {p} ESCAPE '\\' \
              OR lower(coalesce(last_name, '')) LIKE {p} ESCAPE '\\' \
              OR coalesce(username_normalized, '') LIKE {p} ESCAPE '\\' \
              OR id IN (SELECT user_id FROM identity_email_addresses WHERE email_normalized LIKE {p} ESCAPE '\\'))"
        ));
    }
    clauses.extend(query.console.clauses());
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (sql, values)
}

/// A page of accounts with their email addresses.
///
/// # Errors
/// Database failures. An unknown `starting_after` id yields an empty page.
pub async fn list(tx: &mut Tx, query: &ListQuery) -> Result<Vec<UserRecord>, StoreError> {
    let (order, comparison, cursor_column) = query.order_by.sql();
    let (mut where_sql, values) = filters(query, 1);
    let mut cursor_values = Vec::new();
    if let Some(cursor) = &query.starting_after {
        let a = values.len() + 1;
        let clause = format!(
            "({cursor_column}, id) {comparison} (SELECT {cursor_column}, id FROM identity_users WHERE id = ${a})"
        );
        where_sql = if where_sql.is_empty() {
            format!(" WHERE {clause}")
        } else {
            format!("{where_sql} AND {clause}")
        };
        cursor_values.push(cursor.clone());
    }
    let limit_at = values.len() + cursor_values.len() + 1;
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM identity_users{where_sql} ORDER BY {order} LIMIT ${limit_at} OFFSET ${}",
        limit_at + 1
    );
    let mut q = tx.query_owned(sql);
    for value in values.into_iter().chain(cursor_values) {
        q = q.bind(value);
    }
    q = q
        .bind(i64::from(query.limit.clamp(1, 500)))
        .bind(i64::from(query.offset));
    let rows = tx.fetch_all(q).await?;
    let mut users = rows
        .iter()
        .map(user_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    attach_children(tx, &mut users).await?;
    Ok(users)
}

/// How many accounts match (ignoring limit, offset and cursor).
///
/// # Errors
/// Database failures.
pub async fn count(tx: &mut Tx, query: &ListQuery) -> Result<i64, StoreError> {
    let (where_sql, values) = filters(query, 1);
    let mut q = tx.query_owned(format!(
        "SELECT count(*) AS n FROM identity_users{where_sql}"
    ));
    for value in values {
        q = q.bind(value);
    }
    Ok(tx.fetch_one(q).await?.try_get("n")?)
}
