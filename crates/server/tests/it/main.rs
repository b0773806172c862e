//! latchkey's integration tests: the real server, real HTTP on loopback, real databases.
//! Each test runs on SQLite and on Postgres; see `latchkey_testkit`.

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod cli;
mod health;
mod pooler;
mod store;
mod support;
mod sync;

use latchkey_testkit::{test_case, test_cases};

fn main() -> std::process::ExitCode {
    let mut tests = test_cases![
        cli::serve_creates_its_data_dir_then_reuses_it,
        cli::migrate_creates_the_schema_once,
        health::healthz_answers,
        health::readyz_reports_the_database,
        health::shutdown_lets_in_flight_requests_finish,
        store::migrations_apply_once_and_refuse_edits,
        store::duplicate_versions_are_refused,
        store::committed_writes_are_read_back_and_rolled_back_ones_are_not,
        store::read_transactions_refuse_writes,
        store::unique_violations_are_classified,
        store::concurrent_writers_all_land,
        sync::every_order_of_a_history_converges,
        sync::a_late_update_never_resurrects_a_deleted_user,
        sync::an_update_for_an_unknown_user_inserts_it_and_older_versions_change_nothing,
        sync::concurrent_copies_of_one_message_apply_once,
        sync::many_users_in_parallel_end_in_their_latest_state,
        sync::forgeries_are_refused_and_write_nothing,
        sync::a_signed_body_that_is_not_an_event_is_recorded_and_a_fixed_resend_succeeds,
        sync::other_event_types_are_recorded_and_ignored,
        sync::without_a_secret_the_receiver_answers_503_naming_the_variable,
        sync::oversized_bodies_are_refused,
    ];
    tests.extend([
        test_case!(cli::bad_settings_stop_with_one_line_naming_them).once(),
        test_case!(cli::the_config_file_is_a_layer_below_the_environment).once(),
        test_case!(cli::help_documents_every_setting).once(),
        test_case!(sync::deliveries_signed_by_the_official_svix_library_verify).once(),
        test_case!(health::readyz_follows_the_database_down_and_up).postgres_only(),
        test_case!(pooler::transaction_pooler_mode_gets_every_answer_right).postgres_only(),
        test_case!(pooler::without_pooler_mode_the_same_load_goes_wrong).postgres_only(),
        test_case!(sync::an_unreachable_database_answers_503_and_the_retry_applies).postgres_only(),
    ]);
    latchkey_testkit::run(tests)
}
