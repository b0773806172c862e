//! GitHub sign-in (OAuth 2.0 and its REST API, no OpenID Connect) against a GitHub-shaped
//! stand-in following GitHub's documented endpoints and JSON.

use latchkey_identity::oauth::{ClientSecret, ProviderSettings};
use latchkey_testkit::TestContext;
use latchkey_testkit::github::{GitHubUser, StandInGitHub};

use super::{at_provider, counts, me, press, user_json};
use crate::bapi::{events_about, secret_key};

fn octocat(emails: Vec<(String, bool, bool)>) -> GitHubUser {
    GitHubUser {
        id: 583_231,
        login: "octocat".to_owned(),
        name: Some("Mona Lisa Octocat".to_owned()),
        emails,
    }
}

pub async fn a_github_identity_signs_up_with_its_verified_primary_address(ctx: TestContext) {
    let github = StandInGitHub::start(octocat(vec![
        ("old@example.com".to_owned(), false, true),
        ("octocat@example.com".to_owned(), true, true),
    ]))
    .await;
    let settings = ProviderSettings::github(
        url::Url::parse(&github.base).unwrap(),
        url::Url::parse(&github.api).unwrap(),
        github.client_id.clone(),
        ClientSecret::new(github.client_secret.clone()),
    );
    let app = ctx.spawn_with(|config| config.oauth = vec![settings]).await;
    let key = secret_key(&app).await;

    let mut browser = app.browser();
    let authorize = press(&mut browser, "github", "GitHub", "/dashboard").await;
    assert!(authorize.starts_with(&format!("{}/login/oauth/authorize?", github.base)));
    assert!(
        !authorize.contains("nonce="),
        "GitHub is not OpenID Connect"
    );
    let callback = at_provider(&app, &authorize).await;
    let reply = browser.get(&callback, 303).await;
    assert_eq!(reply.header("location"), Some("/dashboard"));
    let id = me(&mut browser).await;
    let user = user_json(&app, &key, &id).await;
    assert_eq!(user["first_name"], "Mona");
    assert_eq!(user["last_name"], "Lisa Octocat");
    assert_eq!(
        user["email_addresses"][0]["email_address"],
        "octocat@example.com"
    );
    assert_eq!(
        user["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    assert_eq!(
        user["email_addresses"][0]["verification"]["strategy"],
        "from_oauth_github"
    );
    let account = &user["external_accounts"][0];
    assert_eq!(account["provider"], "oauth_github");
    assert_eq!(account["provider_user_id"], "583231");
    assert_eq!(account["username"], "octocat");
    assert_eq!(account["approved_scopes"], "read:user user:email");
    assert_eq!(
        account["image_url"],
        "https://avatars.githubusercontent.com/u/583231?v=4"
    );
    assert_eq!(account["verification"]["strategy"], "oauth_github");
    assert_eq!(events_about(&app, "user.created", &id).await.len(), 1);

    // A code used twice is refused the GitHub way (200 with `error`): a page, nothing written.
    let before = counts(&app).await;
    let mut other = app.browser();
    let authorize = press(&mut other, "github", "GitHub", "").await;
    let callback = at_provider(&app, &authorize).await;
    other.get(&callback, 303).await;
    let mut replay = app.browser();
    let authorize = press(&mut replay, "github", "GitHub", "").await;
    let fresh = at_provider(&app, &authorize).await;
    let used_code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let state = fresh.split("state=").nth(1).unwrap();
    let page = replay
        .get(
            &format!("/v1/oauth_callback?code={used_code}&state={state}"),
            400,
        )
        .await
        .text();
    assert!(page.contains("did not accept"), "{page}");
    assert_eq!(counts(&app).await.0, before.0, "no account was made");

    // An unverified primary address is kept unverified and links nothing.
    github.set_user(GitHubUser {
        id: 9,
        login: "newcomer".to_owned(),
        name: None,
        emails: vec![("newcomer@example.com".to_owned(), true, false)],
    });
    let mut newcomer = app.browser();
    let authorize = press(&mut newcomer, "github", "GitHub", "").await;
    let callback = at_provider(&app, &authorize).await;
    newcomer.get(&callback, 303).await;
    let id = me(&mut newcomer).await;
    let user = user_json(&app, &key, &id).await;
    assert_eq!(
        user["email_addresses"][0]["verification"]["status"],
        "unverified"
    );
    assert_eq!(
        user["external_accounts"][0]["email_address_verified"],
        false
    );
    app.stop().await;
}
