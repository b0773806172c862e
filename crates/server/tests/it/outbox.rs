//! Identity → app through the outbox: events written with each change, delivered as Svix would,
//! retried through failures, never lost, never sent twice at once.
//! The helpers are here; the tests are in the submodules.

pub mod delivery;
pub mod retries;

use std::time::Duration;

use latchkey_identity::Identity;
use latchkey_identity::flows::admin;
use latchkey_identity::flows::admin::CreateUser;
use latchkey_identity::webhooks::endpoints;
use latchkey_testkit::receiver::TestReceiver;
use latchkey_testkit::{TestApp, TestContext};

/// An app with a receiver endpoint that is allowed on loopback and retries quickly.
async fn app_with_receiver(
    ctx: &TestContext,
    schedule: &str,
    timeout: Duration,
) -> (TestApp, TestReceiver, String) {
    let receiver = TestReceiver::start().await;
    let schedule = latchkey_server::config::parse_duration_list(schedule);
    let app = ctx
        .spawn_with(|c| {
            c.webhook_allow_private_networks = true;
            c.webhook_retry_schedule = schedule;
            c.webhook_timeout = timeout;
        })
        .await;
    let (endpoint, secret) = endpoints::add_endpoint(&app.identity, &receiver.url(), &[])
        .await
        .unwrap();
    receiver.trust(&secret.expose());
    (app, receiver, endpoint.id)
}

/// Creates a user with the address `email` (verified, no password) without going through the
/// pages; its id.
async fn create_user(identity: &Identity, email: &str) -> String {
    admin::create_user(
        identity,
        CreateUser {
            email_address: Some(email.to_owned()),
            ..CreateUser::default()
        },
    )
    .await
    .unwrap()
    .id
}
