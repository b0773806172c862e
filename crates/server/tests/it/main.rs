//! latchkey's integration tests: the real server, real HTTP on loopback, real databases.
//! Each test runs on SQLite and on Postgres; see `latchkey_testkit`.

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod cli;
mod health;
mod pooler;
mod store;
mod support;

use latchkey_testkit::{test_case, test_cases};

fn main() -> std::process::ExitCode {
    let mut tests = test_cases![
        cli::serve_creates_its_data_dir_then_reuses_it,
        cli::migrate_creates_the_schema_once,
        health::healthz_answers,
        health::readyz_reports_the_database,
        store::migrations_apply_once_and_refuse_edits,
        store::duplicate_versions_are_refused,
        store::committed_writes_are_read_back_and_rolled_back_ones_are_not,
        store::read_transactions_refuse_writes,
        store::unique_violations_are_classified,
        store::concurrent_writers_all_land,
    ];
    tests.extend([
        test_case!(cli::bad_settings_stop_with_one_line_naming_them).once(),
        test_case!(cli::the_config_file_is_a_layer_below_the_environment).once(),
        test_case!(cli::help_documents_every_setting).once(),
        test_case!(health::readyz_follows_the_database_down_and_up).postgres_only(),
        test_case!(pooler::transaction_pooler_mode_gets_every_answer_right).postgres_only(),
        test_case!(pooler::without_pooler_mode_the_same_load_goes_wrong).postgres_only(),
    ]);
    latchkey_testkit::run(tests)
}
