//! Test support for latchkey's integration tests.
//!
//! Integration tests are plain `async fn name(ctx: TestContext)` functions listed with
//! [`test_cases!`] and run by [`run_discovered`] (which also fails when a test function in the
//! sources is missing from the list) or [`run`], which runs each one on SQLite and on Postgres (when
//! `LATCHKEY_TEST_POSTGRES_URL` names a server) as separate tests, `sqlite::name` and
//! `postgres::name`. A test starts the real server, workers included, with
//! [`TestContext::spawn`]; every database and directory it creates is removed afterwards.

#![expect(
    clippy::unwrap_used,
    reason = "test support: a failed step fails the test"
)]

mod app;
pub mod browser;
pub mod clerk;
mod client;
pub mod fake_clerk;
pub mod github;
mod harness;
pub mod interop;
pub mod mailbox;
pub mod nextjs;
pub mod oidc;
pub mod openapi;
pub mod pgbouncer;
pub mod postgres;
pub mod proxy;
pub mod receiver;
pub mod registry;
pub mod smtp;
pub mod webdriver;

pub use app::{TestApp, TestContext};
pub use client::{Call, Reply};
pub use harness::{TestCase, run, run_discovered};
pub use latchkey_store::Backend;

/// Serves `router` on `listener` in the background until the returned token is cancelled (the
/// stand-ins for outside services).
pub(crate) fn serve_until_cancelled(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    stop
}

/// The future a test returns.
pub type TestFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// One test on both backends: `test_case!(module::name)`; chain `.postgres_only()` if needed.
#[macro_export]
macro_rules! test_case {
    ($path:path) => {
        $crate::TestCase::new(stringify!($path), |ctx| -> $crate::TestFuture {
            ::std::boxed::Box::pin($path(ctx))
        })
    };
}

/// Several tests on both backends: `test_cases![module::a, module::b]`.
#[macro_export]
macro_rules! test_cases {
    ($($path:path),* $(,)?) => {
        vec![$($crate::test_case!($path)),*]
    };
}

/// A small deterministic random number generator (xorshift64*), so shuffled tests replay
/// exactly from their seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}
