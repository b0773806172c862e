//! The `latchkey` binary's library: configuration, the command line, and the composition of
//! latchkey's parts into one server.
//!
//! This is the only crate that knows both the identity part and the app part. It wires them
//! together (the identity's outgoing webhooks reach the app's receiver over HTTP, like any
//! other endpoint), owns start-up and shutdown, and sets up storage.

mod bridge;
pub mod cli;
pub mod config;
mod health;
pub mod host;
pub mod mail_config;
mod metrics;
mod process;
pub mod serve;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;

use latchkey_store::MigrationSet;

/// Every part's migrations, in the order the parts were composed.
pub const MIGRATIONS: &[MigrationSet] = &[latchkey_app::MIGRATIONS, latchkey_identity::MIGRATIONS];
