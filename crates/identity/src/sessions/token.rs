//! Session tokens: the 60-second RS256 JWT minted for a live session, as Clerk mints them.

use latchkey_protocol::jwt::SessionClaims;

use super::SessionRecord;
use crate::state::Identity;

/// Lifetime of a session token (`exp - iat`), as Clerk mints them.
pub const SESSION_TOKEN_SECS: i64 = 60;

/// Clerk's `fva` claim: minutes since the session's holder last proved a first factor, and
/// a second one (`-1`: never), so an app can demand a recent one (docs/PROTOCOLS.md §4.3).
#[must_use]
pub fn factor_verification_age(session: &SessionRecord, now_ms: i64) -> [i64; 2] {
    let minutes = |at: i64| (now_ms - at).max(0) / 60_000;
    [
        minutes(session.first_factor_ms()),
        session.second_factor_at.map_or(-1, minutes),
    ]
}

/// A 60-second session token for `session`, as Clerk mints them. The RSA signature costs
/// over half a millisecond of CPU, so it is made on the blocking pool, not on a thread that
/// serves requests.
pub async fn mint_session_token(identity: &Identity, session: &SessionRecord) -> String {
    mint_session_token_for(identity, session, &identity.config().origin()).await
}

/// [`mint_session_token`] for a page on `azp` (Clerk's `azp`: the origin the token was asked
/// from), as the Frontend API mints them for an app's pages.
pub async fn mint_session_token_for(
    identity: &Identity,
    session: &SessionRecord,
    azp: &str,
) -> String {
    let now = identity.config().clock.now_secs();
    let mut claims = SessionClaims::new(session.user_id.clone(), now + SESSION_TOKEN_SECS);
    claims.sid = Some(session.id.clone());
    claims.iss = Some(identity.config().token_issuer());
    claims.azp = Some(azp.to_owned());
    claims.iat = Some(now);
    claims.nbf = Some(now - 10);
    claims.v = Some(2);
    claims.jti = Some(latchkey_protocol::id::new_id("jti"));
    claims.extra.insert(
        "fva".to_owned(),
        serde_json::json!(factor_verification_age(session, now * 1000)),
    );
    if let Some(actor) = &session.actor_id {
        // Clerk's actor claim: the token is an operator's, acting as `sub`.
        claims
            .extra
            .insert("act".to_owned(), serde_json::json!({ "sub": actor }));
    }
    let key = identity.keys().current();
    match tokio::task::spawn_blocking(move || key.sign(&claims)).await {
        Ok(token) => token,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
