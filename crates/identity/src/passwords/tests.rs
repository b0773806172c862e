//! Hashing, verification, the queue bound and the new-password policy.

use std::time::Instant;

use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};
use tokio::task::JoinSet;

use super::*;

fn pw(text: &str) -> Password {
    Password::new(text)
}

fn hasher() -> PasswordHasher {
    PasswordHasher::new(1).unwrap()
}

/// A hash made elsewhere or earlier, with cheap parameters of our choosing.
fn foreign_hash(algorithm: Algorithm, m_cost: u32, t_cost: u32, password: &str) -> String {
    let params = Params::new(m_cost, t_cost, 1, None).unwrap();
    Argon2::new(algorithm, Version::V0x13, params)
        .hash_password_with_salt(password.as_bytes(), b"sixteen byte slt")
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_hashed_password_verifies() {
    let hasher = hasher();
    let hash = hasher.hash(pw("correct horse battery")).await.unwrap();
    let verified = hasher.verify(pw("correct horse battery"), Some(hash.as_str()));
    assert!(verified.await.unwrap());
}

#[tokio::test]
async fn a_wrong_password_does_not_verify() {
    let hasher = hasher();
    let hash = hasher.hash(pw("correct horse battery")).await.unwrap();
    for wrong in [
        "correct horse batter",
        "Correct horse battery",
        "correct horse battery ",
        "",
    ] {
        let verified = hasher.verify(pw(wrong), Some(hash.as_str())).await.unwrap();
        assert!(!verified, "{wrong:?} verified");
    }
}

#[tokio::test]
async fn an_unknown_account_never_verifies() {
    let hasher = hasher();
    assert!(!hasher.verify(pw("anything at all"), None).await.unwrap());
    assert!(!hasher.verify(pw(""), None).await.unwrap());
}

#[tokio::test]
async fn an_unknown_account_costs_as_much_as_a_wrong_password() {
    let hasher = hasher();
    let hash = hasher.hash(pw("correct horse battery")).await.unwrap();
    // Back-to-back pairs, passing on the first pair within a factor of two: other processes
    // share the two cores and the workers run at a lower priority, so one pair can be skewed by
    // noise, but a dummy check that skipped the work would be ~1000 times faster in every pair.
    let mut pairs = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let verified = hasher.verify(pw("wrong password"), Some(hash.as_str()));
        assert!(!verified.await.unwrap());
        let known = start.elapsed();

        let start = Instant::now();
        assert!(!hasher.verify(pw("wrong password"), None).await.unwrap());
        let unknown = start.elapsed();

        if unknown * 2 >= known {
            return;
        }
        pairs.push((known, unknown));
    }
    panic!("an unknown account was always much faster (known, unknown): {pairs:?}");
}

#[tokio::test]
async fn hashes_are_argon2id_with_owasp_parameters_and_a_fresh_salt() {
    let hasher = hasher();
    let first = hasher.hash(pw("correct horse battery")).await.unwrap();
    let second = hasher.hash(pw("correct horse battery")).await.unwrap();

    assert!(
        first
            .as_str()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        first.as_str()
    );
    let parsed = Phc::new(first.as_str()).unwrap();
    assert_eq!(parsed.salt.unwrap().len(), 16);
    assert_eq!(parsed.hash.unwrap().len(), 32);
    assert_ne!(first, second, "two hashes of one password share a salt");
    assert!(!needs_rehash(first.as_str()));
}

#[tokio::test]
async fn hashes_with_other_argon2_parameters_verify_and_ask_for_a_rehash() {
    let hasher = hasher();
    let cases = [
        foreign_hash(Algorithm::Argon2id, 1024, 1, "old parameters"),
        foreign_hash(Algorithm::Argon2id, M_COST_KIB, 3, "old parameters"),
        foreign_hash(Algorithm::Argon2i, M_COST_KIB, T_COST, "old parameters"),
        foreign_hash(Algorithm::Argon2d, 64, 1, "old parameters"),
    ];
    for stored in &cases {
        assert!(needs_rehash(stored), "{stored}");
        let right = hasher.verify(pw("old parameters"), Some(stored)).await;
        assert!(right.unwrap(), "{stored}");
        let wrong = hasher.verify(pw("new parameters"), Some(stored)).await;
        assert!(!wrong.unwrap(), "{stored}");
    }
}

#[tokio::test]
async fn stored_hashes_latchkey_cannot_read_are_an_error_not_a_mismatch() {
    let hasher = hasher();
    let real = foreign_hash(Algorithm::Argon2id, 64, 1, "x");
    // Same salt and output, but asking for 4 GiB: refused before any memory is allocated.
    let greedy = real.replace("m=64,", "m=4194304,");
    let cases = [
        "",
        "not a hash",
        // bcrypt (imported digests) is read, but not at a cost that takes minutes to check.
        "$2b$31$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "pbkdf2_sha256:pbkdf2_sha256$1000$salt",
        "$argon2id$v=19$m=19456,t=2,p=1",
        &greedy,
    ];
    for stored in cases {
        assert!(needs_rehash(stored), "{stored}");
        let outcome = hasher.verify(pw("x"), Some(stored)).await;
        assert!(
            matches!(outcome, Err(HashError::InvalidHash)),
            "{stored}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_full_queue_refuses_at_once_instead_of_waiting() {
    let hasher = PasswordHasher::with_queue(1, 1).unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let hasher = hasher.clone();
        tasks.spawn(async move { hasher.hash(pw("correct horse battery")).await });
    }
    let outcomes = tasks.join_all().await;
    let busy = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(HashError::Busy)))
        .count();
    let hashed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert!(busy >= 1, "nothing was refused: {outcomes:?}");
    assert!(hashed >= 1, "nothing was hashed: {outcomes:?}");
    assert_eq!(busy + hashed, outcomes.len(), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_sign_ins_all_complete() {
    let hasher = PasswordHasher::new(2).unwrap();
    assert_eq!(hasher.workers(), 2);
    let stored = hasher.hash(pw("correct horse battery")).await.unwrap();
    let mut tasks = JoinSet::new();
    for attempt in 0..16 {
        let hasher = hasher.clone();
        let stored = stored.clone();
        tasks.spawn(async move {
            let password = if attempt % 2 == 0 {
                "correct horse battery"
            } else {
                "wrong"
            };
            let known = hasher.verify(pw(password), Some(stored.as_str())).await;
            let unknown = hasher.verify(pw(password), None).await;
            (attempt % 2 == 0, known.unwrap(), unknown.unwrap())
        });
    }
    for (should_match, known, unknown) in tasks.join_all().await {
        assert_eq!(known, should_match);
        assert!(!unknown);
    }
}

#[tokio::test]
async fn the_hasher_outlives_the_handle_it_was_cloned_from() {
    let original = hasher();
    let clone = original.clone();
    drop(original);
    let hash = clone.hash(pw("correct horse battery")).await.unwrap();
    let verified = clone.verify(pw("correct horse battery"), Some(hash.as_str()));
    assert!(verified.await.unwrap());
}

#[test]
fn default_for_machine_has_a_worker_per_core() {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(
        PasswordHasher::default_for_machine().unwrap().workers(),
        cores
    );
    assert_eq!(PasswordHasher::new(0).unwrap().workers(), 1);
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let password = pw("hunter2hunter2");
    assert_eq!(format!("{password:?}"), "Password(redacted)");
    assert_eq!(password.expose(), "hunter2hunter2");

    let stored = super::hash::hash_password(b"hunter2hunter2").unwrap();
    assert_eq!(format!("{stored:?}"), "PasswordHash(redacted)");
    let hasher = format!("{:?}", hasher());
    assert!(!hasher.contains("argon2"), "{hasher}");
}

#[test]
fn length_is_8_to_256_characters_as_typed() {
    assert_eq!(
        check_new_password("xk7#qlm", &[]),
        Err(PolicyError::TooShort)
    );
    assert_eq!(check_new_password("xk7#qlmz", &[]), Ok(()));
    let longest = "xk7#".repeat(64);
    assert_eq!(check_new_password(&longest, &[]), Ok(()));
    let too_long = format!("{longest}x");
    assert_eq!(
        check_new_password(&too_long, &[]),
        Err(PolicyError::TooLong)
    );
    assert_eq!(check_new_password("", &[]), Err(PolicyError::TooShort));
    // Spaces count and are not trimmed.
    assert_eq!(check_new_password("  xk7q  ", &[]), Ok(()));
    assert_eq!(check_new_password("   xk7  ", &[]), Ok(()));
}

#[test]
fn length_counts_characters_not_bytes() {
    // Seven characters, 21 bytes.
    assert_eq!(
        check_new_password("日本語のパスワ", &[]),
        Err(PolicyError::TooShort)
    );
    assert_eq!(check_new_password("日本語のパスワー", &[]), Ok(()));
    // 256 characters, 768 bytes.
    assert_eq!(check_new_password(&"語".repeat(256), &[]), Ok(()));
    assert_eq!(
        check_new_password(&"語".repeat(257), &[]),
        Err(PolicyError::TooLong)
    );
}

#[test]
fn common_passwords_are_refused_in_any_case() {
    for common in [
        "password",
        "PASSWORD",
        "Password123",
        "password1",
        "12345678",
        "iloveyou",
    ] {
        assert_eq!(
            check_new_password(common, &[]),
            Err(PolicyError::TooCommon),
            "{common}"
        );
    }
    assert_eq!(check_new_password("password-xk7q", &[]), Ok(()));
}

#[test]
fn the_bundled_list_has_exactly_ten_thousand_lower_case_entries() {
    let list = super::policy::common_passwords();
    assert_eq!(list.len(), 10_000);
    assert!(list.iter().all(|entry| !entry.is_empty()));
    assert!(
        list.iter()
            .all(|entry| *entry == entry.to_ascii_lowercase())
    );
    assert!(list.contains("123456") && list.contains("password"));
}

#[test]
fn the_users_own_identifiers_are_refused() {
    let context = [
        "Ada.Lovelace@example.com",
        "ada.lovelace",
        "lovelace1815",
        "ada",
    ];
    for personal in ["ada.lovelace@example.com", "ADA.LOVELACE", "Lovelace1815"] {
        assert_eq!(
            check_new_password(personal, &context),
            Err(PolicyError::ContainsPersonalInfo),
            "{personal}"
        );
    }
    // Only the whole password is compared: containing an identifier is fine.
    assert_eq!(
        check_new_password("lovelace1815-analytical", &context),
        Ok(())
    );
    assert_eq!(
        check_new_password("lovelace1815-analytical", &["", "a"]),
        Ok(())
    );
}

#[test]
fn policy_messages_are_fit_for_a_form() {
    assert_eq!(
        PolicyError::TooShort.to_string(),
        "Your password must be at least 8 characters long."
    );
    assert_eq!(
        PolicyError::TooLong.to_string(),
        "Your password must be at most 256 characters long."
    );
    for error in [PolicyError::TooCommon, PolicyError::ContainsPersonalInfo] {
        let message = error.to_string();
        assert!(message.ends_with('.') && message.chars().next().unwrap().is_uppercase());
    }
}

#[tokio::test]
async fn idle_workers_give_their_memory_back() {
    let hasher = PasswordHasher::new(1).unwrap();
    assert_eq!(
        hash::kept_memory(),
        0,
        "the thread that made the dummy hash keeps nothing"
    );
    let hashed = hasher.hash(pw("correct horse battery")).await.unwrap();
    let kept = hasher.run(|| Ok(hash::kept_memory())).await.unwrap();
    assert!(
        kept >= 19 * 1024 * 1024,
        "a worker keeps its memory between hashes: {kept}"
    );
    tokio::time::sleep(hasher::IDLE_RELEASE + std::time::Duration::from_secs(1)).await;
    let kept = hasher.run(|| Ok(hash::kept_memory())).await.unwrap();
    assert_eq!(kept, 0, "an idle worker gives its memory back");
    // And hashes again afterwards.
    assert!(
        hasher
            .verify(pw("correct horse battery"), Some(hashed.as_str()))
            .await
            .unwrap()
    );
}
