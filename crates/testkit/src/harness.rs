//! Runs each test once per backend, each on its own Tokio runtime, and cleans up after it
//! whether it passed or panicked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use latchkey_store::Backend;
use libtest_mimic::{Arguments, Failed, Trial};

use crate::TestContext;
use crate::postgres::PgServer;

type TestFn = fn(TestContext) -> crate::TestFuture;

/// One integration test.
pub struct TestCase {
    name: String,
    run: TestFn,
    backends: &'static [Backend],
}

impl TestCase {
    #[must_use]
    pub fn new(path: &str, run: TestFn) -> Self {
        Self {
            name: path.replace(' ', ""),
            run,
            backends: &[Backend::Sqlite, Backend::Postgres],
        }
    }

    /// Runs this test on Postgres only (it exercises something SQLite does not have).
    #[must_use]
    pub fn postgres_only(mut self) -> Self {
        self.backends = &[Backend::Postgres];
        self
    }

    /// Runs this test once, on SQLite: it does not touch a database (command-line parsing,
    /// pure protocol checks over HTTP).
    #[must_use]
    pub fn once(mut self) -> Self {
        self.backends = &[Backend::Sqlite];
        self
    }
}

/// The integration binary's `main`: runs `tests` on every backend.
#[must_use]
pub fn run(tests: Vec<TestCase>) -> ExitCode {
    run_inner(tests, None)
}

/// As [`run`], plus one more test, `registration::every_test_function_is_registered`, that
/// fails naming each test function under `sources` (the test crate's directory) that `tests`
/// leaves out, so a forgotten registration cannot go unnoticed (see [`crate::registry`]).
#[must_use]
pub fn run_discovered(tests: Vec<TestCase>, sources: &Path) -> ExitCode {
    run_inner(tests, Some(sources.to_owned()))
}

fn registration_check(sources: PathBuf, registered: BTreeSet<String>) -> Trial {
    Trial::test(
        "registration::every_test_function_is_registered",
        move || {
            let missing = crate::registry::unregistered(&sources, &registered)?;
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "test functions not registered in test_cases![...] (they would never run): {}",
                    missing.join(", ")
                )
                .into())
            }
        },
    )
}

fn run_inner(tests: Vec<TestCase>, sources: Option<PathBuf>) -> ExitCode {
    let args = Arguments::from_args();
    let pg = PgServer::from_env().map(Arc::new);
    if pg.is_none() && !args.list {
        let mut err = std::io::stderr().lock();
        let _ = std::io::Write::write_all(
            &mut err,
            b"latchkey: Postgres tests were not run: set LATCHKEY_TEST_POSTGRES_URL to a server URL, e.g. postgres://postgres@127.0.0.1:5432\n",
        );
    }
    let mut trials = Vec::new();
    if let Some(sources) = sources {
        let registered = tests.iter().map(|t| t.name.clone()).collect();
        trials.push(registration_check(sources, registered));
    }
    for test in tests {
        for &backend in test.backends {
            let name = format!("{}::{}", backend.name(), test.name);
            let pg = pg.clone();
            let ignored = backend == Backend::Postgres && pg.is_none();
            let run = test.run;
            trials.push(
                Trial::test(name, move || run_one(backend, pg, run)).with_ignored_flag(ignored),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// The longest any one test may run; the slowest take about a minute.
const TEST_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

fn run_one(backend: Backend, pg: Option<Arc<PgServer>>, test: TestFn) -> Result<(), Failed> {
    crate::client::install_crypto_provider();
    if backend == Backend::Postgres && pg.is_none() {
        return Err("LATCHKEY_TEST_POSTGRES_URL is not set".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("cannot start a runtime: {e}")))?;
    let ctx = TestContext::new(backend, pg);
    let cleanup = ctx.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            // A hung test fails with its name instead of holding the whole run until CI's limit.
            if tokio::time::timeout(TEST_TIME_LIMIT, test(ctx))
                .await
                .is_err()
            {
                panic!("the test did not finish within {TEST_TIME_LIMIT:?}");
            }
        });
    }));
    runtime.block_on(cleanup.cleanup());
    drop(runtime);
    outcome.map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the test panicked".to_owned());
        Failed::from(message)
    })
}
