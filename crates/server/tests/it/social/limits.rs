//! Limits on social sign-in: the per-address sign-in throttle counts provider sign-ins, and a
//! provider slower than the 10 s timeout ends on a page with nothing written.

use latchkey_testkit::TestContext;
use latchkey_testkit::oidc::{Person, StandInProvider};

use super::{counts, custom_provider, sign_in_with_provider, spawn};

pub async fn provider_sign_ins_count_against_the_sign_in_throttle(ctx: TestContext) {
    let provider = StandInProvider::start(Person::verified("sub-t", "throttled@example.com")).await;
    let settings = custom_provider(
        &provider.issuer,
        &provider.client_id,
        &provider.client_secret,
    );
    let app = ctx
        .spawn_with(|config| {
            config.oauth = vec![settings];
            config.sign_in_attempts_per_ip = 2;
        })
        .await;
    for _ in 0..2 {
        let mut browser = app.browser();
        sign_in_with_provider(&app, &mut browser, "", 303).await;
    }
    let before = counts(&app).await;
    let mut browser = app.browser();
    let reply = sign_in_with_provider(&app, &mut browser, "", 429).await;
    assert!(reply.header("retry-after").is_some());
    assert!(
        reply.text().contains("Too many sign-in attempts"),
        "{}",
        reply.text()
    );
    assert!(browser.cookie("__client").is_none());
    assert_eq!(counts(&app).await, before, "nothing written");
    app.stop().await;
}

pub async fn a_provider_slower_than_ten_seconds_gets_a_page_and_writes_nothing(ctx: TestContext) {
    let provider = StandInProvider::start(Person::verified("sub-slow", "slow@example.com")).await;
    let app = spawn(&ctx, &provider).await;
    let before = counts(&app).await;
    provider.delay_tokens(std::time::Duration::from_secs(15));
    let mut browser = app.browser();
    let started = std::time::Instant::now();
    let page = sign_in_with_provider(&app, &mut browser, "", 502)
        .await
        .text();
    let waited = started.elapsed();
    assert!(page.contains("did not answer in time"), "{page}");
    assert!(
        waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(14),
        "the exchange gave up after its 10 s timeout: {waited:?}"
    );
    assert_eq!(counts(&app).await, before);
    app.stop().await;
}
