//! The per-request work of the webhooks before any decision: the Twilio signature check and
//! form parse (the fixture's 28-field incoming-call body), the Vonage JWT check and JSON parse,
//! the Telnyx Ed25519 check, and classifying the caller's number.
//!
//! `cargo bench --bench webhook`
// Set-up of fixed, known-good fixtures: a failure there is a bug in the benchmark itself.
#![allow(clippy::panic)]

use std::hint::black_box;

use bytes::Bytes;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signer, SigningKey};
use fairline::config::Secret;
use fairline::domain::CallerId;
use fairline::providers::{telnyx, twilio, vonage};

const PUBLIC_URL: &str = "https://calls.example.org";
const VOICE_PATH: &str = "/webhooks/twilio/voice";
const VONAGE_BODY: &str = r#"{"from":"447700900123","to":"442079460000","uuid":"63f61863-4a51-4f6b-86e1-46edebcf9356","conversation_uuid":"CON-f972836a-550f-45fa-956c-12a2ab5b7d22"}"#;

fn fixture() -> Bytes {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/twilio/incoming-call.txt"
    );
    match std::fs::read(path) {
        Ok(b) => Bytes::from(b),
        Err(e) => panic!("{path}: {e}"),
    }
}

fn twilio(c: &mut Criterion) {
    let body = fixture();
    let token = Secret::new("bench-twilio-auth-token-00000000");
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let signature =
        twilio::compute_signature(&format!("{PUBLIC_URL}{VOICE_PATH}"), &fields, &token);
    let verifier = twilio::Verifier::new(PUBLIC_URL, &token);
    let request =
        || twilio::UnverifiedRequest::new(VOICE_PATH, Some(signature.clone()), body.clone());
    match request().verify_with(&verifier) {
        Ok(form) => assert!(form.signature_checked()),
        Err(e) => panic!("the fixture does not verify: {e}"),
    }

    let mut g = c.benchmark_group("twilio");
    g.bench_function("verify signature and parse form (prepared key)", |b| {
        b.iter(|| black_box(request().verify_with(black_box(&verifier))))
    });
    g.bench_function("verify signature and parse form (key per request)", |b| {
        b.iter(|| black_box(request().verify(PUBLIC_URL, black_box(&token))))
    });
    g.bench_function("parse form only (signatures off)", |b| {
        b.iter(|| black_box(request().skip_verification()))
    });
    g.bench_function("incoming call from a verified form", |b| {
        let form = match request().skip_verification() {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        b.iter(|| black_box(twilio::incoming_call(black_box(&form))))
    });
    g.finish();
}

fn vonage(c: &mut Criterion) {
    let secret = Secret::new("bench-vonage-signature-secret-0000000000");
    let claims = vonage::WebhookClaims {
        iat: Utc::now().timestamp(),
        jti: Some("bench".into()),
        payload_hash: Some(vonage::payload_hash(VONAGE_BODY.as_bytes())),
        ..Default::default()
    };
    let token = match vonage::sign(&claims, &secret) {
        Ok(t) => format!("Bearer {t}"),
        Err(e) => panic!("{e}"),
    };
    let verifier = vonage::signature::Verifier::new(&secret);
    let body = Bytes::from_static(VONAGE_BODY.as_bytes());
    let request = || vonage::UnverifiedRequest::post(Some(&token), body.clone());
    let now = Utc::now();
    match request().verify_with(&verifier, now) {
        Ok(p) => assert!(p.signature_checked()),
        Err(e) => panic!("the body does not verify: {e}"),
    }

    let mut g = c.benchmark_group("vonage");
    g.bench_function("verify JWT (prepared key)", |b| {
        b.iter(|| black_box(request().verify_with(black_box(&verifier), now)))
    });
    g.bench_function("verify JWT (key per request)", |b| {
        b.iter(|| black_box(request().verify(black_box(&secret), now)))
    });
    g.bench_function("parse answer body", |b| {
        let payload = request().skip_verification();
        b.iter(|| {
            let fields = match black_box(&payload).fields() {
                Ok(f) => f,
                Err(e) => panic!("{e}"),
            };
            black_box(vonage::answer(&fields))
        })
    });
    g.finish();
}

fn telnyx(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let public = key.verifying_key().to_bytes();
    let body = match std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/telnyx/call_initiated_inbound.json"
    )) {
        Ok(b) => Bytes::from(b),
        Err(e) => panic!("{e}"),
    };
    let now = Utc::now();
    let ts = now.timestamp().to_string();
    let mut message = format!("{ts}|").into_bytes();
    message.extend_from_slice(&body);
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&message).to_bytes());
    let request = || telnyx::UnverifiedEvent::new(Some(&sig), Some(&ts), body.clone());
    if let Err(e) = request().verify(&public, now) {
        panic!("the fixture does not verify: {e}");
    }
    c.bench_function("telnyx/verify Ed25519 signature", |b| {
        b.iter(|| black_box(request().verify(black_box(&public), now)))
    });
}

fn caller(c: &mut Criterion) {
    let mut g = c.benchmark_group("caller");
    g.bench_function("classify +44 (Twilio, Telnyx)", |b| {
        b.iter(|| black_box(CallerId::classify(black_box("+442920123456"))))
    });
    g.bench_function("classify 44 without + (Vonage)", |b| {
        b.iter(|| black_box(CallerId::classify(black_box("442920123456"))))
    });
    g.bench_function("classify national 0 (full parser)", |b| {
        b.iter(|| black_box(CallerId::classify(black_box("02920 123456"))))
    });
    g.finish();
}

criterion_group!(benches, twilio, vonage, telnyx, caller);
criterion_main!(benches);
