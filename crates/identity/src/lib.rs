//! latchkey's identity part: the role Clerk plays.
//!
//! It owns accounts, credentials, sessions, signing keys and the events it emits about them.
//! It never reads or writes the app's tables and does not depend on the app part: what the app
//! learns about identities, it learns through the protocol (events, tokens, the management API).

pub mod audit;
pub mod background;
pub mod context;
pub mod cookie_token;
pub mod daily;
pub mod events;
pub mod flows;
pub mod keys;
pub mod lockout;
pub mod mail;
pub mod mfa;
pub mod oauth;
pub mod passkeys;
pub mod passwords;
pub mod secret_keys;
pub mod secrets;
pub mod sessions;
mod state;
pub mod stats;
pub mod throttle;
pub mod users;
pub mod verifications;
pub mod web;
pub mod webhooks;

use latchkey_store::{Migration, MigrationSet};

pub use sessions::token::SESSION_TOKEN_SECS;
pub use state::{FapiConfig, Identity, IdentityConfig};
pub use web::router;

/// The identity part's schema changes, versions 2000 to 2999.
pub const MIGRATIONS: MigrationSet = &[
    Migration::shared(
        2001,
        "identity users, emails, sessions, signing keys, throttles",
        include_str!("../migrations/2001_identity.sql"),
    ),
    Migration::shared(
        2002,
        "identity events outbox, webhook endpoints and deliveries, API keys",
        include_str!("../migrations/2002_outbox.sql"),
    ),
    Migration::shared(
        2003,
        "identity email codes, mail outbox, email verification details",
        include_str!("../migrations/2003_email.sql"),
    ),
    Migration::shared(
        2004,
        "identity second factors: TOTP, backup codes, pending second steps, session factor times",
        include_str!("../migrations/2004_mfa.sql"),
    ),
    Migration::shared(
        2005,
        "identity passkeys: WebAuthn credentials, user handles, pending ceremonies",
        include_str!("../migrations/2005_passkeys.sql"),
    ),
    Migration::shared(
        2006,
        "identity social sign-in: external accounts, pending provider round trips",
        include_str!("../migrations/2006_oauth.sql"),
    ),
    Migration::shared(
        2007,
        "identity audit log (hash-chained) and the operator role",
        include_str!("../migrations/2007_audit.sql"),
    ),
];

#[cfg(test)]
mod migration_tests {
    /// Databases record these when they apply the migrations; a change here means an existing
    /// database would refuse to start.
    #[test]
    fn applied_checksums_never_change() {
        latchkey_store::assert_pinned_checksums(
            super::MIGRATIONS,
            &[
                (
                    2001,
                    "4a53a1d758de26e13b472bcdbc8b3896b3911f8c5b2205217672733466c399cd",
                ),
                (
                    2002,
                    "516905d5247f02a008c0ad05af005f501b8532db8e71c767797b8064172a933b",
                ),
                (
                    2003,
                    "d4a93229b19cf9c5032250807ab14fe4964cd92bcce634d3d8cea9b6ecb7c387",
                ),
                (
                    2004,
                    "9580dec0e327d76ea8410615d7f2693ae189e7e37e41a2ea157ac9ac6e546486",
                ),
                (
                    2005,
                    "311eeb60a42f17eb810d78aef4d0e9919455c6c9149054a3098ab461db75650d",
                ),
                (
                    2006,
                    "2705251e28c46b720ac31431fa5aabc37bd187acfa95f5d0c381e8ecb043b633",
                ),
                (
                    2007,
                    "8ca43b1f1a8f8924ae3483f17ae088a076232f1591c3d927f9c017f0ee6b5c95",
                ),
            ],
        );
    }
}
