//! latchkey's app part: the role Next.js + Prisma play.
//!
//! It owns the app's own tables (`users` and what hangs off it) and keeps them in step with an
//! identity provider, latchkey's own or real Clerk, which it only knows through the protocol.
//! It does not depend on the identity part.

use latchkey_store::MigrationSet;

/// The app part's schema changes, versions 1000 to 1999.
pub const MIGRATIONS: MigrationSet = &[];
