//! A full run of the real binary with JSON logs at debug level: the logs are searched for phone
//! numbers, tokens and signatures, none of which may appear.

use fairline::config::Secret;
use fairline::providers::twilio;
use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::app::{arrangement, test_toml, ACCOUNT_SID, AGENT_TOKEN, MANAGER_TOKEN, TWILIO_TOKEN};
use crate::procs::Server;

const CALLER: &str = "+442920123456";
const OTHER: &str = "+447700900123";

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                k,
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn signed_post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let owned: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = twilio::compute_signature(
        &format!("https://calls.example.org{path}"),
        &owned,
        &Secret::new(TWILIO_TOKEN),
    );
    let r = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", &sig)
        .body(form(fields))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap(), sig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_run_logs_no_numbers_tokens_or_signatures() {
    let fake_twilio = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/2010-04-01/Accounts/.*/Calls/.*\.json$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sid": "CA00000000000000000000000000000009", "from": CALLER, "to": "+442079460000",
            "status": "in-progress", "parent_call_sid": null
        })))
        .mount(&fake_twilio)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2010-04-01/Accounts/.*/Calls/.*\.json$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "completed"})))
        .mount(&fake_twilio)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let log = dir.path().join("fairline.log");
    let toml = test_toml(&format!("sqlite://{}", db.display()), "");
    let api = fake_twilio.uri();
    let mut server = Server::start(
        dir.path(),
        "logs",
        &toml,
        &[
            ("FAIRLINE_LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
            ("FAIRLINE_TWILIO__API_BASE_URL", api.as_str()),
            // Generous: this test is about what is logged, and a loaded machine is slow.
            ("FAIRLINE_SERVER__REQUEST_TIMEOUT_MS", "60000"),
        ],
        Some(&log),
    )
    .await;
    let client = reqwest::Client::new();
    let base = server.url.clone();

    // A manager creates arrangements; numbers given in several forms.
    for (number, extra) in [
        (
            "02920 123456",
            json!({"windows": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "00:00", "end": "24:00"}], "allowance": {"count": 1, "per": "day"}}),
        ),
        (OTHER, json!({"kind": "blocked"})),
    ] {
        let r = client
            .post(format!("{base}/api/v1/arrangements"))
            .bearer_auth(MANAGER_TOKEN)
            .json(&arrangement(number, extra))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // Calls: under an arrangement (twice: the second is refused), blocked, unknown, withheld.
    let mut signatures = Vec::new();
    for (sid, from) in [
        ("CA00000000000000000000000000000001", CALLER),
        ("CA00000000000000000000000000000002", CALLER),
        ("CA00000000000000000000000000000003", OTHER),
        ("CA00000000000000000000000000000004", "+442079460123"),
        ("CA00000000000000000000000000000005", "anonymous"),
    ] {
        let (status, _, sig) = signed_post(
            &client,
            &base,
            "/webhooks/twilio/voice",
            &[
                ("AccountSid", ACCOUNT_SID),
                ("CallSid", sid),
                ("From", from),
                ("To", "+442079460000"),
            ],
        )
        .await;
        assert_eq!(status, 200);
        signatures.push(sig);
    }
    // A forged request (bad signature) is refused.
    let r = client
        .post(format!("{base}/webhooks/twilio/voice"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "Zm9yZ2VkLXNpZ25hdHVyZS12YWx1ZQ==")
        .body(form(&[
            ("CallSid", "CA00000000000000000000000000000006"),
            ("From", CALLER),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // An agent evaluates and ends a call; a manager reads the logs and the termination.
    let r = client
        .post(format!("{base}/api/v1/evaluate"))
        .bearer_auth(AGENT_TOKEN)
        .json(&json!({"from": CALLER}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!(
            "{base}/api/v1/calls/twilio/CA00000000000000000000000000000001/terminate"
        ))
        .bearer_auth(AGENT_TOKEN)
        .json(
            &json!({"reason": "abusive", "warning_given": true, "notes": "shouted at caseworker"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .get(format!("{base}/api/v1/decisions?phone=%2B442920123456"))
        .bearer_auth(MANAGER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{base}/api/v1/arrangements?phone=02920123456"))
        .bearer_auth("not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    assert_eq!(server.terminate().await, Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > 10, "too few log lines:\n{text}");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
    // A webhook's decided call is one line that names the platform and its call id (webhooks
    // have no request span: it cost a fifth of their CPU time under load).
    assert!(
        text.lines().any(|l| l.contains("\"call decided\"")
            && l.contains("\"provider\":\"twilio\"")
            && l.contains("\"call_id\":\"CA00000000000000000000000000000003\"")),
        "no line for the decided call with its call id"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.contains("\"request_id\"") && l.contains("/webhooks/")),
        "a webhook request has a request span"
    );
    // API requests keep theirs: the request id, and the call id an end-call names.
    assert!(
        text.lines().any(|l| l.contains("\"request_id\"")
            && l.contains("\"call_id\":\"CA00000000000000000000000000000001\"")),
        "no log line carries the end-call request's span with its call id"
    );
    let mut forbidden: Vec<String> = vec![
        "2920123456".into(),
        "2920 123456".into(),
        "7700900123".into(),
        "2079460123".into(),
        MANAGER_TOKEN.into(),
        AGENT_TOKEN.into(),
        TWILIO_TOKEN.into(),
        "not-a-real-token".into(),
        "Zm9yZ2VkLXNpZ25hdHVyZS12YWx1ZQ".into(),
    ];
    forbidden.extend(signatures);
    for secret in forbidden {
        assert!(!text.contains(&secret), "{secret:?} appears in the logs");
    }
}

/// Production's logging: the default format and level, stderr to a file (not a terminal).
/// Every decided call is one line (no ANSI escapes), and the lines of a burst of calls answered
/// just before SIGTERM are all in the file: the non-blocking writer is flushed on shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_are_one_plain_line_per_decided_call_and_flushed_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let log = dir.path().join("fairline.log");
    let toml = test_toml(&format!("sqlite://{}", db.display()), "");
    let mut server = Server::start(
        dir.path(),
        "plainlogs",
        &toml,
        &[
            // This test is about what is logged, and a loaded machine is slow.
            ("FAIRLINE_SERVER__REQUEST_TIMEOUT_MS", "60000"),
        ],
        Some(&log),
    )
    .await;
    let client = reqwest::Client::new();
    let base = server.url.clone();
    let r = client
        .post(format!("{base}/api/v1/arrangements"))
        .bearer_auth(MANAGER_TOKEN)
        .json(&arrangement(CALLER, json!({"kind": "blocked"})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // 120 unknown callers at once, a blocked caller and a withheld number.
    const BURST: usize = 120;
    let sid = |i: usize| format!("CA{i:032}");
    let mut calls: Vec<(String, &str)> = (0..BURST).map(|i| (sid(i), "+442079460123")).collect();
    calls.push((sid(BURST), CALLER));
    calls.push((sid(BURST + 1), "anonymous"));
    let answers = futures::future::join_all(calls.iter().map(|(sid, from)| {
        let (client, base) = (&client, &base);
        async move {
            let fields = [
                ("AccountSid", ACCOUNT_SID),
                ("CallSid", sid.as_str()),
                ("From", *from),
                ("To", "+442079460000"),
            ];
            signed_post(client, base, "/webhooks/twilio/voice", &fields)
                .await
                .0
        }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    // At once: the last lines may still be queued for the writer when the signal arrives.
    assert_eq!(server.terminate().await, Some(0));

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{text}"
    );
    let decided: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("call decided"))
        .collect();
    assert_eq!(decided.len(), calls.len(), "decided lines:\n{text}");
    for (sid, _) in &calls {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(sid.as_str())).collect();
        assert_eq!(lines.len(), 1, "{sid}: {lines:?}");
        assert!(lines[0].contains("call decided"), "{}", lines[0]);
    }
    for (line, reason) in [
        (decided_line(&text, &sid(0)), "reason=\"no_arrangement\""),
        (decided_line(&text, &sid(BURST)), "reason=\"blocked\""),
        (
            decided_line(&text, &sid(BURST + 1)),
            "reason=\"withheld_number\"",
        ),
    ] {
        assert!(line.contains(" INFO ") && line.contains(reason), "{line}");
    }
    assert!(!text.contains("2079460123") && !text.contains("2920123456"));
}

fn decided_line<'a>(text: &'a str, sid: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(sid) && l.contains("call decided"))
        .unwrap_or_else(|| panic!("no decided line for {sid}"))
}
