//! `latchkey-bench`: latchkey's benchmarks. Each starts the release `latchkey` binary (built
//! beside this one) as its own process, drives it over HTTP on loopback, and prints figures
//! beside the ceiling they are judged against.
//!
//! ```sh
//! cargo build --release --bins
//! ./target/release/latchkey-bench webhooks
//! ```

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod app;
mod console;
mod load;
mod machine;
mod revocation;
mod server;
mod signins;
mod signup_latency;
mod tokens;
mod webhooks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "latchkey-bench", about = "latchkey's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Signed user.created webhooks into a running latchkey on Postgres, against pgbench
    /// running the same transaction
    Webhooks(webhooks::Args),
    /// Session-token verifications per second on one core against the bare RSA-2048 verify
    Tokens(tokens::Args),
    /// Sign-ins per second against raw argon2id verifications, and what hashing does to cheap
    /// requests' p99
    Signins(signins::Args),
    /// The app's protected JSON route (`GET /api/me` with a Bearer session token) against a
    /// hello route on the same server
    App(app::Args),
    /// Sign-up (`POST /v1/users`) to the app's users row: p50 and p99 of the event pipeline's
    /// latency, one sign-up at a time
    SignupLatency(signup_latency::Args),
    /// Revocation through the management API to refusal by the app on a second instance: p50
    /// and p99; with --baseline, what the revocation checks cost /api/session and /v1/me
    Revocation(revocation::Args),
    /// The operators' console at a million accounts: first page, a deep page, searches,
    /// filters and the overview, one request at a time
    Console(console::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Webhooks(args) => webhooks::run(args).await,
            Command::Tokens(args) => tokens::run(&args),
            Command::Signins(args) => signins::run(args).await,
            Command::App(args) => app::run(args).await,
            Command::SignupLatency(args) => signup_latency::run(args).await,
            Command::Revocation(args) => revocation::run(args).await,
            Command::Console(args) => console::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            println!("latchkey-bench: {message}");
            ExitCode::FAILURE
        }
    }
}
