//! Ending a call (SPEC §9): the hang-up against a fake Twilio REST API, idempotency, validation,
//! roles, manager review, the notification outbox, and delivery across a crash of the real binary.

use std::sync::Arc;
use std::time::Duration;

use fairline::config;
use fairline::state::{AppState, Overrides};
use reqwest::Method;
use serde_json::{json, Value};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::app::{self, TestApp, ACCOUNT_SID, AGENT_TOKEN, MANAGER_TOKEN, TWILIO_TOKEN};

const CALL: &str = "CA5f8b3c1e2d4a6b7c8d9e0f1a2b3c4d5e";
const CHILD: &str = "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const CALLER: &str = "+442920123456";

fn call_path(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json")
}

fn basic_auth() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{TWILIO_TOKEN}"))
    )
}

/// The real server with SQLite in a temp dir, Twilio's REST API at `twilio_base`, and a short
/// outbox back-off.
async fn spawn(twilio_base: &str, extra: &str) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
    let cfg = config::from_sources(
        &app::test_toml(&url, extra),
        &[(
            "FAIRLINE_TWILIO__API_BASE_URL".to_string(),
            twilio_base.to_string(),
        )],
    )
    .expect("config");
    let state = AppState::build(cfg, Overrides::default())
        .await
        .expect("state");
    state.outbox.set_base_backoff(Duration::from_millis(30));
    TestApp::start(state, Some(dir)).await
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn press(app: &TestApp, call: &str, body: Value) -> (u16, Value) {
    let resp = app
        .agent(
            Method::POST,
            &format!("/api/v1/calls/twilio/{call}/terminate"),
        )
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

fn abusive() -> Value {
    json!({"reason": "abusive", "warning_given": true, "notes": "shouting at the caseworker"})
}

async fn mount_call(server: &MockServer, sid: &str, resource: Value) {
    Mock::given(method("GET"))
        .and(path(call_path(sid)))
        .respond_with(ResponseTemplate::new(200).set_body_json(resource))
        .mount(server)
        .await;
}

async fn mount_hangup(server: &MockServer, sid: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(call_path(sid)))
        .respond_with(answer)
        .mount(server)
        .await;
}

fn hangups(received: &[Request]) -> usize {
    received
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count()
}

#[tokio::test]
async fn the_hang_up_request_and_a_child_leg_lookup_link_the_callers_arrangement() {
    let twilio = MockServer::start().await;
    mount_call(
        &twilio,
        CHILD,
        json!({"sid": CHILD, "from": "client:alice", "to": "+442920999999",
               "status": "in-progress", "parent_call_sid": CALL}),
    )
    .await;
    mount_call(
        &twilio,
        CALL,
        json!({"sid": CALL, "from": CALLER, "to": "+442920999999",
               "status": "in-progress", "parent_call_sid": null}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(call_path(CHILD)))
        .and(body_string("Status=completed"))
        .and(header("authorization", basic_auth().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sid": CHILD})))
        .expect(1)
        .mount(&twilio)
        .await;
    let app = spawn(&twilio.uri(), "").await;
    let arr = app
        .create_arrangement(app::arrangement(
            CALLER,
            json!({"allowance": {"count": 1, "per": "day"}}),
        ))
        .await;

    let (status, rec) = press(&app, CHILD, abusive()).await;
    assert_eq!(status, 201, "{rec}");
    assert!(rec["id"].as_str().unwrap().starts_with("trm_"));
    assert_eq!(rec["provider"], "twilio");
    assert_eq!(rec["call_id"], CHILD);
    assert_eq!(rec["caller"], CALLER);
    assert_eq!(rec["arrangement_id"], arr["id"]);
    assert_eq!(rec["customer_ref"], "PSOW-2026-00123");
    assert_eq!(rec["agent"], "contact-centre");
    assert_eq!(rec["reason"], "abusive");
    assert_eq!(rec["warning_given"], true);
    assert_eq!(rec["notes"], "shouting at the caseworker");
    assert_eq!(
        rec["hangup"],
        json!({"result": "completed", "detail": null})
    );
    assert_eq!(rec["police_report_required"], false);
    assert_eq!(
        rec["review"],
        json!({"status": "pending", "outcome": null, "reviewer": null, "notes": null, "reviewed_at": null})
    );

    // The exact hang-up request.
    let received = twilio.received_requests().await.unwrap();
    let post = received
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .expect("a hang-up request");
    assert_eq!(post.url.path(), call_path(CHILD));
    assert_eq!(String::from_utf8_lossy(&post.body), "Status=completed");
    assert_eq!(
        post.headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );

    // The manager sees the same record.
    let got: Value = app
        .manager(
            Method::GET,
            &format!("/api/v1/terminations/{}", rec["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, rec);
    app.stop().await;
}

#[tokio::test]
async fn every_hang_up_result_is_recorded() {
    // 404: the call had already ended.
    let twilio = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"code": 20404})))
        .mount(&twilio)
        .await;
    mount_hangup(
        &twilio,
        CALL,
        ResponseTemplate::new(404).set_body_json(json!({"code": 20404})),
    )
    .await;
    let app = spawn(&twilio.uri(), "").await;
    let (status, rec) = press(&app, CALL, abusive()).await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["hangup"]["result"], "already_ended");
    assert_eq!(
        rec["caller"],
        Value::Null,
        "a failed lookup leaves the caller null"
    );
    app.stop().await;

    // 400 with error 21220: not in progress.
    let twilio = MockServer::start().await;
    mount_call(
        &twilio,
        CALL,
        json!({"sid": CALL, "from": CALLER, "status": "completed"}),
    )
    .await;
    mount_hangup(
        &twilio,
        CALL,
        ResponseTemplate::new(400).set_body_json(
            json!({"code": 21220, "message": "Call is not in-progress", "status": 400}),
        ),
    )
    .await;
    let app = spawn(&twilio.uri(), "").await;
    let (status, rec) = press(
        &app,
        CALL,
        json!({"reason": "threat_of_violence", "warning_given": false}),
    )
    .await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["hangup"]["result"], "already_ended");
    assert_eq!(rec["caller"], CALLER);
    assert_eq!(rec["arrangement_id"], Value::Null);
    assert_eq!(rec["police_report_required"], true);
    app.stop().await;

    // Unreachable: recorded as failed, 502 with the record; a second press is 200.
    let app = spawn(&format!("http://127.0.0.1:{}", closed_port()), "").await;
    let (status, rec) = press(&app, CALL, abusive()).await;
    assert_eq!(status, 502, "{rec}");
    assert_eq!(rec["hangup"]["result"], "failed");
    assert_eq!(rec["hangup"]["detail"], "the platform could not be reached");
    assert_eq!(rec["caller"], Value::Null);
    let (status, again) = press(&app, CALL, abusive()).await;
    assert_eq!(status, 200);
    assert_eq!(again, rec);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("fairline_hangups_total{provider=\"twilio\",result=\"failed\"}"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn ten_concurrent_presses_hang_up_once() {
    let twilio = MockServer::start().await;
    mount_call(
        &twilio,
        CALL,
        json!({"sid": CALL, "from": CALLER, "status": "in-progress"}),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(call_path(CALL)))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sid": CALL}))
                .set_delay(Duration::from_millis(300)),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    let app = spawn(&twilio.uri(), "").await;
    let presses = (0..10).map(|_| press(&app, CALL, abusive()));
    let answers = futures::future::join_all(presses).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let repeated = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, repeated), (1, 9), "{answers:?}");
    let first = &answers[0].1;
    for (_, rec) in &answers {
        assert_eq!(rec["id"], first["id"]);
        assert_eq!(rec["hangup"]["result"], "completed");
    }
    assert_eq!(hangups(&twilio.received_requests().await.unwrap()), 1);
    let list: Value = app
        .manager(Method::GET, "/api/v1/terminations")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn invalid_requests_are_refused_with_every_field_named() {
    let twilio = MockServer::start().await;
    let app = spawn(&twilio.uri(), "").await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["reason", "warning_given"]),
        (
            json!({"reason": "rude", "warning_given": true}),
            vec!["reason"],
        ),
        (json!({"reason": "abusive"}), vec!["warning_given"]),
        (
            json!({"reason": "abusive", "warning_given": false}),
            vec!["warning_given"],
        ),
        (
            json!({"reason": "other", "warning_given": true}),
            vec!["notes"],
        ),
        (
            json!({"reason": "other", "warning_given": true, "notes": ""}),
            vec!["notes"],
        ),
        (
            json!({"reason": "abusive", "warning_given": true, "notes": "x".repeat(4001)}),
            vec!["notes"],
        ),
        (
            json!({"reason": "abusive", "warning_given": true, "warned_at": "not a time"}),
            vec!["warned_at"],
        ),
        (
            json!({"reason": "abusive", "warning_given": true, "warned_at": "2999-01-01T00:00:00Z"}),
            vec!["warned_at"],
        ),
        (
            json!({"reason": "swearing", "warning_given": "yes", "warned_at": 5, "notes": 7}),
            vec!["warning_given", "warned_at", "notes"],
        ),
    ];
    for (body, expected) in cases {
        let (status, problem) = press(&app, CALL, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, expected, "{body}");
    }
    // An unknown provider is 404; no token is 401; nothing reached the platform.
    let resp = app
        .agent(
            Method::POST,
            &format!("/api/v1/calls/vonage/{CALL}/terminate"),
        )
        .json(&abusive())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = app
        .client
        .post(format!("{}/api/v1/calls/twilio/{CALL}/terminate", app.url))
        .json(&abusive())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(twilio.received_requests().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn managers_review_once_and_agents_may_not_see_terminations() {
    let twilio = MockServer::start().await;
    mount_call(&twilio, CALL, json!({"sid": CALL, "from": CALLER})).await;
    mount_hangup(
        &twilio,
        CALL,
        ResponseTemplate::new(200).set_body_json(json!({})),
    )
    .await;
    mount_call(
        &twilio,
        CHILD,
        json!({"sid": CHILD, "from": "+442079460123"}),
    )
    .await;
    mount_hangup(
        &twilio,
        CHILD,
        ResponseTemplate::new(200).set_body_json(json!({})),
    )
    .await;
    let app = spawn(&twilio.uri(), "").await;
    let (_, first) = press(&app, CALL, abusive()).await;
    let (_, second) = press(
        &app,
        CHILD,
        json!({"reason": "racist", "warning_given": true}),
    )
    .await;
    let id = first["id"].as_str().unwrap().to_string();

    for (m, p) in [
        (Method::GET, "/api/v1/terminations".to_string()),
        (Method::GET, format!("/api/v1/terminations/{id}")),
        (Method::POST, format!("/api/v1/terminations/{id}/review")),
    ] {
        let resp = app
            .agent(m.clone(), &p)
            .json(&json!({"outcome": "no_further_action"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{m} {p}");
        let resp = app
            .client
            .request(m.clone(), format!("{}{p}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{m} {p}");
    }

    // Newest first.
    let list: Value = app
        .manager(Method::GET, "/api/v1/terminations?status=pending")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, vec![&second["id"], &first["id"]]);

    let bad = app
        .manager(Method::POST, &format!("/api/v1/terminations/{id}/review"))
        .json(&json!({"outcome": "shrug", "notes": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);

    let resp = app
        .manager(Method::POST, &format!("/api/v1/terminations/{id}/review"))
        .json(&json!({"outcome": "write_to_customer", "notes": "warning letter"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reviewed: Value = resp.json().await.unwrap();
    assert_eq!(reviewed["review"]["status"], "reviewed");
    assert_eq!(reviewed["review"]["outcome"], "write_to_customer");
    assert_eq!(reviewed["review"]["reviewer"], "casework-manager");
    assert_eq!(reviewed["review"]["notes"], "warning letter");
    assert!(reviewed["review"]["reviewed_at"].is_string());

    let again = app
        .manager(Method::POST, &format!("/api/v1/terminations/{id}/review"))
        .json(&json!({"outcome": "refer_to_police"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    let pending: Value = app
        .manager(Method::GET, "/api/v1/terminations?status=pending")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    assert_eq!(pending["items"][0]["id"], second["id"]);
    let done: Value = app
        .manager(
            Method::GET,
            "/api/v1/terminations?status=reviewed&since=2000-01-01T00:00:00Z",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["items"].as_array().unwrap().len(), 1);
    assert_eq!(done["items"][0]["id"], first["id"]);
    let bad = app
        .manager(Method::GET, "/api/v1/terminations?status=open&limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let missing = app
        .manager(
            Method::GET,
            "/api/v1/terminations/trm_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Retention: only reviewed terminations are purged.
    let purged = app
        .state
        .store
        .purge_reviewed_terminations(chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left = app
        .state
        .store
        .list_terminations(&Default::default())
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id.as_str(), second["id"].as_str().unwrap());
    app.stop().await;
}

/// Every request `server` has received, once there are at least `n` (or `within` has passed).
async fn wait_for_requests(server: &MockServer, n: usize, within: Duration) -> Vec<Request> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = server.received_requests().await.unwrap_or_default();
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn notifications_are_retried_until_accepted_once_per_termination() {
    let twilio = MockServer::start().await;
    for sid in [CALL, CHILD] {
        mount_call(&twilio, sid, json!({"sid": sid, "from": CALLER})).await;
        mount_hangup(
            &twilio,
            sid,
            ResponseTemplate::new(200).set_body_json(json!({})),
        )
        .await;
    }
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
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
            "[notifications]\nwebhook_url = \"{}/hook\"\n",
            receiver.uri()
        ),
    )
    .await;
    let (_, a) = press(&app, CALL, abusive()).await;
    let (_, b) = press(
        &app,
        CHILD,
        json!({"reason": "sexist", "warning_given": true}),
    )
    .await;

    let got = wait_for_requests(&receiver, 5, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 5, "3 refused + 2 accepted");
    // Nothing more arrives once both were accepted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received_requests().await.unwrap();
    assert_eq!(got.len(), 5);
    let mut accepted: Vec<String> = got[3..]
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["event"], "termination.created");
            assert_eq!(body["termination"]["id"], body["id"]);
            assert_eq!(
                r.headers.get("idempotency-key").unwrap().to_str().unwrap(),
                body["id"].as_str().unwrap()
            );
            assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
            body["id"].as_str().unwrap().to_string()
        })
        .collect();
    accepted.sort();
    let mut expected = vec![
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    assert_eq!(accepted, expected);
    // The payload is the record as the API shows it.
    let first: Value = serde_json::from_slice(&got[3].body).unwrap();
    let shown = if first["id"] == a["id"] { &a } else { &b };
    assert_eq!(&first["termination"], shown);
    assert_eq!(app.state.store.outbox_depth().await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn no_notification_rows_without_a_webhook_url() {
    let twilio = MockServer::start().await;
    mount_call(&twilio, CALL, json!({"sid": CALL, "from": CALLER})).await;
    mount_hangup(
        &twilio,
        CALL,
        ResponseTemplate::new(200).set_body_json(json!({})),
    )
    .await;
    let app = spawn(&twilio.uri(), "").await;
    let (status, _) = press(&app, CALL, abusive()).await;
    assert_eq!(status, 201);
    assert_eq!(app.state.store.outbox_depth().await.unwrap(), 0);
    let due = app
        .state
        .store
        .take_due_notifications(
            chrono::Utc::now() + chrono::Duration::days(1),
            chrono::Utc::now() + chrono::Duration::days(2),
            10,
        )
        .await
        .unwrap();
    assert!(due.is_empty());
    app.stop().await;
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_binary(config: &std::path::Path, port: u16, twilio: &str) -> Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_fairline"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("FAIRLINE_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("FAIRLINE_TWILIO__API_BASE_URL", twilio)
        .env("FAIRLINE_OUTBOX_BACKOFF_MS", "50")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start fairline");
    Child(child)
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fairline did not start");
}

#[tokio::test]
async fn a_termination_and_its_notification_survive_a_crash() {
    let twilio = MockServer::start().await;
    mount_call(&twilio, CALL, json!({"sid": CALL, "from": CALLER})).await;
    mount_hangup(
        &twilio,
        CALL,
        ResponseTemplate::new(200).set_body_json(json!({})),
    )
    .await;
    let receiver_port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fairline.db").display());
    let cfg_path = dir.path().join("fairline.toml");
    std::fs::write(
        &cfg_path,
        app::test_toml(
            &db,
            &format!("[notifications]\nwebhook_url = \"http://127.0.0.1:{receiver_port}/hook\"\n"),
        ),
    )
    .unwrap();
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // First run: the receiver is down.
    let mut first = start_binary(&cfg_path, port, &twilio.uri());
    wait_healthy(&client, &base).await;
    let resp = client
        .post(format!("{base}/api/v1/calls/twilio/{CALL}/terminate"))
        .bearer_auth(AGENT_TOKEN)
        .json(&abusive())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let rec: Value = resp.json().await.unwrap();
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();

    // Second run: the receiver is up.
    let listener = std::net::TcpListener::bind(("127.0.0.1", receiver_port)).unwrap();
    let receiver = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let _second = start_binary(&cfg_path, port, &twilio.uri());
    wait_healthy(&client, &base).await;
    let got: Value = client
        .get(format!(
            "{base}/api/v1/terminations/{}",
            rec["id"].as_str().unwrap()
        ))
        .bearer_auth(MANAGER_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, rec);

    let delivered = wait_for_requests(&receiver, 1, Duration::from_secs(15)).await;
    assert_eq!(delivered.len(), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let delivered = receiver.received_requests().await.unwrap();
    assert_eq!(delivered.len(), 1, "delivered exactly once");
    let body: Value = serde_json::from_slice(&delivered[0].body).unwrap();
    assert_eq!(body["id"], rec["id"]);
    assert_eq!(body["termination"], rec);
    // Only one hang-up ever reached the platform.
    assert_eq!(hangups(&twilio.received_requests().await.unwrap()), 1);
}

#[tokio::test]
async fn pg_presses_on_two_instances_hang_up_once_and_notify_once() {
    let Some((pg, schema)) =
        crate::support::pg_schema("pg_presses_on_two_instances_hang_up_once_and_notify_once")
    else {
        return;
    };
    let twilio = MockServer::start().await;
    mount_call(&twilio, CALL, json!({"sid": CALL, "from": CALLER})).await;
    Mock::given(method("POST"))
        .and(path(call_path(CALL)))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({}))
                .set_delay(Duration::from_millis(300)),
        )
        .mount(&twilio)
        .await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let extra = format!(
        "[notifications]\nwebhook_url = \"{}/hook\"\n",
        receiver.uri()
    );
    let mut apps = Vec::new();
    for _ in 0..2 {
        let mut tw = app::test_config(&pg, &extra).twilio.clone();
        tw.api_base_url = twilio.uri();
        let client = fairline::providers::twilio::TwilioClient::new(&tw).unwrap();
        let overrides = Overrides {
            twilio: Some(Arc::new(client)),
            ..Overrides::default()
        };
        let app = TestApp::spawn_pg(&pg, &schema, &extra, overrides)
            .await
            .unwrap();
        app.state.outbox.set_base_backoff(Duration::from_millis(30));
        apps.push(app);
    }
    let presses = (0..10).map(|i| press(&apps[i % 2], CALL, abusive()));
    let answers = futures::future::join_all(presses).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let repeated = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, repeated), (1, 9), "{answers:?}");
    for (_, rec) in &answers {
        assert_eq!(rec["id"], answers[0].1["id"]);
    }
    assert_eq!(hangups(&twilio.received_requests().await.unwrap()), 1);
    let got = wait_for_requests(&receiver, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    for app in apps {
        app.stop().await;
    }
    let _ = fairline::store::postgres::PgStore::drop_schema(&pg, &schema).await;
}

#[tokio::test]
async fn a_termination_left_provisional_is_finished_and_notified() {
    use fairline::domain::{CallId, Provider, TerminationId};
    use fairline::domain::{Termination, TerminationReason};
    use fairline::store::Claim;
    let twilio = MockServer::start().await;
    mount_call(&twilio, CALL, json!({"sid": CALL, "from": CALLER})).await;
    mount_hangup(&twilio, CALL, ResponseTemplate::new(404)).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
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
    // A claim whose owner died: provisional, lease run out.
    let now = chrono::Utc::now();
    let claim = Termination {
        id: TerminationId::generate(),
        provider: Provider::Twilio,
        call_id: CallId::parse(CALL).unwrap(),
        caller: None,
        arrangement_id: None,
        customer_ref: None,
        agent: "contact-centre".into(),
        reason: TerminationReason::Swearing,
        warning_given: true,
        warned_at: None,
        notes: None,
        terminated_at: now - chrono::Duration::minutes(5),
        hangup: None,
        hangup_detail: None,
        claimed_until: now - chrono::Duration::minutes(4),
        review: None,
    };
    let Claim::Created(t) = app.state.store.claim_termination(&claim).await.unwrap() else {
        panic!("not created");
    };
    let got = wait_for_requests(&receiver, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["id"], t.id.as_str());
    assert_eq!(body["termination"]["hangup"]["result"], "already_ended");
    assert_eq!(body["termination"]["caller"], CALLER);
    let stored = app
        .state
        .store
        .get_termination(&t.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.is_provisional());
    // A press now answers 200 with the finished record.
    let (status, rec) = press(&app, CALL, abusive()).await;
    assert_eq!(status, 200);
    assert_eq!(rec["id"], t.id.as_str());
    assert_eq!(rec["reason"], "swearing");
    assert_eq!(hangups(&twilio.received_requests().await.unwrap()), 1);
    app.stop().await;
}

/// The review list pages with `limit` and the `next` cursor: every termination once, newest
/// first, and the last page has no `next`.
async fn fake_twilio_for_paging() -> MockServer {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&twilio)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&twilio)
        .await;
    twilio
}

#[tokio::test]
async fn the_review_list_pages_with_a_cursor() {
    let twilio = fake_twilio_for_paging().await;
    paging(&spawn(&twilio.uri(), "").await).await;
}

#[tokio::test]
async fn the_review_list_pages_with_a_cursor_on_postgres() {
    let Some((url, schema)) = crate::support::pg_schema("terminations::paging_postgres") else {
        return;
    };
    let twilio = fake_twilio_for_paging().await;
    let store = fairline::store::postgres::PgStore::connect_in_schema(&url, &schema)
        .await
        .unwrap();
    let cfg = config::from_sources(
        &app::test_toml(&url, ""),
        &[("FAIRLINE_TWILIO__API_BASE_URL".to_string(), twilio.uri())],
    )
    .unwrap();
    let state = AppState::with_store(cfg, Arc::new(store), Overrides::default()).unwrap();
    let app = TestApp::start(state, None).await;
    paging(&app).await;
    app.stop().await;
    fairline::store::postgres::PgStore::drop_schema(&url, &schema)
        .await
        .unwrap();
}

async fn paging(app: &TestApp) {
    let mut pressed = Vec::new();
    for i in 0..5 {
        let (status, rec) = press(app, &format!("CA{i:032}"), abusive()).await;
        assert_eq!(status, 201);
        pressed.push(rec["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &before {
            None => "/api/v1/terminations?limit=2".to_string(),
            Some(b) => format!("/api/v1/terminations?limit=2&before={b}"),
        };
        let page: Value = app
            .manager(Method::GET, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push((
                chrono::DateTime::parse_from_rfc3339(item["terminated_at"].as_str().unwrap())
                    .unwrap(),
                item["id"].as_str().unwrap().to_string(),
            ));
        }
        match page["next"].as_str() {
            Some(n) => before = Some(n.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    // Newest first (by time, then id), and every termination exactly once.
    let mut ordered = seen.clone();
    ordered.sort();
    ordered.reverse();
    assert_eq!(seen, ordered, "not newest first");
    let mut ids: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    ids.sort();
    pressed.sort();
    assert_eq!(ids, pressed, "every termination once");
    let r = app
        .manager(Method::GET, "/api/v1/terminations?before=not-an-id")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}
