use std::time::Duration;

use latchkey_protocol::jwt::SessionClaims;
use latchkey_protocol::time::Clock;

use super::{Entry, KEEP_MS, Revocation, Revocations};

fn claims(sub: &str, sid: &str, iat_ms: i64) -> SessionClaims {
    let mut claims = SessionClaims::new(sub.to_owned(), iat_ms / 1000 + 60);
    claims.sid = Some(sid.to_owned());
    claims.iat = Some(iat_ms / 1000);
    claims
}

#[test]
fn a_revoked_session_is_refused_and_its_neighbours_are_not() {
    let set = Revocations::new(Clock::system());
    let now = set.now_ms();
    assert!(!set.refuses(&claims("user_a", "sess_1", now)));
    set.insert(Entry::new(Revocation::Session("sess_1".to_owned()), now));
    assert_eq!(set.len(), 1);
    assert!(set.refuses(&claims("user_a", "sess_1", now)));
    assert!(!set.refuses(&claims("user_a", "sess_2", now)));
    assert!(!set.refuses(&claims("user_b", "sess_3", now)));
    let mut no_sid = claims("user_a", "sess_1", now);
    no_sid.sid = None;
    assert!(!set.refuses(&no_sid));
}

#[test]
fn a_ban_refuses_tokens_issued_up_to_it_and_not_after() {
    let set = Revocations::new(Clock::system());
    let now = set.now_ms();
    let banned_at = now - now % 1000 + 500;
    set.insert(Entry::new(
        Revocation::User {
            id: "user_a".to_owned(),
            not_after_ms: banned_at,
        },
        now,
    ));
    assert!(set.refuses(&claims("user_a", "sess_1", banned_at - 30_000)));
    assert!(
        set.refuses(&claims("user_a", "sess_1", banned_at)),
        "iat is in whole seconds: the ban's own second is refused"
    );
    assert!(
        !set.refuses(&claims("user_a", "sess_9", banned_at + 1_000)),
        "a token minted after an unban works"
    );
    assert!(!set.refuses(&claims("user_b", "sess_2", banned_at - 30_000)));
    let mut no_iat = claims("user_a", "sess_1", banned_at + 1_000);
    no_iat.iat = None;
    assert!(set.refuses(&no_iat));
}

#[test]
fn entries_are_forgotten_once_every_token_they_could_refuse_has_expired() {
    let clock = Clock::system();
    let set = Revocations::new(clock.clone());
    let now = set.now_ms();
    set.insert(Entry::new(Revocation::Session("sess_1".to_owned()), now));
    set.insert(Entry::new(
        Revocation::User {
            id: "user_b".to_owned(),
            not_after_ms: now,
        },
        now,
    ));
    let token = claims("user_a", "sess_1", now);
    let banned = claims("user_b", "sess_2", now);
    // The last token the session could have had expires 60 s after now, and is accepted for
    // 5 s more.
    clock.advance(Duration::from_millis(65_000));
    assert!(set.refuses(&token) && set.refuses(&banned));
    clock.advance(Duration::from_millis(
        u64::try_from(KEEP_MS - 65_000).unwrap(),
    ));
    assert!(!set.refuses(&token) && !set.refuses(&banned));
    set.forget_expired(set.now_ms());
    assert!(set.is_empty());
    // Expired entries are not taken in again.
    set.insert(Entry::new(Revocation::Session("sess_1".to_owned()), now));
    assert!(set.is_empty());
}

#[test]
fn repeated_entries_keep_the_latest_expiry_and_ban() {
    let clock = Clock::system();
    let set = Revocations::new(clock.clone());
    let now = set.now_ms();
    set.insert(Entry::new(Revocation::Session("sess_1".to_owned()), now));
    set.insert(Entry::new(
        Revocation::Session("sess_1".to_owned()),
        now + 20_000,
    ));
    set.insert(Entry::new(Revocation::Session("sess_1".to_owned()), now));
    assert_eq!(set.len(), 1);
    clock.advance(Duration::from_millis(
        u64::try_from(KEEP_MS + 10_000).unwrap(),
    ));
    assert!(set.refuses(&claims("user_a", "sess_1", now)));
}
