//! Signed notifications (SPEC §13, Standard Webhooks): every delivery attempt of a
//! `termination.created` notification is checked by the reference Python library
//! (`tests/scripts/verify_standard_webhook.py`, needs `pip install standardwebhooks`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fairline::config;
use fairline::state::{AppState, Overrides};
use reqwest::Method;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::app::{self, TestApp, ACCOUNT_SID};

const CALL: &str = "CA7f8b3c1e2d4a6b7c8d9e0f1a2b3c4d5e";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkgISE=";

/// What the reference verifier said.
#[derive(Debug, PartialEq)]
enum Verdict {
    Verified,
    Refused,
}

/// Run the Python verifier on one captured request; `None` (with a printed line) when python3
/// or the package is missing and `CI` is not set. Under CI a missing verifier fails the test.
fn verify_with_python(secret: &str, req: &Request) -> Option<Verdict> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/verify_standard_webhook.py"
    );
    let headers: serde_json::Map<String, Value> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
        .collect();
    let input = json!({
        "secret": secret,
        "headers": headers,
        "body": String::from_utf8(req.body.clone()).unwrap(),
    });
    let missing = |why: &str| {
        assert!(
            std::env::var_os("CI").is_none(),
            "{why}: CI must install python3 and `pip install standardwebhooks`"
        );
        let _ = writeln!(
            std::io::stderr(),
            "signing: independent verification skipped: {why}"
        );
        None
    };
    let mut child = match Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return missing("python3 is not installed"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    match out.status.code() {
        Some(0) => Some(Verdict::Verified),
        Some(1) => Some(Verdict::Refused),
        Some(3) => missing("the standardwebhooks package is not installed"),
        other => panic!(
            "verifier failed ({other:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

async fn spawn(twilio_base: &str, extra: &str) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
    let cfg = config::from_sources(
        &app::test_toml(&url, extra),
        &[(
            "FAIRLINE_TWILIO__API_BASE_URL".to_string(),
            twilio_base.to_string(),
        )],
    )
    .unwrap();
    let state = AppState::build(cfg, Overrides::default()).await.unwrap();
    state.outbox.set_base_backoff(Duration::from_millis(30));
    TestApp::start(state, Some(dir)).await
}

async fn fake_twilio() -> MockServer {
    let twilio = MockServer::start().await;
    let call_path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL}.json");
    Mock::given(method("GET"))
        .and(path(call_path.clone()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"sid": CALL, "from": "+442920123456"})),
        )
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(call_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&twilio)
        .await;
    twilio
}

async fn wait_for(server: &MockServer, n: usize) -> Vec<Request> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = server.received_requests().await.unwrap_or_default();
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn press(app: &TestApp) -> Value {
    let resp = app
        .agent(
            Method::POST,
            &format!("/api/v1/calls/twilio/{CALL}/terminate"),
        )
        .json(&json!({"reason": "abusive", "warning_given": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    resp.json().await.unwrap()
}

fn header<'r>(r: &'r Request, name: &str) -> &'r str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn every_attempt_is_signed_with_one_id_and_the_reference_library_accepts_it() {
    let twilio = fake_twilio().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let app = spawn(
        &twilio.uri(),
        &format!(
            "[notifications]\nwebhook_url = \"{}/hook\"\nsigning_secret = \"{SECRET}\"\n",
            receiver.uri()
        ),
    )
    .await;
    let t = press(&app).await;
    let got = wait_for(&receiver, 3).await;
    assert_eq!(got.len(), 3, "two refused attempts and one accepted");

    let id = header(&got[0], "webhook-id").to_owned();
    assert_eq!(
        id,
        format!("msg_{}_termination_created", t["id"].as_str().unwrap())
    );
    for r in &got {
        // The same id on every attempt (receivers deduplicate on it), a fresh timestamp, and
        // a v1 signature over "{id}.{timestamp}.{body}".
        assert_eq!(header(r, "webhook-id"), id);
        let ts: i64 = header(r, "webhook-timestamp").parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        assert!(header(r, "webhook-signature").starts_with("v1,"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event"], "termination.created");
        match verify_with_python(SECRET, r) {
            Some(v) => assert_eq!(v, Verdict::Verified),
            None => return,
        }
    }
    // The reference library refuses it under another key, and with the body changed.
    assert_eq!(
        verify_with_python(OTHER_SECRET, &got[2]),
        Some(Verdict::Refused)
    );
    let mut tampered = got[2].clone();
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("abusive", "other")
        .into_bytes();
    assert_eq!(
        verify_with_python(SECRET, &tampered),
        Some(Verdict::Refused)
    );
    app.stop().await;
}

#[tokio::test]
async fn without_a_secret_nothing_is_signed() {
    let twilio = fake_twilio().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let app = spawn(
        &twilio.uri(),
        &format!(
            "[notifications]\nwebhook_url = \"{}/hook\"\n",
            receiver.uri()
        ),
    )
    .await;
    press(&app).await;
    let got = wait_for(&receiver, 1).await;
    assert_eq!(got.len(), 1);
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert!(got[0].headers.get(name).is_none(), "{name}");
    }
    app.stop().await;
}

#[test]
fn a_bad_secret_is_a_configuration_problem() {
    let problems = match config::from_sources(
        &app::test_toml(
            "sqlite://unused.db",
            "[notifications]\nsigning_secret = \"not-a-secret\"\nreminder_days = 0\n",
        ),
        &[],
    ) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.problems(),
    };
    let joined = problems.join("\n");
    assert!(joined.contains("notifications.signing_secret"), "{joined}");
    assert!(joined.contains("notifications.reminder_days"), "{joined}");
    assert!(!joined.contains("not-a-secret"), "{joined}");
}
