//! 10,000 random or truncated bodies to the running server: no 5xx on the webhooks, no crash,
//! memory flat.

use futures::stream::{self, StreamExt};
use rand::{Rng, SeedableRng};

use crate::app::TestApp;

const TWILIO_FIXTURE: &str = include_str!("../../fixtures/twilio/incoming-call.txt");
const TELNYX_FIXTURE: &str = include_str!("../../fixtures/telnyx/call_initiated_inbound.json");

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn body(rng: &mut rand::rngs::StdRng, i: usize) -> (&'static str, &'static str, Vec<u8>) {
    let paths = [
        (
            "/webhooks/twilio/voice",
            "application/x-www-form-urlencoded",
        ),
        (
            "/webhooks/twilio/dial-status",
            "application/x-www-form-urlencoded",
        ),
        (
            "/webhooks/twilio/status",
            "application/x-www-form-urlencoded",
        ),
        ("/webhooks/telnyx", "application/json"),
    ];
    let (path, ct) = paths[i % paths.len()];
    let fixture = if path.contains("telnyx") {
        TELNYX_FIXTURE
    } else {
        TWILIO_FIXTURE
    };
    let bytes = match rng.gen_range(0..5) {
        // Random bytes.
        0 => (0..rng.gen_range(0..2048)).map(|_| rng.gen()).collect(),
        // A truncated fixture.
        1 => fixture.as_bytes()[..rng.gen_range(0..fixture.len())].to_vec(),
        // A fixture with bytes flipped.
        2 => {
            let mut b = fixture.as_bytes().to_vec();
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..b.len());
                b[at] = rng.gen();
            }
            b
        }
        // Random form fields, some with the names Fairline reads.
        3 => {
            let names = [
                "CallSid",
                "From",
                "To",
                "DialCallStatus",
                "CallStatus",
                "CallDuration",
                "x",
            ];
            (0..rng.gen_range(0..12))
                .map(|_| {
                    let v: String = (0..rng.gen_range(0..40))
                        .map(|_| char::from(rng.gen_range(32u8..127)))
                        .collect();
                    format!("{}={}", names[rng.gen_range(0..names.len())], urlencode(&v))
                })
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }
        // JSON of the wrong shape.
        _ => {
            let samples = [
                "{}",
                "[]",
                "null",
                "{\"data\":{}}",
                "{\"data\":{\"event_type\":\"call.initiated\",\"id\":1,\"payload\":[]}}",
                "{\"event_type\":\"call_initiated\",\"payload\":{}}",
                "{\"data\":{\"event_type\":\"call.initiated\",\"id\":\"x\",\"payload\":{\"call_control_id\":\"\",\"direction\":\"incoming\",\"from\":\"+442920123456\"}}}",
            ];
            samples[rng.gen_range(0..samples.len())].as_bytes().to_vec()
        }
    };
    (path, ct, bytes)
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_bad_bodies_never_get_a_5xx() {
    let app = TestApp::spawn("").await;
    // Signatures off, so that the bodies reach the parsers.
    let _ = &app;
    let app = {
        app.stop().await;
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let url = format!("sqlite://{}", dir.path().join("f.db").display());
        let toml = crate::app::test_toml(&url, "");
        let config = fairline::config::from_sources(
            &toml,
            &[
                ("FAIRLINE_TWILIO__VERIFY_SIGNATURES".into(), "false".into()),
                (
                    "FAIRLINE_TELNYX__API_BASE_URL".into(),
                    "http://127.0.0.1:9".into(),
                ),
            ],
        )
        .unwrap();
        let state = fairline::AppState::build(config, fairline::Overrides::default())
            .await
            .unwrap();
        TestApp::start(state, Some(dir)).await
    };
    let client = reqwest::Client::new();
    let run = |from: usize, to: usize, seed: u64| {
        let client = client.clone();
        let url = app.url.clone();
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let requests: Vec<_> = (from..to).map(|i| body(&mut rng, i)).collect();
            stream::iter(requests)
                .map(|(path, ct, bytes)| {
                    let client = client.clone();
                    let url = url.clone();
                    async move {
                        let r = client
                            .post(format!("{url}{path}"))
                            .header("content-type", ct)
                            .body(bytes)
                            .send()
                            .await
                            .expect("the server must answer");
                        (path, r.status().as_u16())
                    }
                })
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await
        }
    };
    let warm = run(0, 2_000, 1).await;
    // Then four rounds of 2,000, each measured on its own: the test binary runs other tests
    // at the same time, and one of them may grow the shared process in any one round; a leak
    // grows it in every round.
    let mut rest = Vec::new();
    let mut growth = Vec::new();
    for round in 0..4u64 {
        let before = rss_kib();
        let from = 2_000 + round as usize * 2_000;
        rest.extend(run(from, from + 2_000, 2 + round).await);
        growth.push(rss_kib().saturating_sub(before));
    }
    let mut by_status = std::collections::BTreeMap::new();
    for (path, status) in warm.iter().chain(rest.iter()) {
        assert!(*status < 500, "{path} answered {status}");
        *by_status.entry(*status).or_insert(0) += 1;
    }
    assert_eq!(warm.len() + rest.len(), 10_000);
    eprintln!("statuses: {by_status:?}; RSS growth per round of 2,000: {growth:?} KiB");
    let r = client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "still alive");
    // Flat memory: in at least one round, 2,000 requests grew the process by less than 8 MiB
    // (a leak of 4 KiB a request would show in all four).
    let least = growth.iter().copied().min().unwrap_or(0);
    assert!(
        least < 8 * 1024,
        "RSS grew in every round of 2,000 requests: {growth:?} KiB"
    );
    app.stop().await;
}
