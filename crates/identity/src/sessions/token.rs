//! Session tokens: the 60-second RS256 JWT minted for a live session, as Clerk mints them.

use latchkey_protocol::jwt::SessionClaims;

use super::SessionRecord;
use crate::state::Identity;

/// Lifetime of a session token (`exp - iat`), as Clerk mints them.
pub const SESSION_TOKEN_SECS: i64 = 60;

/// A 60-second session token for `session`, as Clerk mints them. The RSA signature costs
/// over half a millisecond of CPU, so it is made on the blocking pool, not on a thread that
/// serves requests.
pub async fn mint_session_token(identity: &Identity, session: &SessionRecord) -> String {
    let now = identity.config().clock.now_secs();
    let mut claims = SessionClaims::new(session.user_id.clone(), now + SESSION_TOKEN_SECS);
    claims.sid = Some(session.id.clone());
    claims.iss = Some(identity.config().issuer());
    claims.azp = Some(identity.config().origin());
    claims.iat = Some(now);
    claims.nbf = Some(now - 10);
    claims.v = Some(2);
    claims.jti = Some(latchkey_protocol::id::new_id("jti"));
    let key = identity.keys().current();
    match tokio::task::spawn_blocking(move || key.sign(&claims)).await {
        Ok(token) => token,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
