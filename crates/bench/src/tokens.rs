//! Session-token verification on one core: `verify_session_token` (split, decode, JSON, header
//! and claim checks, RSA) against the bare RSA-2048 signature check it contains, on the same
//! tokens and the same key.

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_protocol::jwt::{
    KeySet, KeySource, SessionClaims, SigningKey, VerifyOptions, verify_session_token,
};
use rsa::pkcs8::EncodePrivateKey as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per measurement
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Alternating rounds; medians are reported
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Runs `work` over `items` repeatedly for `seconds`; operations per second.
fn rate<T>(items: &[T], seconds: u64, mut work: impl FnMut(&T) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut done = 0u64;
    while Instant::now() < deadline {
        for item in items {
            assert!(black_box(work(item)), "a verification failed");
        }
        done += u64::try_from(items.len()).unwrap_or(0);
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "operation counts are far below 2^52"
    )]
    let done = done as f64;
    done / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn run(args: &Args) -> Result<(), String> {
    let private = rsa::PrivateKey::new_with_exp(
        &mut getrandom::SysRng,
        2048,
        rsa::BoxedUint::from(65_537_u64),
    )
    .map_err(|e| e.to_string())?;
    let der = private.to_pkcs8_der().map_err(|e| e.to_string())?;
    let key = SigningKey::from_pkcs8_der(der.as_bytes(), "ins_bench").map_err(|e| e.to_string())?;
    let keys =
        KeySource::Set(KeySet::from_keys(vec![key.verifying_key()]).map_err(|e| e.to_string())?);
    let verifying = key.verifying_key();

    // Tokens shaped like the ones latchkey mints, all distinct.
    let now = latchkey_protocol::time::now_secs();
    let tokens: Vec<String> = (0..256)
        .map(|i| {
            let mut claims = SessionClaims::new(format!("user_bench{i:022}"), now + 3600);
            claims.sid = Some(format!("sess_bench{i:022}"));
            claims.iss = Some("https://auth.example.com".to_owned());
            claims.azp = Some("https://app.example.com".to_owned());
            claims.iat = Some(now);
            claims.nbf = Some(now - 10);
            claims.v = Some(2);
            claims.jti = Some(format!("jti_bench{i:022}"));
            key.sign(&claims)
        })
        .collect();
    let raw: Vec<(Vec<u8>, Vec<u8>)> = tokens
        .iter()
        .map(|t| {
            let (signing_input, signature) = t.rsplit_once('.').expect("three parts");
            (
                signing_input.as_bytes().to_vec(),
                URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
            )
        })
        .collect();
    let options = VerifyOptions::new(latchkey_protocol::time::now_ms())
        .with_issuer("https://auth.example.com")
        .with_authorized_parties(["https://app.example.com"]);

    let mut full = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..args.rounds {
        bare.push(rate(&raw, args.seconds, |(message, signature)| {
            verifying.verify_raw(message, signature)
        }));
        full.push(rate(&tokens, args.seconds, |token| {
            verify_session_token(token, &keys, &options).is_ok()
        }));
    }
    let (full, bare) = (median(full), median(bare));
    let template = {
        let mut claims = SessionClaims::new("user_bench", now + 60);
        claims.sid = Some("sess_bench".to_owned());
        claims
    };
    let signing = rate(&[template], args.seconds.min(2), |claims| {
        !key.sign(claims).is_empty()
    });
    println!(
        "session-token verification on one core, RSA-2048 (e = 65537), {} distinct {}-byte tokens; median of {} rounds of {} s",
        tokens.len(),
        tokens[0].len(),
        args.rounds,
        args.seconds
    );
    println!("  raw RSA-2048 PKCS#1 v1.5 verify: {bare:>9.0} /s");
    println!("  verify_session_token:            {full:>9.0} /s");
    println!(
        "  (minting, for reference:         {signing:>9.0} /s, {:.2} ms each)",
        1000.0 / signing
    );
    let ratio = full / bare;
    println!(
        "  ratio {:.1}% (target >= 90%: {})",
        100.0 * ratio,
        if ratio >= 0.90 { "met" } else { "missed" }
    );
    Ok(())
}
