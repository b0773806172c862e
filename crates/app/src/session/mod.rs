//! Session middleware for the app, as axum extractors: [`CurrentUser`] and [`MaybeUser`].
//!
//! Verification follows Clerk's SDK: an `Authorization: Bearer` token is used exclusively when
//! present, else the `__session` cookie (with Clerk's `__client_uat` rule when the issuer is
//! Clerk); RS256 only; keys from a JWKS URL (cached, refetched on an unknown `kid` with a
//! backoff) or a PEM; 5 s of clock skew; `azp` checked against the authorized parties when set;
//! Clerk's other token categories refused. The issuer is latchkey's own identity or Clerk.
//!
//! A verified token for a user the app's table lacks provisions the row from the issuer's
//! management API, through the same guarded upsert the webhook uses, before the handler runs:
//! the first request after sign-up never fails or polls. A tombstoned user is refused.
//!
//! A verified token of a session the issuer has since ended, or of a banned user, is refused
//! too, by an in-memory set every instance keeps in step with the database ([`revocations`]).

mod cache;
mod extract;
pub mod issuer;
pub mod keys;
pub mod revocations;
pub mod source;
mod verify;

pub use extract::{Auth, AuthRejection, CurrentUser, MaybeUser};
pub use issuer::{IssuerConfig, IssuerKind, clerk_frontend_api};
pub use keys::{BoxFuture, KeyProvider, RemoteJwks, StaticKeys};
pub use revocations::{Revocation, Revocations};
pub use source::{BackendApi, SourceError, UserSource};
pub use verify::{SessionVerifier, SignedOut};
