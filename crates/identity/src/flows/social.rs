//! Signing in (and up) through a provider: Google, Microsoft or any OpenID Connect issuer.
//!
//! [`start`] writes a pending round trip (`oauth::states`) and returns the provider's
//! authorization URL (authorization code with PKCE S256, `state`, `nonce`); [`finish`] takes
//! the callback: it spends the round trip once, from the browser that started it, exchanges
//! the code, verifies the ID token, and only then, in one transaction, finds or creates the
//! account and goes through the same session start as every other sign-in (IP throttle,
//! bans, the second step of an account with a second factor). Every refusal before that
//! transaction writes nothing but the spent round trip.
//!
//! Linking is safe by default: a provider identity seen before signs into its account; a new
//! one whose email matches an account links to it only if the provider vouched for the
//! address and the account verified it too; otherwise the person is told to sign in first and
//! connect the provider from `/user`, so nobody can pre-register an address and wait, nor
//! take an account through a provider that does not check addresses.

use latchkey_protocol::clerk::EventType;
use latchkey_store::{StoreError, Tx};

use crate::context::RequestContext;
use crate::events;
use crate::flows::second_factor;
use crate::mfa;
use crate::mfa::challenge::ChallengeToken;
use crate::oauth::accounts::{self, Profile};
use crate::oauth::provider::{ProviderError, Verified};
use crate::oauth::states::{self, BrowserToken, Refused, StateToken};
use crate::oauth::{Kind, ProviderSettings};
use crate::sessions::lifecycle;
use crate::sessions::{ClientToken, SignedIn};
use crate::state::Identity;
use crate::throttle;
use crate::users::{self, AccountError, NewUser, address_rows, validate};

/// Why a social sign-in stopped. The messages are what people see.
#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    #[error("That sign-in provider is not configured here.")]
    UnknownProvider,
    #[error("The sign-in was cancelled at the provider. Nothing was changed.")]
    Cancelled,
    #[error(
        "This sign-in link was not started here, or it is no longer valid. Start again from the sign-in page."
    )]
    UnknownState,
    #[error(
        "This sign-in was started in another browser. Start again from the sign-in page in this browser."
    )]
    OtherBrowser,
    #[error("This sign-in link was already used. Start again from the sign-in page.")]
    Replayed,
    #[error("This sign-in took more than 10 minutes. Start again from the sign-in page.")]
    Expired,
    #[error(
        "The sign-in provider could not be reached or did not answer in time. Try again in a moment."
    )]
    ProviderDown,
    #[error("The sign-in provider did not accept this sign-in. Start again from the sign-in page.")]
    CodeRefused,
    #[error(
        "The sign-in provider's answer could not be verified, so it was not trusted. Nothing was changed."
    )]
    Untrusted,
    #[error("This account is banned. Contact the site's operator.")]
    Banned,
    #[error("Too many sign-in attempts from your network. Try again in {} minutes.", super::minutes(*retry_after_secs))]
    Throttled { retry_after_secs: u64 },
    #[error(
        "An account with this email address already exists. Sign in to it first (with its password or an emailed code), then connect {provider} from your account page."
    )]
    EmailInUse { provider: String },
    #[error("This {provider} account is already connected to another account here.")]
    LinkedElsewhere { provider: String },
    #[error(
        "You are no longer signed in to the account that asked to connect. Sign in and connect again from your account page."
    )]
    NotSignedIn,
    #[error("That connected account was not found.")]
    NotFound,
    #[error(
        "This is the last way to sign in to your account. Set a password or verify an email address first."
    )]
    LastWayIn,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A round trip ready to go: send the browser to `authorize_url`, holding `browser` in its
/// `latchkey_oauth` cookie.
#[derive(Debug)]
pub struct Start {
    pub authorize_url: String,
    pub browser: BrowserToken,
}

/// Starts a sign-in with `provider_key` (or, with `link_user_id`, connects the provider to
/// that signed-in account). `redirect_url` is a checked same-origin path or empty.
///
/// # Errors
/// [`SocialError::UnknownProvider`], [`SocialError::ProviderDown`], database failures.
pub async fn start(
    identity: &Identity,
    provider_key: &str,
    redirect_url: &str,
    link_user_id: Option<&str>,
) -> Result<Start, SocialError> {
    let provider = identity
        .config()
        .oauth_provider(provider_key)
        .ok_or(SocialError::UnknownProvider)?;
    let now = identity.now_ms();
    let discovery = identity
        .providers()
        .discover(provider, now)
        .await
        .map_err(|error| provider_failure(provider, &error))?;
    let mut tx = identity.db().begin().await?;
    let started = states::create(&mut tx, &provider.key, redirect_url, link_user_id, now).await?;
    tx.commit().await?;
    let mut url = url::Url::parse(&discovery.authorization_endpoint)
        .map_err(|_| SocialError::ProviderDown)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", &identity.config().oauth_redirect_uri())
        .append_pair("scope", provider.scopes())
        .append_pair("state", started.state.expose())
        .append_pair("code_challenge", &started.code_challenge)
        .append_pair("code_challenge_method", "S256");
    if provider.kind != Kind::GitHub {
        url.query_pairs_mut().append_pair("nonce", &started.nonce);
    }
    Ok(Start {
        authorize_url: url.into(),
        browser: started.browser,
    })
}

/// The query of the provider's redirect back (RFC 6749 §4.1.2).
#[derive(Debug, Default)]
pub struct Callback {
    pub state: String,
    pub code: String,
    /// `access_denied` and the like, when the person or the provider said no.
    pub error: String,
    /// The issuer, when the provider says who answers (RFC 9207); must be the provider's.
    pub iss: String,
}

/// How a callback ends.
#[derive(Debug)]
pub enum Finished {
    /// Signed in; go to the round trip's `redirect_url` (checked when it started).
    SignedIn(Box<SignedIn>, String),
    /// The account has a second factor: no session yet.
    SecondFactor(ChallengeToken),
    /// The provider was connected to the signed-in account (from `/user`).
    Connected,
}

/// Takes the provider's redirect back.
///
/// # Errors
/// See [`SocialError`]; on any error no account, link or session is written.
pub async fn finish(
    identity: &Identity,
    callback: &Callback,
    browser: Option<&BrowserToken>,
    signed_in: Option<(&ClientToken, &str)>,
    ctx: &RequestContext,
) -> Result<Finished, SocialError> {
    let previous = signed_in.map(|(token, _)| token);
    let state = StateToken::from_cookie(&callback.state).ok_or(SocialError::UnknownState)?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let taken = states::take(&mut tx, &state, browser, now).await?;
    tx.commit().await?;
    let pending = taken.map_err(|refused| match refused {
        Refused::Unknown => SocialError::UnknownState,
        Refused::OtherBrowser => SocialError::OtherBrowser,
        Refused::Used => SocialError::Replayed,
        Refused::Expired => SocialError::Expired,
    })?;
    let provider = identity
        .config()
        .oauth_provider(&pending.provider)
        .ok_or(SocialError::UnknownProvider)?;
    if !callback.error.is_empty() {
        tracing::info!(provider = %provider.key, "social sign-in refused at the provider");
        return Err(SocialError::Cancelled);
    }
    if callback.code.is_empty() {
        return Err(SocialError::CodeRefused);
    }
    if !callback.iss.is_empty()
        && callback.iss.trim_end_matches('/') != provider.issuer.as_str().trim_end_matches('/')
        && !matches!(provider.kind, Kind::Microsoft | Kind::GitHub)
    {
        tracing::warn!(provider = %provider.key, "social sign-in: the callback names another issuer");
        return Err(SocialError::Untrusted);
    }
    let verified = identity
        .providers()
        .exchange(
            provider,
            &callback.code,
            &pending.code_verifier,
            &identity.config().oauth_redirect_uri(),
            &pending.nonce,
            identity.now_ms(),
        )
        .await
        .map_err(|error| provider_failure(provider, &error))?;
    let profile = profile_of(provider, &verified);
    if let Some(user_id) = pending.link_user_id.as_deref() {
        // Connecting is for the account that asked, still signed in in this browser.
        if signed_in.map(|(_, current)| current) != Some(user_id) {
            return Err(SocialError::NotSignedIn);
        }
        return connect(identity, provider, &profile, user_id, ctx).await;
    }
    // A parallel callback may link the same identity or take the address first; the second
    // round then finds it.
    for _ in 0..2 {
        let tx = identity.db().begin().await?;
        match settle(
            identity,
            tx,
            provider,
            &profile,
            previous,
            ctx,
            &pending.redirect_url,
        )
        .await
        {
            Err(SocialError::Store(StoreError::UniqueViolation(_))) => {}
            Ok(None) => {}
            Ok(Some(finished)) => return Ok(finished),
            Err(error) => return Err(error),
        }
    }
    Err(SocialError::Store(StoreError::Invariant(
        "a provider identity was linked and unlinked during one sign-in".to_owned(),
    )))
}

/// Logs why a provider failed (without anything it sent) and says so in people's words.
fn provider_failure(provider: &ProviderSettings, error: &ProviderError) -> SocialError {
    match error {
        ProviderError::Token(token) => {
            tracing::warn!(provider = %provider.key, code = token.code(), "social sign-in: the ID token was refused");
            SocialError::Untrusted
        }
        ProviderError::CodeRefused => {
            tracing::info!(provider = %provider.key, "social sign-in: the provider refused the code");
            SocialError::CodeRefused
        }
        other => {
            tracing::warn!(provider = %provider.key, error = %other, "social sign-in: provider unavailable");
            SocialError::ProviderDown
        }
    }
}

/// What the ID token says, in Clerk's external-account terms. Whether the address is vouched
/// for depends on the provider (docs/PROTOCOLS.md §11.3): Microsoft's `email` is whatever the
/// tenant holds, so only its `xms_edov` claim counts.
fn profile_of(provider: &ProviderSettings, verified: &Verified) -> Profile {
    let claims = &verified.claims;
    let email_verified = match provider.kind {
        Kind::Microsoft => claims.xms_edov,
        Kind::Google | Kind::Custom | Kind::GitHub => claims.email_verified,
    };
    let name = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| validate::name("name", t).ok().flatten())
    };
    let email_address = claims
        .email
        .as_deref()
        .and_then(|e| validate::email(e).ok())
        .map(|e| e.address);
    Profile {
        provider: provider.clerk_provider(),
        provider_user_id: claims.sub.clone(),
        email_verified: email_address.as_ref().map(|_| email_verified == Some(true)),
        email_address,
        first_name: name(&claims.given_name).or_else(|| name(&claims.name)),
        last_name: name(&claims.family_name),
        username: claims.preferred_username.clone(),
        image_url: claims
            .picture
            .as_deref()
            .and_then(|p| validate::image_url(p).ok().flatten()),
        approved_scopes: verified.scopes.clone(),
    }
}

/// In one transaction: the account this identity signs into (found, linked or created), then
/// the session or the second step. `None` if a parallel request won a race; retry.
async fn settle(
    identity: &Identity,
    mut tx: Tx,
    provider: &ProviderSettings,
    profile: &Profile,
    previous: Option<&ClientToken>,
    ctx: &RequestContext,
    redirect_url: &str,
) -> Result<Option<Finished>, SocialError> {
    let now = identity.now_ms();
    if let Some(retry_after_secs) = super::take_ip_slot(identity, &mut tx, ctx, now).await? {
        tx.commit().await?;
        return Err(SocialError::Throttled { retry_after_secs });
    }
    let user_id =
        match accounts::find(&mut tx, &profile.provider, &profile.provider_user_id).await? {
            Some(account) => account.user_id,
            None => match account_for_new_identity(identity, &mut tx, provider, profile, ctx, now)
                .await?
            {
                Some(user_id) => user_id,
                None => return Ok(None),
            },
        };
    let user = users::get(&mut tx, &user_id)
        .await?
        .ok_or_else(|| StoreError::Invariant("a linked account has no user".to_owned()))?;
    if user.banned_at.is_some() {
        tracing::info!(user.id = %user_id, "social sign-in refused: banned");
        return Err(SocialError::Banned);
    }
    if mfa::has_second_factor(&mut tx, &user_id).await? {
        let token = second_factor::open_challenge(&mut tx, &user_id, redirect_url, now).await?;
        tx.commit().await?;
        return Ok(Some(Finished::SecondFactor(token)));
    }
    let signed = lifecycle::open_session(identity, tx, &user_id, previous, ctx, now).await?;
    Ok(Some(Finished::SignedIn(
        Box::new(signed),
        redirect_url.to_owned(),
    )))
}

/// A provider identity seen for the first time: linked to the account holding its address
/// if both sides verified it, refused if the address is someone's otherwise, else a new
/// account. `None` if a parallel request took the address or the identity meanwhile.
async fn account_for_new_identity(
    identity: &Identity,
    tx: &mut Tx,
    provider: &ProviderSettings,
    profile: &Profile,
    ctx: &RequestContext,
    now: i64,
) -> Result<Option<String>, SocialError> {
    let email = profile
        .email_address
        .as_deref()
        .and_then(|e| validate::email(e).ok());
    if let Some(email) = &email {
        super::sign_up::release_stale_address(identity, tx, &email.normalized, now).await?;
        if let Some(owner) = address_rows::owner(tx, &email.normalized).await? {
            if !(owner.verified && profile.email_verified == Some(true)) {
                tracing::info!(provider = %provider.key, "social sign-in refused: the address belongs to an account and is not verified on both sides");
                return Err(SocialError::EmailInUse {
                    provider: provider.name.clone(),
                });
            }
            let banned = users::get(tx, &owner.user_id)
                .await?
                .is_none_or(|u| u.banned_at.is_some());
            if banned {
                return Err(SocialError::Banned);
            }
            if accounts::link(tx, &owner.user_id, profile, now)
                .await?
                .is_none()
            {
                return Ok(None);
            }
            events::user_updated(identity, tx, &owner.user_id, Some(ctx), now).await?;
            tracing::info!(user.id = %owner.user_id, provider = %provider.key, "provider linked by its verified address");
            return Ok(Some(owner.user_id));
        }
    }
    if let Some(ip) = ctx.throttle_key() {
        let attempt = throttle::take(
            tx,
            &format!("signup-ip:{ip}"),
            identity.config().sign_up_ip_limit,
            now,
        )
        .await?;
        if attempt.refused() {
            return Err(SocialError::Throttled {
                retry_after_secs: attempt.retry_after_secs(now),
            });
        }
    }
    let new = NewUser {
        email_verified_by: (profile.email_verified == Some(true))
            .then(|| format!("from_{}", profile.provider)),
        email,
        first_name: profile.first_name.clone(),
        last_name: profile.last_name.clone(),
        image_url: profile.image_url.clone(),
        ..NewUser::default()
    };
    let user = match users::create(tx, new, now).await {
        Ok(user) => user,
        Err(AccountError::EmailTaken | AccountError::UsernameTaken) => return Ok(None),
        Err(AccountError::Store(error)) => return Err(error.into()),
        Err(AccountError::NotFound) => {
            return Err(StoreError::Invariant("a created account is gone".to_owned()).into());
        }
    };
    if accounts::link(tx, &user.id, profile, now).await?.is_none() {
        return Ok(None);
    }
    events::emit_user(identity, tx, EventType::UserCreated, &user.id, Some(ctx)).await?;
    tracing::info!(user.id = %user.id, provider = %provider.key, "account created through a provider");
    Ok(Some(user.id))
}

/// Connects a provider to the signed-in account that started the round trip.
async fn connect(
    identity: &Identity,
    provider: &ProviderSettings,
    profile: &Profile,
    user_id: &str,
    ctx: &RequestContext,
) -> Result<Finished, SocialError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    match accounts::find(&mut tx, &profile.provider, &profile.provider_user_id).await? {
        Some(account) if account.user_id == user_id => return Ok(Finished::Connected),
        Some(_) => {
            return Err(SocialError::LinkedElsewhere {
                provider: provider.name.clone(),
            });
        }
        None => {}
    }
    if accounts::link(&mut tx, user_id, profile, now)
        .await?
        .is_none()
    {
        return Err(SocialError::LinkedElsewhere {
            provider: provider.name.clone(),
        });
    }
    events::user_updated(identity, &mut tx, user_id, Some(ctx), now).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, provider = %provider.key, "provider connected");
    Ok(Finished::Connected)
}

/// Disconnects one of the signed-in user's provider accounts, unless it is the last way to
/// sign in (no password, no verified address, no other provider account).
///
/// # Errors
/// [`SocialError::NotFound`], [`SocialError::LastWayIn`], database failures.
pub async fn disconnect(
    identity: &Identity,
    user_id: &str,
    account_id: &str,
    ctx: &RequestContext,
) -> Result<(), SocialError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let user = users::get(&mut tx, user_id)
        .await?
        .ok_or(SocialError::NotFound)?;
    if !user.external_accounts.iter().any(|a| a.id == account_id) {
        return Err(SocialError::NotFound);
    }
    let other_ways = user.has_password
        || user
            .emails
            .iter()
            .any(|e| e.verification_status == "verified")
        || user.external_accounts.len() > 1;
    if !other_ways {
        return Err(SocialError::LastWayIn);
    }
    if !accounts::unlink(&mut tx, user_id, account_id).await? {
        return Err(SocialError::NotFound);
    }
    events::user_updated(identity, &mut tx, user_id, Some(ctx), now).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "provider disconnected");
    Ok(())
}
