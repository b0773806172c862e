//! Test support for latchkey's integration tests.
//!
//! Integration tests are plain `async fn name(ctx: TestContext)` functions listed with
//! [`test_cases!`] and run by [`run`], which runs each one on SQLite and on Postgres (when
//! `LATCHKEY_TEST_POSTGRES_URL` names a server) as separate tests, `sqlite::name` and
//! `postgres::name`. A test starts the real server, workers included, with
//! [`TestContext::spawn`]; every database and directory it creates is removed afterwards.

#![expect(
    clippy::unwrap_used,
    reason = "test support: a failed step fails the test"
)]

mod app;
mod client;
mod harness;
pub mod pgbouncer;
pub mod postgres;
pub mod proxy;

pub use app::{TestApp, TestContext};
pub use client::{Call, Reply};
pub use harness::{TestCase, run};
pub use latchkey_store::Backend;

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
