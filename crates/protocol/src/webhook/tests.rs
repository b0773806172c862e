//! The vectors and negative cases of docs/PROTOCOLS.md §1.9, and header handling.

use super::*;

const V1_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const V1_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const V1_TS: i64 = 1_614_265_330;
const V1_BODY: &[u8] = br#"{"test": 2432232314}"#;
const V1_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn secret(text: &str) -> SigningSecret {
    SigningSecret::parse(text).unwrap()
}

fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> WebhookHeaders<'a> {
    WebhookHeaders {
        id,
        timestamp: ts,
        signature: sig,
    }
}

fn verifier(text: &str) -> Verifier {
    Verifier::new(vec![secret(text)])
}

#[test]
fn v1_to_v4_sign_as_published() {
    let cases = [
        (V1_SECRET, V1_ID, V1_TS, V1_BODY, V1_SIG),
        (
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
        (
            "whsec_plJ3nmyCDGBKInavdOK15jsl",
            "msg_loFOjxBNrRLzqYUf",
            1_731_705_121,
            br#"{"event_type":"ping","data":{"success":true}}"#,
            "v1,rAvfW3dJ/X/qxhsaXPOyyCGmRKsaKWcsNccKXlIktD0=",
        ),
        (
            V1_SECRET,
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            1_716_883_200,
            br#"{"data":{"deleted":true,"id":"user_2g7np7Hrk0SN6kj5EDMLDaKNL0S","object":"user"},"instance_id":"ins_2g7np7Hrk0SN6kj5EDMLDaKNL0S","object":"event","timestamp":1716883200000,"type":"user.deleted"}"#,
            "v1,hCVc/AatZ2durwrtpyDfrUehp0XIEUySoA+QNxkCELc=",
        ),
    ];
    for (secret_text, id, ts, body, expected) in cases {
        assert_eq!(
            secret(secret_text).sign(id, ts, body),
            expected,
            "signing {id}"
        );
        let ts_text = ts.to_string();
        let verified = verifier(secret_text)
            .verify(&headers(id, &ts_text, expected), body, ts)
            .unwrap();
        assert_eq!(
            verified,
            Verified {
                id: id.to_owned(),
                timestamp: ts
            }
        );
    }
}

#[test]
fn n1_n2_n3_n4_wrong_or_partial_signatures_are_rejected() {
    let ts = V1_TS.to_string();
    let v = verifier(V1_SECRET);
    for bad in [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
        "v1,dawfeoifkpqwoekfpqoekf",
        "v1,",
        &V1_SIG[..8],
        "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",
    ] {
        assert_eq!(
            v.verify(&headers(V1_ID, &ts, bad), V1_BODY, V1_TS),
            Err(VerifyError::InvalidSignature),
            "{bad}"
        );
    }
}

#[test]
fn n4_the_rust_vector_fails_at_the_current_time() {
    let now = crate::time::now_secs();
    let v = verifier("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let ts = now.to_string();
    assert_eq!(
        v.verify(
            &headers(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                &ts,
                "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU="
            ),
            body,
            now
        ),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn n5_any_matching_v1_entry_wins_and_other_versions_are_ignored() {
    let ts = V1_TS.to_string();
    let junk = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    let list = format!("v1,{junk} v2,{junk} {V1_SIG} v1,{junk}");
    assert!(
        verifier(V1_SECRET)
            .verify(&headers(V1_ID, &ts, &list), V1_BODY, V1_TS)
            .is_ok()
    );
    // The valid signature under any version other than v1 does not count.
    let valid_b64 = &V1_SIG[3..];
    for version in ["v1a", "v2", "V1", ""] {
        let list = format!("{version},{valid_b64}");
        assert_eq!(
            verifier(V1_SECRET).verify(&headers(V1_ID, &ts, &list), V1_BODY, V1_TS),
            Err(VerifyError::InvalidSignature),
            "{list}"
        );
    }
}

#[test]
fn n6_several_wrong_signatures_fail_until_a_right_one_joins() {
    let ts = V1_TS.to_string();
    let wrong = "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=";
    let v = verifier(V1_SECRET);
    assert_eq!(
        v.verify(&headers(V1_ID, &ts, wrong), V1_BODY, V1_TS),
        Err(VerifyError::InvalidSignature)
    );
    let mut entries: Vec<&str> = wrong.split(' ').collect();
    entries.insert(2, V1_SIG);
    let with_valid = entries.join(" ");
    assert!(
        v.verify(&headers(V1_ID, &ts, &with_valid), V1_BODY, V1_TS)
            .is_ok()
    );
}

#[test]
fn n7_timestamps_more_than_300_seconds_away_are_rejected_both_ways() {
    let s = secret(V1_SECRET);
    let v = Verifier::new(vec![s.clone()]);
    let now = 1_700_000_000;
    for (offset, expected) in [
        (-301, Err(VerifyError::TimestampTooOld)),
        (301, Err(VerifyError::TimestampTooNew)),
        (-300, Ok(())),
        (300, Ok(())),
    ] {
        let ts = now + offset;
        let sig = s.sign(V1_ID, ts, V1_BODY);
        let ts_text = ts.to_string();
        let h = headers(V1_ID, &ts_text, &sig);
        assert_eq!(
            v.verify(&h, V1_BODY, now).map(|_| ()),
            expected,
            "offset {offset}"
        );
        assert!(
            v.verify_ignoring_timestamp(&h, V1_BODY).is_ok(),
            "offset {offset}"
        );
    }
}

#[test]
fn n8_a_timestamp_other_than_the_signed_one_fails_even_ignoring_age() {
    let s = secret(V1_SECRET);
    let sig = s.sign(V1_ID, V1_TS, V1_BODY);
    let ts = (V1_TS + 1).to_string();
    let v = Verifier::new(vec![s]);
    assert_eq!(
        v.verify_ignoring_timestamp(&headers(V1_ID, &ts, &sig), V1_BODY),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn n9_negative_timestamps_fail_verification_but_sign_fine() {
    let s = secret(V1_SECRET);
    let sig = s.sign(V1_ID, -1, V1_BODY);
    let v = Verifier::new(vec![s]);
    let h = headers(V1_ID, "-1", &sig);
    assert_eq!(v.verify(&h, V1_BODY, 0), Err(VerifyError::InvalidTimestamp));
    assert!(v.verify_ignoring_timestamp(&h, V1_BODY).is_ok());
}

#[test]
fn n10_non_integer_timestamps_are_rejected() {
    let v = verifier(V1_SECRET);
    for ts in ["hello", "1614265330abc", "1614265330.9", "1e9", ""] {
        assert_eq!(
            v.verify(&headers(V1_ID, ts, V1_SIG), V1_BODY, V1_TS),
            Err(VerifyError::InvalidTimestamp),
            "{ts:?}"
        );
    }
}

#[test]
fn n11_each_missing_header_is_named_in_both_families() {
    let full: Vec<(String, String)> = vec![
        ("id".into(), V1_ID.into()),
        ("timestamp".into(), V1_TS.to_string()),
        ("signature".into(), V1_SIG.into()),
    ];
    for family in ["svix", "webhook"] {
        for missing in ["id", "timestamp", "signature"] {
            let present: Vec<(String, String)> = full
                .iter()
                .filter(|(name, _)| name != missing)
                .map(|(name, value)| (format!("{family}-{name}"), value.clone()))
                .collect();
            let result = WebhookHeaders::from_lookup(|name| {
                present
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_bytes())
            });
            let expected: &'static str = match missing {
                "id" => "id",
                "timestamp" => "timestamp",
                _ => "signature",
            };
            assert_eq!(
                result,
                Err(VerifyError::MissingHeader(expected)),
                "{family} without {missing}"
            );
        }
    }
}

#[test]
fn svix_headers_win_over_webhook_headers_and_values_are_trimmed() {
    let table = [
        ("svix-id", " msg_a "),
        ("webhook-id", "msg_b"),
        ("webhook-timestamp", "12"),
        ("webhook-signature", "v1,x"),
    ];
    let h = WebhookHeaders::from_lookup(|name| {
        table
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    })
    .unwrap();
    assert_eq!(
        h,
        WebhookHeaders {
            id: "msg_a",
            timestamp: "12",
            signature: "v1,x"
        }
    );

    let bad = [
        ("svix-id", "msg\u{7f}"),
        ("svix-timestamp", "1"),
        ("svix-signature", "v1,x"),
    ];
    let err = WebhookHeaders::from_lookup(|name| {
        bad.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    });
    assert_eq!(err, Err(VerifyError::InvalidHeader("id")));
}

#[test]
fn n12_the_whsec_prefix_is_optional() {
    let with = secret(V1_SECRET);
    let without = secret(V1_SECRET.trim_start_matches("whsec_"));
    assert_eq!(with, without);
    assert_eq!(without.sign(V1_ID, V1_TS, V1_BODY), V1_SIG);
    // Unpadded base64 is accepted too.
    let padded = SigningSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==").unwrap();
    let unpadded = SigningSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
    assert_eq!(padded, unpadded);
}

#[test]
fn n13_empty_and_malformed_secrets_are_refused() {
    assert_eq!(SigningSecret::parse(""), Err(SecretError::Empty));
    assert_eq!(SigningSecret::parse("whsec_"), Err(SecretError::Empty));
    assert_eq!(
        SigningSecret::parse("whsec_not base64!"),
        Err(SecretError::NotBase64)
    );
    assert_eq!(
        SigningSecret::parse("v1,whsec_abc"),
        Err(SecretError::LooksLikeSignature)
    );
}

#[test]
fn rotation_signs_with_every_secret_and_either_verifies() {
    let old = SigningSecret::generate();
    let new = SigningSecret::generate();
    assert_ne!(old, new);
    let header = sign_all(&[new.clone(), old.clone()], V1_ID, V1_TS, V1_BODY);
    assert_eq!(header.split(' ').count(), 2);
    let ts = V1_TS.to_string();
    for only in [old, new] {
        let v = Verifier::new(vec![only]);
        assert!(
            v.verify(&headers(V1_ID, &ts, &header), V1_BODY, V1_TS)
                .is_ok()
        );
    }
    let stranger = Verifier::new(vec![SigningSecret::generate()]);
    assert_eq!(
        stranger.verify(&headers(V1_ID, &ts, &header), V1_BODY, V1_TS),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn a_tampered_body_or_id_fails() {
    let ts = V1_TS.to_string();
    let v = verifier(V1_SECRET);
    assert_eq!(
        v.verify(
            &headers(V1_ID, &ts, V1_SIG),
            br#"{"test": 2432232315}"#,
            V1_TS
        ),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        v.verify(&headers("msg_other", &ts, V1_SIG), V1_BODY, V1_TS),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn generated_secrets_round_trip_and_debug_hides_them() {
    let s = SigningSecret::generate();
    let text = s.expose();
    assert!(text.starts_with("whsec_"));
    assert_eq!(text.len(), "whsec_".len() + 32);
    assert_eq!(SigningSecret::parse(&text).unwrap(), s);
    assert_eq!(format!("{s:?}"), "SigningSecret(redacted)");
}
