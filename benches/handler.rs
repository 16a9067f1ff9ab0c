//! The whole Twilio incoming-call webhook in process, to compare changes to its per-request
//! work without HTTP, the kernel or the machine's scheduling noise (which move bench/run.sh's
//! figures by ±15% between minutes on a 2-core machine).
//!
//! One signed request for a caller under no arrangement goes through `fairline::app` as
//! `fairline serve` builds it: routing, body, signature check and form, caller classified, the
//! cached negative lookup, the decision, the live-call row queued (its writer running), metrics,
//! and the "call decided" log line formatted as in production (to a discarded writer). Beside
//! it, as the baseline measured in the same run, the same request through a router that
//! answers a fixed TwiML document after reading the body (as `examples/static_twiml.rs`).
//! The ratio of the two times is the figure to compare between changes.
//!
//! `cargo bench --bench handler`
// Set-up of fixed, known-good fixtures: a failure there is a bug in the benchmark itself.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use fairline::config::Secret;
use fairline::providers::twilio;
use fairline::{AppState, Overrides};
use tower::ServiceExt;

/// The same allocator as the `fairline` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PUBLIC_URL: &str = "https://calls.example.org";
const VOICE_PATH: &str = "/webhooks/twilio/voice";
const AUTH_TOKEN: &str = "bench-twilio-auth-token-00000000";
const STATIC_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Redirect method="POST">https://example.org/twiml/main-menu</Redirect></Response>"#;

/// The fixture's incoming call, from a number under no arrangement.
fn unknown_caller_body() -> Bytes {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/twilio/incoming-call.txt"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(text.contains("From=%2B442920123456"));
    Bytes::from(text.replace("%2B442920123456", "%2B442920999999"))
}

fn config(db: &std::path::Path) -> fairline::Config {
    let toml = format!(
        r#"
[server]
bind = "127.0.0.1:0"
public_url = "{PUBLIC_URL}"

[storage]
url = "sqlite://{}"

[organisation]
name = "Bench Ombudsman"
timezone = "Europe/London"
language = "en"

[twilio]
verify_signatures = true
auth_token = "{AUTH_TOKEN}"
continue_url = "https://example.org/twiml/main-menu"
"#,
        db.display()
    );
    fairline::config::from_sources(&toml, &[]).unwrap_or_else(|e| panic!("config: {e}"))
}

fn request(body: &Bytes, signature: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(VOICE_PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(Body::from(body.clone()))
        .unwrap()
}

async fn send(router: &Router, body: &Bytes, signature: &str) -> Bytes {
    let response = router
        .clone()
        .oneshot(request(body, signature))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
}

fn handler(c: &mut Criterion) {
    // The production log format and filter, to a writer that discards the lines.
    let _log = fairline::telemetry::init_tracing_to(std::io::sink(), false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = rt
        .block_on(AppState::build(
            config(&dir.path().join("fairline.db")),
            Overrides::default(),
        ))
        .unwrap_or_else(|e| panic!("state: {e}"));
    // The background work a webhook's cost depends on, as `fairline serve` starts it: the
    // live-call writer and the metrics recorder's upkeep (which drains the histograms).
    let _writers = rt.block_on(async { fairline::console::live::spawn(&state) });
    let _upkeep = state.metrics.clone().map(|handle| {
        let _entered = rt.enter();
        fairline::telemetry::spawn_upkeep(handle, state.shutdown.clone())
    });
    let fairline_router = fairline::app(state.clone());
    let static_router = Router::new().route(
        VOICE_PATH,
        post(|body: Bytes| async move {
            black_box(body.len());
            ([(header::CONTENT_TYPE, "text/xml")], STATIC_TWIML)
        }),
    );

    let body = unknown_caller_body();
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let signature = twilio::compute_signature(
        &format!("{PUBLIC_URL}{VOICE_PATH}"),
        &fields,
        &Secret::new(AUTH_TOKEN),
    );
    // The answer is the continue TwiML (and the first request fills the negative cache entry).
    let answer = rt.block_on(send(&fairline_router, &body, &signature));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("<Redirect"), "{answer}");

    let mut g = c.benchmark_group("twilio voice webhook in process");
    g.bench_function("static TwiML router (baseline)", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(send(&static_router, &body, &signature).await) })
    });
    g.bench_function("fairline, unknown caller, signature checked", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(send(&fairline_router, &body, &signature).await) })
    });
    g.finish();
    state.shutdown.cancel();
}

criterion_group!(benches, handler);
criterion_main!(benches);
