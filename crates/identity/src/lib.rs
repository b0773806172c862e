//! latchkey's identity part: the role Clerk plays.
//!
//! It owns accounts, credentials, sessions, signing keys and the events it emits about them.
//! It never reads or writes the app's tables and does not depend on the app part: what the app
//! learns about identities, it learns through the protocol (events, tokens, the management API).

use latchkey_store::MigrationSet;

/// The identity part's schema changes, versions 2000 to 2999.
pub const MIGRATIONS: MigrationSet = &[];
