//! latchkey's integration tests: the real server, real HTTP on loopback, real databases.
//! Each test runs on SQLite and on Postgres; see `latchkey_testkit`. Every
//! `async fn name(ctx: TestContext)` under this directory must be listed below: a check in
//! the same run fails naming any that is not.

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

mod app;
mod audit;
mod bapi;
mod cli;
mod console;
mod e2e;
mod email;
mod examples;
mod fapi;
mod headers;
mod health;
mod identity;
mod import;
mod limits;
mod metrics;
mod mfa;
mod outbox;
mod passkeys;
mod pooler;
mod revocation;
mod shadow;
mod social;
mod stall;
mod store;
mod support;
mod sync;

use latchkey_testkit::{test_case, test_cases};

fn main() -> std::process::ExitCode {
    let mut tests = test_cases![
        cli::serve_creates_its_data_dir_then_reuses_it,
        cli::migrate_creates_the_schema_once,
        cli::management_api_secret_keys_are_made_listed_and_revoked,
        headers::personal_answers_are_not_stored_and_nothing_is_sniffed,
        health::healthz_answers,
        health::readyz_reports_the_database,
        health::shutdown_lets_in_flight_requests_finish,
        limits::requests_naming_another_host_get_421,
        limits::a_body_trickled_in_gets_408_and_the_connection_closes,
        store::migrations_apply_once_and_refuse_edits,
        store::duplicate_versions_are_refused,
        store::committed_writes_are_read_back_and_rolled_back_ones_are_not,
        store::read_transactions_refuse_writes,
        store::unique_violations_are_classified,
        store::concurrent_writers_all_land,
        sync::order::every_order_of_a_history_converges,
        sync::order::a_late_update_never_resurrects_a_deleted_user,
        sync::order::an_update_for_an_unknown_user_inserts_it_and_older_versions_change_nothing,
        sync::events::a_nul_character_in_a_users_name_is_stored_replaced,
        sync::order::concurrent_copies_of_one_message_apply_once,
        sync::order::many_users_in_parallel_end_in_their_latest_state,
        sync::order::a_burst_is_committed_together_and_a_bad_event_fails_alone,
        sync::signatures::forgeries_are_refused_and_write_nothing,
        sync::events::a_signed_body_that_is_not_an_event_is_recorded_and_a_fixed_resend_succeeds,
        sync::events::other_event_types_are_recorded_and_ignored,
        sync::signatures::without_a_secret_the_receiver_answers_503_naming_the_variable,
        sync::events::oversized_bodies_are_refused,
        fapi::sign_up::the_environment_and_client_answer_the_apps_origin_only,
        fapi::sign_up::signing_up_with_the_mailed_code_starts_a_session_with_verifiable_tokens,
        fapi::sign_up::signing_up_with_a_taken_address_answers_alike_and_creates_nothing,
        fapi::sign_in::signing_in_by_password_and_by_code_through_the_frontend_api,
        fapi::sign_in::ten_wrong_passwords_lock_the_account_as_on_the_pages,
        fapi::sign_in::a_password_reset_by_code_signs_in_with_the_new_password,
        fapi::handshake::the_handshake_answers_signed_cookie_directives_for_the_apps_pages_only,
        fapi::handshake::forged_and_foreign_cookies_and_bad_fields_change_nothing,
        fapi::account::the_profile_addresses_password_and_sessions_change_through_me,
        fapi::scripts::pinned_scripts_are_served_by_major_and_exact_version_and_nothing_else,
        identity::throttles::wrong_passwords_and_unknown_emails_answer_alike,
        identity::throttles::ten_failures_lock_the_account_even_when_they_arrive_in_parallel,
        identity::pages::forms_without_a_csrf_token_or_from_other_sites_are_refused,
        identity::pages::redirect_urls_to_other_sites_are_ignored,
        identity::sessions::signing_in_again_issues_a_new_session_and_ends_the_old_one,
        identity::sessions::a_password_change_ends_every_other_session,
        identity::throttles::wrong_current_passwords_on_the_account_page_lock_password_changes,
        identity::throttles::stale_throttle_counters_and_old_sessions_are_swept,
        identity::sessions::a_revoked_session_stops_at_once_and_gets_no_new_token,
        identity::tokens::forged_and_foreign_tokens_are_refused,
        identity::throttles::throttles_answer_429_with_retry_after,
        identity::pages::sign_up_refuses_weak_passwords,
        identity::pages::the_account_page_edits_the_profile_and_deletes_the_account,
        identity::operators::operators_manage_users_from_the_command_line,
        identity::tokens::rotated_keys_keep_old_tokens_verifying,
        outbox::delivery::pages_changes_reach_the_apps_users_table_within_two_seconds,
        outbox::retries::a_failing_receiver_gets_every_event_once_it_recovers,
        outbox::retries::failed_deliveries_are_replayed_on_request,
        outbox::delivery::a_receiver_answering_with_nul_bytes_is_recorded,
        outbox::delivery::private_addresses_are_refused_unless_allowed,
        outbox::retries::a_killed_server_loses_no_deliveries,
        app::pages::the_dashboard_needs_a_session_and_shows_the_apps_row,
        app::pages::the_first_request_after_sign_up_provisions_the_row,
        app::pages::settings_and_notes_belong_to_their_user,
        app::pages::a_deleted_users_app_data_goes_with_the_tombstone,
        app::backfill::a_clerk_backfill_of_ten_thousand_users_leaves_no_drift,
        app::backfill::the_own_identitys_users_page_newest_first_and_sync_without_drift,
        import::a_clerk_export_imports_and_its_users_sign_in_with_their_old_passwords,
        import::the_backend_api_import_pages_through_clerk_and_keeps_ids,
        import::password_digests_are_taken_through_the_management_api,
        audit::changes_and_security_events_are_audited_in_a_chain_an_edit_breaks,
        audit::pruning_keeps_the_chain_verifiable_and_a_removed_entry_is_named,
        console::only_operators_see_the_console_and_each_action_is_theirs_in_the_audit_log,
        console::operators_sign_in_as_a_person_for_an_hour_with_a_banner_and_the_act_claim,
        console::the_overview_and_webhook_health_show_what_happened,
        metrics::metrics_parse_with_the_prometheus_parser_and_move_with_the_traffic,
        metrics::frontend_api_requests_are_counted_by_their_route_template,
        console::browser::an_operator_bans_a_person_from_the_console_in_a_real_browser,
        import::authenticator_apps_from_the_export_keep_working_after_the_import,
        shadow::shadow_mode_keeps_the_identitys_accounts_current_from_clerk_webhooks,
        shadow::sync_check_against_the_identity_reports_and_repairs_what_differs_from_clerk,
        shadow::shadow_mode_needs_clerk_and_its_webhook_secret,
        mfa::an_authenticator_app_and_backup_codes_guard_every_sign_in,
        mfa::wrong_second_factor_codes_stop_at_the_limits_even_in_parallel,
        mfa::sensitive_changes_need_a_sign_in_within_ten_minutes,
        mfa::operators_reset_a_locked_out_persons_second_factors,
        passkeys::a_passkey_registered_after_step_up_signs_in_alone_with_both_factors_fresh,
        passkeys::forged_replayed_and_stale_passkey_answers_are_refused,
        passkeys::passkey_sign_ins_count_toward_the_networks_sign_in_limit,
        bapi::secret_keys_are_required_and_checked,
        bapi::users::listing_pages_filters_and_counts_users,
        bapi::users::oversized_and_nul_bearing_input_is_refused_with_nothing_written,
        bapi::users::a_user_created_through_the_api_signs_in_and_emits_user_created,
        bapi::users::patching_a_user_moves_updated_at_and_emits_user_updated,
        bapi::users::deleting_a_user_emits_user_deleted_and_then_answers_404,
        bapi::sessions::banning_revokes_sessions_and_unbanning_lets_the_user_back,
        bapi::sessions::sessions_are_listed_and_revoked_by_id,
        bapi::sessions::jwks_matches_the_well_known_document,
        bapi::sessions::each_key_is_limited_to_1000_requests_per_10_seconds,
        bapi::feed::the_event_feed_pages_through_settled_events,
        bapi::feed::webhook_endpoints_are_managed_through_the_api,
        bapi::openapi::every_documented_response_matches_its_schema,
        bapi::feed::private_webhook_urls_are_refused_at_creation,
        email::sign_up::a_sign_up_waits_for_its_code_and_the_app_sees_the_verified_address,
        email::sign_up::a_taken_address_gets_the_same_answer_and_its_owner_a_notice,
        email::sign_up::a_password_sign_in_of_an_unverified_account_asks_for_its_code,
        email::sign_up::whoever_proves_an_unverified_address_by_code_alone_gets_the_account_without_its_password,
        email::codes::wrong_malformed_expired_replaced_and_reused_codes_are_refused,
        email::codes::twenty_wrong_codes_in_parallel_use_up_exactly_five_attempts,
        email::codes::codes_can_be_sent_again_until_five_mails_an_hour,
        email::reset::sign_in_by_code_works_and_answers_unknown_addresses_alike,
        email::reset::a_password_reset_ends_every_session_and_tells_nobody_who_has_an_account,
        email::reset::the_spelling_of_a_typed_address_tells_nothing,
        email::change::an_added_address_is_verified_made_primary_and_the_old_one_is_told,
        email::change::adding_an_address_someone_holds_looks_like_adding_a_free_one,
        email::entry::unmailable_addresses_are_refused_on_the_pages_with_nothing_written,
        email::entry::unmailable_addresses_are_refused_to_operators_with_nothing_written,
        email::smtp::over_smtp_a_sign_up_works_and_the_dev_mailbox_is_not_served,
        email::smtp::a_relay_down_for_a_while_loses_nothing_and_sends_each_mail_once,
        email::smtp::the_dev_mailbox_is_served_only_to_loopback,
        email::smtp::over_implicit_tls_the_relay_gets_the_mail_and_the_password_only_encrypted,
        email::smtp::over_starttls_the_upgrade_comes_before_auth,
        email::smtp::a_relay_certificate_from_another_ca_is_refused_until_it_is_fixed,
        revocation::sign_out_a_password_change_and_a_ban_each_end_the_apps_acceptance,
        revocation::clerk_session_ends_and_bans_told_by_webhook_are_refused,
        revocation::revocations_are_forgotten_once_their_tokens_have_expired,
        social::a_provider_identity_signs_up_then_signs_in_to_the_same_account,
        social::forged_replayed_and_foreign_callbacks_are_refused_with_nothing_written,
        social::id_tokens_failing_any_check_and_provider_failures_write_nothing,
        social::linking_needs_both_sides_to_have_verified_the_address,
        social::bans_throttles_and_second_factors_apply_and_operators_can_disconnect,
        social::connections::people_connect_and_disconnect_providers_from_their_account_page,
        social::github::a_github_identity_signs_up_with_its_verified_primary_address,
        social::limits::provider_sign_ins_count_against_the_sign_in_throttle,
        social::limits::a_provider_slower_than_ten_seconds_gets_a_page_and_writes_nothing,
    ];
    tests.extend([
        test_case!(cli::bad_settings_stop_with_one_line_naming_them).once(),
        test_case!(cli::the_config_file_is_a_layer_below_the_environment).once(),
        test_case!(cli::help_documents_every_setting).once(),
        test_case!(limits::idle_and_slow_connections_cannot_exhaust_a_256_descriptor_server).once(),
        test_case!(cli::non_utf8_environment_variables_do_not_panic).once(),
        test_case!(cli::impossible_since_times_are_refused_in_one_line).once(),
        test_case!(sync::signatures::deliveries_signed_by_the_official_svix_library_verify).once(),
        test_case!(
            identity::tokens::a_session_token_from_the_pages_verifies_with_a_standard_jose_library
        )
        .once(),
        test_case!(health::readyz_follows_the_database_down_and_up).postgres_only(),
        test_case!(pooler::transaction_pooler_mode_gets_every_answer_right).postgres_only(),
        test_case!(pooler::without_pooler_mode_the_same_load_goes_wrong).postgres_only(),
        test_case!(sync::events::an_unreachable_database_answers_503_and_the_retry_applies)
            .postgres_only(),
        test_case!(outbox::delivery::deliveries_verify_with_svixs_own_verifier).once(),
        test_case!(app::clerk::clerk_session_tokens_follow_the_sdks_rules).once(),
        test_case!(outbox::retries::two_instances_share_a_burst_without_sending_twice_at_once)
            .postgres_only(),
        test_case!(
            revocation::a_session_revoked_on_one_instance_is_refused_by_another_within_two_seconds
        )
        .postgres_only(),
        test_case!(e2e::a_person_signs_up_manages_and_deletes_their_account_in_a_real_browser)
            .once(),
        test_case!(e2e::a_person_uses_the_apps_dashboard_settings_and_notes_in_a_real_browser)
            .once(),
        test_case!(
            mfa::browser::a_person_enrols_an_authenticator_app_and_signs_in_with_it_in_a_real_browser
        )
        .once(),
        test_case!(
            passkeys::browser::a_person_registers_a_passkey_and_signs_in_with_it_alone_in_a_real_browser
        )
        .once(),
        test_case!(
            social::browser::a_person_signs_up_and_in_again_with_an_openid_provider_in_a_real_browser
        )
        .once(),
        test_case!(social::clerks_backend_sdk_reads_and_deletes_external_accounts).once(),
        test_case!(bapi::the_openapi_document_describes_every_route).once(),
        test_case!(examples::the_core2_example_verifies_latchkeys_webhooks_and_session_tokens)
            .once(),
        test_case!(examples::the_core3_example_verifies_latchkeys_webhooks_and_session_tokens)
            .once(),
        test_case!(
            examples::browser::a_person_uses_the_core2_example_through_clerks_components_in_a_real_browser
        )
        .once(),
        test_case!(
            examples::browser::a_person_uses_the_core3_example_through_clerks_components_in_a_real_browser
        )
        .once(),
        test_case!(bapi::the_official_clerk_backend_sdk_works_against_the_api).once(),
        test_case!(bapi::an_unavailable_database_answers_503_in_clerks_envelope).postgres_only(),
        test_case!(stall::a_silent_database_frees_every_slot_within_the_bound).postgres_only(),
        test_case!(stall::postgres_cancels_statements_past_the_statement_timeout).postgres_only(),
        test_case!(stall::requests_during_a_database_stall_answer_503_within_the_acquire_timeout)
            .postgres_only(),
    ]);
    // Fails, as `registration::every_test_function_is_registered`, if a test function in
    // this directory is missing from the lists above.
    latchkey_testkit::run_discovered(
        tests,
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it")),
    )
}
