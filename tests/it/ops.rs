//! Operations: health, readiness, metrics, retention, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fairline::clock::ManualClock;
use fairline::domain::{CallId, CallerId, PhoneNumber, Provider};
use fairline::providers::CallEvent;
use fairline::store::DecisionFilter;
use fairline::Overrides;
use serde_json::json;

use crate::app::{arrangement, TestApp};

fn call(id: &str, from: &str) -> CallEvent {
    CallEvent {
        provider: Provider::Twilio,
        call_id: CallId::parse(id).unwrap(),
        caller: CallerId::classify(from),
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn("").await;
    let r = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_decisions_without_numbers() {
    let app = TestApp::spawn("").await;
    app.create_arrangement(arrangement("+442920123456", json!({"kind": "blocked"})))
        .await;
    app.state
        .decide_call(&call("CAmetrics1", "+442920123456"))
        .await;
    app.state
        .decide_call(&call("CAmetrics2", "+447700900123"))
        .await;
    app.state
        .decide_call(&call("CAmetrics3", "anonymous"))
        .await;
    let text = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "fairline_decisions_total{",
        "reason=\"blocked\"",
        "reason=\"no_arrangement\"",
        "reason=\"withheld_number\"",
        "fairline_decision_duration_seconds_bucket",
        "fairline_cache_lookups_total{",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    for number in ["442920123456", "447700900123"] {
        assert!(!text.contains(number), "a number leaked into /metrics");
    }
    app.stop().await;
}

#[tokio::test]
async fn retention_deletes_old_decisions_and_keeps_recent_ones() {
    let old = Utc.with_ymd_and_hms(2023, 1, 10, 12, 0, 0).unwrap();
    let clock = ManualClock::new(old);
    let app = TestApp::spawn_with(
        "[retention]\ndecision_log_days = 365\ntermination_days = 365\n",
        Overrides {
            clock: Some(Arc::new(clock.clone())),
            ..Default::default()
        },
    )
    .await;
    let body = arrangement("+442920123456", json!({"designated_staff": ["alice"]}));
    app.create_arrangement(body).await;
    app.state.decide_call(&call("CAold", "+442920123456")).await;
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
    clock.set(now);
    app.state.decide_call(&call("CAnew", "+442920123456")).await;

    let filter = DecisionFilter {
        phone: Some(PhoneNumber::parse("+442920123456").unwrap()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        app.state.store.list_decisions(&filter).await.unwrap().len(),
        2
    );
    let swept = fairline::retention::sweep(&app.state, now).await.unwrap();
    assert_eq!(swept.decisions, 1);
    let left = app.state.store.list_decisions(&filter).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].call_id.as_str(), "CAnew");
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_the_store_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let store = fairline::store::sqlite::SqliteStore::open_path(&path)
        .await
        .unwrap();
    let store = Arc::new(store);
    let config = crate::app::test_config(&format!("sqlite://{}", path.display()), "");
    let state =
        fairline::AppState::with_store(config, store.clone(), Overrides::default()).unwrap();
    let app = TestApp::start(state, None).await;
    let r = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    store.close().await;
    let r = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    app.stop().await;
}

/// SIGTERM: the real binary stops accepting, finishes and exits 0.
#[tokio::test]
async fn sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let db = dir.path().join("f.db");
    let toml = crate::app::test_toml(&format!("sqlite://{}", db.display()), "").replace(
        "bind = \"127.0.0.1:0\"",
        &format!("bind = \"127.0.0.1:{port}\""),
    );
    let cfg = dir.path().join("fairline.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fairline"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(&url).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not come up");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exit = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            exit = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(exit) = exit else {
        let _ = child.kill();
        panic!("fairline did not stop within 10 s of SIGTERM");
    };
    assert_eq!(exit.code(), Some(0));
    assert!(client.get(&url).send().await.is_err(), "still accepting");
}

/// An API request slower than `server.request_timeout_ms` is answered 503 in problem+json.
#[tokio::test]
async fn a_slow_api_request_times_out_with_a_problem_document() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let inner = fairline::store::sqlite::SqliteStore::open_path(&path)
        .await
        .unwrap();
    let slow = Arc::new(crate::support::SlowStore::new(Arc::new(inner)));
    slow.set_delay(Duration::from_millis(800));
    let config = crate::app::test_config(&format!("sqlite://{}", path.display()), "");
    let mut config = config;
    config.server.request_timeout = Duration::from_millis(150);
    let state = fairline::AppState::with_store(config, slow, Overrides::default()).unwrap();
    let app = TestApp::start(state, None).await;
    let started = std::time::Instant::now();
    let r = app
        .agent(reqwest::Method::POST, "/api/v1/evaluate")
        .json(&json!({"from": "+442920123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "not cut at the timeout"
    );
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:fairline:problem:timeout");
    assert_eq!(body["status"], 503);
    app.stop().await;
}
