//! The arrangements, evaluate, decisions and OpenAPI endpoints through the real server
//! (SPEC §5, §6, §10), and the `fairline` command line (SPEC §2).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fairline::clock::ManualClock;
use fairline::domain::{CallId, CallerId, Provider};
use fairline::engine::{Outcome, Reason};
use fairline::providers::CallEvent;
use fairline::state::Overrides;
use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{arrangement, TestApp, AGENT_TOKEN, MANAGER_TOKEN};

const RESTRICTED_NUMBER: &str = "+442920123456";
const BLOCKED_NUMBER: &str = "+447700900123";
const ALLOWANCE_NUMBER: &str = "+447700900456";

/// A sample arrangement from `fixtures/arrangements/NAME.json`.
fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/fixtures/arrangements/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k.as_str()] = v.clone();
        }
    }
    body
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The instant the tests that do not care about time pin their server's clock at: before the
/// fixtures start, so that none of them is in the past whatever today's date is.
const PINNED_NOW: &str = "2026-11-20T12:00:00Z";

/// A server whose clock is pinned at `at` (move it with the returned clock).
async fn spawn_at(at: &str) -> (TestApp, ManualClock) {
    let clock = ManualClock::new(t(at));
    let app = TestApp::spawn_with(
        "",
        Overrides {
            clock: Some(Arc::new(clock.clone())),
            ..Default::default()
        },
    )
    .await;
    (app, clock)
}

/// Check the problem+json shape and status; returns the body.
async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["type"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    body
}

/// The fields named in a 422 body.
fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list: {body}"))
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            e["field"].as_str().unwrap().to_string()
        })
        .collect()
}

fn event(number: &str, call_id: &str) -> CallEvent {
    CallEvent {
        provider: Provider::Twilio,
        call_id: CallId::parse(call_id).unwrap(),
        caller: CallerId::classify(number),
    }
}

async fn evaluate(app: &TestApp, body: Value) -> Value {
    let resp = app
        .agent(Method::POST, "/api/v1/evaluate")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let resp = app.manager(Method::GET, path).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

async fn list_ids(app: &TestApp, query: &str) -> Vec<String> {
    let body = get_json(app, &format!("/api/v1/arrangements?{query}")).await;
    let mut ids: Vec<String> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&Value]) -> Vec<String> {
    let mut v: Vec<String> = ids
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// Error statuses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_401_without_an_unknown_or_a_malformed_token() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let url = format!("{}/api/v1/arrangements", app.url);
    let cases: Vec<Option<String>> = vec![
        None,
        Some("Bearer not-a-configured-token".into()),
        Some(format!("Basic {MANAGER_TOKEN}")),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(MANAGER_TOKEN.into()),
    ];
    for auth in cases {
        let mut req = app.client.get(&url);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert!(
            resp.headers().get("www-authenticate").is_some(),
            "{auth:?}: no WWW-Authenticate"
        );
        let body = problem(resp, 401).await;
        assert!(
            !body.to_string().contains(MANAGER_TOKEN),
            "the token is echoed: {body}"
        );
    }
    // Evaluate needs a token too.
    let resp = app
        .client
        .post(format!("{}/api/v1/evaluate", app.url))
        .json(&json!({"from": RESTRICTED_NUMBER}))
        .send()
        .await
        .unwrap();
    problem(resp, 401).await;
    app.stop().await;
}

#[tokio::test]
async fn api_403_for_an_agent_on_arrangements_and_decisions() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let created = app.create_arrangement(fixture("blocked")).await;
    let id = created["id"].as_str().unwrap();
    let get_paths = [
        "/api/v1/arrangements".to_string(),
        format!("/api/v1/arrangements/{id}"),
        format!("/api/v1/arrangements/{id}/history"),
        "/api/v1/decisions".to_string(),
    ];
    for path in &get_paths {
        let resp = app.agent(Method::GET, path).send().await.unwrap();
        problem(resp, 403).await;
    }
    let resp = app
        .agent(Method::POST, "/api/v1/arrangements")
        .json(&fixture("restricted"))
        .send()
        .await
        .unwrap();
    problem(resp, 403).await;
    let resp = app
        .agent(Method::PUT, &format!("/api/v1/arrangements/{id}"))
        .header("if-match", "\"1\"")
        .json(&fixture("blocked"))
        .send()
        .await
        .unwrap();
    problem(resp, 403).await;
    let resp = app
        .agent(Method::POST, &format!("/api/v1/arrangements/{id}/revoke"))
        .json(&json!({"reason": "agent tries"}))
        .send()
        .await
        .unwrap();
    problem(resp, 403).await;
    // Nothing was changed by the agent.
    let now = get_json(&app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(now["version"], 1);
    assert!(now.get("revoked_at").is_none());
    // The agent may evaluate.
    let ev = evaluate(&app, json!({"from": BLOCKED_NUMBER})).await;
    assert!(ev["outcome"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn api_404_for_unknown_and_malformed_ids() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let unknown = "arr_01JF0000000000000000000000";
    for id in [
        unknown,
        "nonsense",
        "trm_01JF0000000000000000000000",
        "arr_",
    ] {
        for suffix in ["", "/history"] {
            let resp = app
                .manager(Method::GET, &format!("/api/v1/arrangements/{id}{suffix}"))
                .send()
                .await
                .unwrap();
            problem(resp, 404).await;
        }
        let resp = app
            .manager(Method::PUT, &format!("/api/v1/arrangements/{id}"))
            .header("if-match", "\"1\"")
            .json(&fixture("blocked"))
            .send()
            .await
            .unwrap();
        problem(resp, 404).await;
        let resp = app
            .manager(Method::POST, &format!("/api/v1/arrangements/{id}/revoke"))
            .json(&json!({"reason": "x"}))
            .send()
            .await
            .unwrap();
        problem(resp, 404).await;
    }
    let resp = app
        .manager(Method::GET, "/api/v1/no-such-endpoint")
        .send()
        .await
        .unwrap();
    problem(resp, 404).await;
    app.stop().await;
}

#[tokio::test]
async fn api_409_for_a_number_in_force_elsewhere_in_another_format() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let first = app
        .create_arrangement(arrangement(
            RESTRICTED_NUMBER,
            json!({"allowance": {"count": 1, "per": "day"}}),
        ))
        .await;
    for other_form in [
        "02920 123456",
        "442920123456",
        "(029) 2012 3456",
        "+44 29 2012 3456",
    ] {
        let resp = app
            .manager(Method::POST, "/api/v1/arrangements")
            .json(&with(
                fixture("blocked"),
                json!({"phone_numbers": ["+447700900777", other_form]}),
            ))
            .send()
            .await
            .unwrap();
        let body = problem(resp, 409).await;
        assert!(
            !body.to_string().contains("2920123456"),
            "the number is not masked: {body}"
        );
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap()));
    }
    // An update that adds the number to another arrangement is refused the same way.
    let second = app.create_arrangement(fixture("blocked")).await;
    let id2 = second["id"].as_str().unwrap();
    let resp = app
        .manager(Method::PUT, &format!("/api/v1/arrangements/{id2}"))
        .header("if-match", "\"1\"")
        .json(&with(
            fixture("blocked"),
            json!({"phone_numbers": [BLOCKED_NUMBER, "02920123456"]}),
        ))
        .send()
        .await
        .unwrap();
    problem(resp, 409).await;
    // Once the first is revoked the number is free again.
    let id1 = first["id"].as_str().unwrap();
    let resp = app
        .manager(Method::POST, &format!("/api/v1/arrangements/{id1}/revoke"))
        .json(&json!({"reason": "replaced by a block"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // SPEC §11: its period in force ran until the revocation (now), so a backdated
    // arrangement that starts before that overlaps it and is refused, naming it ...
    let resp = app
        .manager(Method::POST, "/api/v1/arrangements")
        .json(&with(
            fixture("blocked"),
            json!({"phone_numbers": ["02920 123456"], "starts_at": "2026-11-01T00:00:00Z"}),
        ))
        .send()
        .await
        .unwrap();
    let body = problem(resp, 409).await;
    assert!(body["detail"].as_str().unwrap().contains(id1), "{body}");
    // ... while one that starts after the revocation is accepted.
    app.create_arrangement(with(
        fixture("blocked"),
        json!({"phone_numbers": ["02920 123456"], "starts_at": "2026-11-20T12:00:01Z"}),
    ))
    .await;
    app.stop().await;
}

#[tokio::test]
async fn api_412_on_a_stale_if_match_428_without_one_400_when_unreadable() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let created = app.create_arrangement(fixture("allowance")).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/arrangements/{id}");
    let body = with(fixture("allowance"), json!({"customer_name": "Changed"}));

    let resp = app
        .manager(Method::PUT, &path)
        .json(&body)
        .send()
        .await
        .unwrap();
    let p = problem(resp, 428).await;
    assert!(p["detail"].as_str().unwrap().contains("If-Match"));

    let resp = app
        .manager(Method::PUT, &path)
        .header("if-match", "\"one\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(resp, 400).await;

    // Version 1 → 2, then "1" is stale.
    let resp = app
        .manager(Method::PUT, &path)
        .header("if-match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for stale in ["\"1\"", "\"7\"", "W/\"1\""] {
        let resp = app
            .manager(Method::PUT, &path)
            .header("if-match", stale)
            .json(&body)
            .send()
            .await
            .unwrap();
        let p = problem(resp, 412).await;
        assert!(p["detail"].as_str().unwrap().contains('2'), "{p}");
    }
    let now = get_json(&app, &path).await;
    assert_eq!(now["version"], 2);
    app.stop().await;
}

#[tokio::test]
async fn api_415_without_or_with_another_content_type() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let created = app.create_arrangement(fixture("blocked")).await;
    let id = created["id"].as_str().unwrap();
    let body = fixture("restricted").to_string();
    let targets = [
        (
            Method::POST,
            "/api/v1/arrangements".to_string(),
            body.clone(),
        ),
        (
            Method::PUT,
            format!("/api/v1/arrangements/{id}"),
            body.clone(),
        ),
        (
            Method::POST,
            format!("/api/v1/arrangements/{id}/revoke"),
            r#"{"reason":"x"}"#.to_string(),
        ),
        (
            Method::POST,
            "/api/v1/evaluate".to_string(),
            format!(r#"{{"from":"{RESTRICTED_NUMBER}"}}"#),
        ),
    ];
    for (method, path, body) in targets {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut req = app
                .manager(method.clone(), &path)
                .header("if-match", "\"1\"")
                .body(body.clone());
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            let resp = req.send().await.unwrap();
            problem(resp, 415).await;
        }
    }
    // Malformed JSON with the right type is a 400.
    let resp = app
        .manager(Method::POST, "/api/v1/arrangements")
        .header("content-type", "application/json")
        .body("{\"customer_ref\": ")
        .send()
        .await
        .unwrap();
    problem(resp, 400).await;
    // `application/json; charset=utf-8` is fine.
    let resp = app
        .manager(Method::POST, "/api/v1/arrangements")
        .header("content-type", "application/json; charset=utf-8")
        .body(fixture("restricted").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn api_422_for_each_validation_rule() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let base = fixture("restricted");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no customer_ref",
            json!({"customer_ref": null}),
            "customer_ref",
        ),
        (
            "empty customer_ref",
            json!({"customer_ref": "  "}),
            "customer_ref",
        ),
        (
            "no phone_numbers",
            json!({"phone_numbers": null}),
            "phone_numbers",
        ),
        (
            "empty phone_numbers",
            json!({"phone_numbers": []}),
            "phone_numbers",
        ),
        ("no kind", json!({"kind": null}), "kind"),
        ("bad kind", json!({"kind": "friendly"}), "kind"),
        ("no reason", json!({"reason": null}), "reason"),
        ("no decided_by", json!({"decided_by": null}), "decided_by"),
        ("no ends_at", json!({"ends_at": null}), "ends_at"),
        ("no review_due", json!({"review_due": null}), "review_due"),
        (
            "review_due after ends_at",
            json!({"review_due": "2027-06-02"}),
            "review_due",
        ),
        (
            "ends_at before starts_at",
            json!({"ends_at": "2026-11-30T00:00:00Z", "review_due": "2026-11-01"}),
            "ends_at",
        ),
        ("bad ends_at", json!({"ends_at": "next June"}), "ends_at"),
        (
            "bad review_due",
            json!({"review_due": "01/03/2027"}),
            "review_due",
        ),
        (
            "window start == end",
            json!({"windows": [{"days": ["tue"], "start": "10:00", "end": "10:00"}]}),
            "windows[0].end",
        ),
        (
            "window start > end",
            json!({"windows": [{"days": ["tue"], "start": "14:00", "end": "12:00"}]}),
            "windows[0].end",
        ),
        (
            "unknown staff id",
            json!({"designated_staff": ["alice", "carol"]}),
            "designated_staff[1]",
        ),
        (
            "restricted with nothing",
            json!({"windows": [], "allowance": null, "designated_staff": []}),
            "kind",
        ),
        (
            "bad day",
            json!({"windows": [{"days": ["tue", "tuesday"], "start": "10:00", "end": "12:00"}]}),
            "windows[0].days[1]",
        ),
        (
            "bad time",
            json!({"windows": [{"days": ["tue"], "start": "10:00", "end": "25:00"}]}),
            "windows[0].end",
        ),
        (
            "bad time format",
            json!({"windows": [{"days": ["tue"], "start": "10am", "end": "12:00"}]}),
            "windows[0].start",
        ),
        (
            "bad number",
            json!({"phone_numbers": ["+442920123456", "call me maybe"]}),
            "phone_numbers[1]",
        ),
        (
            "withheld form as a number",
            json!({"phone_numbers": ["anonymous"]}),
            "phone_numbers[0]",
        ),
        (
            "number listed twice in two forms",
            json!({"phone_numbers": ["+442920123456", "02920 123456"]}),
            "phone_numbers[1]",
        ),
        ("bad language", json!({"language": "fr"}), "language"),
        (
            "bad allowance",
            json!({"allowance": {"count": 0, "per": "day"}}),
            "allowance.count",
        ),
        (
            "bad allowance period",
            json!({"allowance": {"count": 1, "per": "month"}}),
            "allowance.per",
        ),
        ("unknown field", json!({"colour": "blue"}), "colour"),
        (
            "blocked with windows",
            json!({"kind": "blocked", "allowance": null, "designated_staff": []}),
            "windows",
        ),
        (
            "equality_advice_sought not a bool",
            json!({"equality_advice_sought": "yes"}),
            "equality_advice_sought",
        ),
    ];
    for (name, change, field) in cases {
        let resp = app
            .manager(Method::POST, "/api/v1/arrangements")
            .json(&with(base.clone(), change))
            .send()
            .await
            .unwrap();
        let body = problem(resp, 422).await;
        let named = fields(&body);
        assert!(
            named.contains(&field.to_string()),
            "{name}: {named:?} ({body})"
        );
    }
    // Nothing was stored.
    assert!(list_ids(&app, "").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn api_422_lists_every_bad_field_at_once() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let body = json!({
        "phone_numbers": ["+442920123456", "bad"],
        "kind": "restricted",
        "windows": [{"days": ["funday"], "start": "12:00", "end": "24:30"}],
        "designated_staff": ["nobody"],
        "reason": "r",
        "ends_at": "2027-01-01T00:00:00Z",
        "review_due": "2027-02-01"
    });
    let resp = app
        .manager(Method::POST, "/api/v1/arrangements")
        .json(&body)
        .send()
        .await
        .unwrap();
    let p = problem(resp, 422).await;
    let named = fields(&p);
    for f in [
        "customer_ref",
        "decided_by",
        "phone_numbers[1]",
        "windows[0].days[0]",
        "windows[0].end",
        "designated_staff[0]",
        "review_due",
    ] {
        assert!(named.contains(&f.to_string()), "{f} missing from {named:?}");
    }
    assert_eq!(p["type"], "urn:fairline:problem:validation");
    // Evaluate names a bad field too.
    let resp = app
        .agent(Method::POST, "/api/v1/evaluate")
        .json(&json!({"at": "2026-12-01T10:30:00Z"}))
        .send()
        .await
        .unwrap();
    let p = problem(resp, 422).await;
    assert!(fields(&p).contains(&"from".to_string()), "{p}");
    let resp = app
        .agent(Method::POST, "/api/v1/evaluate")
        .json(&json!({"from": RESTRICTED_NUMBER, "at": "tomorrow"}))
        .send()
        .await
        .unwrap();
    problem(resp, 422).await;
    // A revoke without a reason.
    let created = app.create_arrangement(fixture("blocked")).await;
    let id = created["id"].as_str().unwrap();
    let resp = app
        .manager(Method::POST, &format!("/api/v1/arrangements/{id}/revoke"))
        .json(&json!({"reason": "  "}))
        .send()
        .await
        .unwrap();
    let p = problem(resp, 422).await;
    assert_eq!(fields(&p), vec!["reason".to_string()]);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_create_normalises_numbers_and_applies_defaults() {
    let (app, _clock) = spawn_at("2026-11-20T09:15:00Z").await;
    let body = json!({
        "customer_ref": "PSOW-2026-00999",
        "phone_numbers": ["02920 123456", "442079460123"],
        "kind": "restricted",
        "allowance": {"count": 1, "per": "day"},
        "reason": "Abusive calls",
        "decided_by": "Director of Investigations",
        "ends_at": "2027-06-01T00:00:00Z",
        "review_due": "2027-03-01"
    });
    let resp = app
        .manager(Method::POST, "/api/v1/arrangements")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let a: Value = resp.json().await.unwrap();
    assert!(a["id"].as_str().unwrap().starts_with("arr_"));
    assert_eq!(
        a["phone_numbers"],
        json!(["+442920123456", "+442079460123"])
    );
    assert_eq!(
        t(a["starts_at"].as_str().unwrap()),
        t("2026-11-20T09:15:00Z")
    );
    assert_eq!(a["equality_advice_sought"], false);
    assert_eq!(a["language"], "en");
    assert_eq!(a["status"], "active");
    assert_eq!(a["version"], 1);
    assert!(a.get("review_overdue").is_none());
    assert_eq!(
        t(a["created_at"].as_str().unwrap()),
        t("2026-11-20T09:15:00Z")
    );

    // The fixture keeps everything it says.
    let r = app
        .create_arrangement(with(
            fixture("restricted"),
            json!({"phone_numbers": ["+442920123999"]}),
        ))
        .await;
    let f = fixture("restricted");
    for k in [
        "customer_ref",
        "customer_name",
        "kind",
        "windows",
        "allowance",
        "designated_staff",
        "max_call_minutes",
        "language",
        "reason",
        "decided_by",
        "equality_advice_sought",
        "review_due",
    ] {
        assert_eq!(r[k], f[k], "{k}");
    }
    assert_eq!(r["status"], "scheduled");

    // GET returns the same with an ETag.
    let id = a["id"].as_str().unwrap();
    let resp = app
        .manager(Method::GET, &format!("/api/v1/arrangements/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got, a);
    app.stop().await;
}

#[tokio::test]
async fn api_list_filters_by_phone_status_and_review_date() {
    let (app, clock) = spawn_at("2026-10-01T12:00:00Z").await;
    // Made while the clock is early so that every start is accepted, then the clock moves on.
    let active = app.create_arrangement(fixture("allowance")).await; // 2026-11-01 → 2027-05-01, review 2027-02-01
    let scheduled = app.create_arrangement(fixture("restricted")).await; // 2026-12-01 →, review 2027-03-01
    let expired = app
        .create_arrangement(with(
            fixture("blocked"),
            json!({"phone_numbers": ["+447700900321"], "starts_at": "2026-10-01T00:00:00Z",
                   "ends_at": "2026-11-15T00:00:00Z", "review_due": "2026-11-01"}),
        ))
        .await;
    let revoked = app
        .create_arrangement(with(
            fixture("blocked"),
            json!({"starts_at": "2026-10-01T00:00:00Z"}),
        ))
        .await;
    let rid = revoked["id"].as_str().unwrap();
    let resp = app
        .manager(Method::POST, &format!("/api/v1/arrangements/{rid}/revoke"))
        .json(&json!({"reason": "appeal upheld"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    clock.set(t("2026-11-20T12:00:00Z"));

    assert_eq!(
        list_ids(&app, "").await,
        sorted(&[&active, &scheduled, &expired, &revoked])
    );
    assert_eq!(list_ids(&app, "status=active").await, sorted(&[&active]));
    assert_eq!(
        list_ids(&app, "status=scheduled").await,
        sorted(&[&scheduled])
    );
    assert_eq!(list_ids(&app, "status=expired").await, sorted(&[&expired]));
    assert_eq!(list_ids(&app, "status=revoked").await, sorted(&[&revoked]));
    // Phone in any format; the second number of the restricted fixture too.
    assert_eq!(
        list_ids(&app, "phone=07700%20900456").await,
        sorted(&[&active])
    );
    assert_eq!(
        list_ids(&app, "phone=%2B442079460123").await,
        sorted(&[&scheduled])
    );
    assert_eq!(
        list_ids(&app, "phone=442920123456").await,
        sorted(&[&scheduled])
    );
    assert!(list_ids(&app, "phone=%2B447700900999").await.is_empty());
    // Review due before a date (exclusive).
    assert_eq!(
        list_ids(&app, "review_due_before=2027-02-01").await,
        sorted(&[&expired])
    );
    assert_eq!(
        list_ids(&app, "review_due_before=2027-02-02").await,
        sorted(&[&active, &expired, &revoked])
    );
    assert_eq!(
        list_ids(&app, "review_due_before=2027-03-02&status=scheduled").await,
        sorted(&[&scheduled])
    );
    // Bad filters are 422, naming each.
    let resp = app
        .manager(
            Method::GET,
            "/api/v1/arrangements?status=dormant&phone=xyz&review_due_before=soon",
        )
        .send()
        .await
        .unwrap();
    let p = problem(resp, 422).await;
    let mut named = fields(&p);
    named.sort();
    assert_eq!(named, vec!["phone", "review_due_before", "status"]);
    app.stop().await;
}

#[tokio::test]
async fn api_update_revoke_and_history() {
    let (app, clock) = spawn_at("2026-11-20T12:00:00Z").await;
    let created = app.create_arrangement(fixture("allowance")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/arrangements/{id}");

    // A client may echo back what it read (read-only fields are ignored).
    clock.set(t("2026-11-21T08:00:00Z"));
    let mut body = created.clone();
    body["allowance"] = json!({"count": 1, "per": "day"});
    body["phone_numbers"] = json!(["07700 900456", "029 2012 3457"]);
    let resp = app
        .manager(Method::PUT, &path)
        .header("if-match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    let v2: Value = resp.json().await.unwrap();
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["allowance"], json!({"count": 1, "per": "day"}));
    assert_eq!(
        v2["phone_numbers"],
        json!([ALLOWANCE_NUMBER, "+442920123457"])
    );
    assert_eq!(v2["created_at"], created["created_at"]);
    assert_eq!(
        t(v2["updated_at"].as_str().unwrap()),
        t("2026-11-21T08:00:00Z")
    );

    // Changing the id in the body is refused.
    let resp = app
        .manager(Method::PUT, &path)
        .header("if-match", "\"2\"")
        .json(&with(
            v2.clone(),
            json!({"id": "arr_01JF0000000000000000000000"}),
        ))
        .send()
        .await
        .unwrap();
    let p = problem(resp, 422).await;
    assert_eq!(fields(&p), vec!["id".to_string()]);

    clock.set(t("2026-11-22T08:00:00Z"));
    let resp = app
        .manager(Method::POST, &format!("{path}/revoke"))
        .json(&json!({"reason": "Review: no longer needed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"3\"");
    let v3: Value = resp.json().await.unwrap();
    assert_eq!(v3["status"], "revoked");
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["revoked_reason"], "Review: no longer needed");
    assert_eq!(
        t(v3["revoked_at"].as_str().unwrap()),
        t("2026-11-22T08:00:00Z")
    );

    // A second revoke and a PUT are conflicts.
    let resp = app
        .manager(Method::POST, &format!("{path}/revoke"))
        .json(&json!({"reason": "again"}))
        .send()
        .await
        .unwrap();
    problem(resp, 409).await;
    let resp = app
        .manager(Method::PUT, &path)
        .header("if-match", "\"3\"")
        .json(&fixture("allowance"))
        .send()
        .await
        .unwrap();
    problem(resp, 409).await;

    // History: every version, oldest first, who and what.
    let h = get_json(&app, &format!("{path}/history")).await;
    let items = h["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{h}");
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| i["change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "updated", "revoked"]);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["version"], i + 1);
        assert_eq!(item["changed_by"], "casework-manager");
        assert_eq!(item["arrangement"]["version"], i + 1);
    }
    assert_eq!(
        t(items[1]["changed_at"].as_str().unwrap()),
        t("2026-11-21T08:00:00Z")
    );
    assert_eq!(
        items[0]["arrangement"]["allowance"],
        json!({"count": 2, "per": "week"})
    );
    assert_eq!(
        items[1]["arrangement"]["allowance"],
        json!({"count": 1, "per": "day"})
    );
    assert_eq!(items[2]["arrangement"]["status"], "revoked");
    app.stop().await;
}

#[tokio::test]
async fn api_status_is_derived_and_review_overdue_only_when_active() {
    let (app, clock) = spawn_at("2026-11-01T12:00:00Z").await;
    let a = app.create_arrangement(fixture("restricted")).await; // 12-01 → 06-01, review 03-01
    let b = app.create_arrangement(fixture("blocked")).await; // 12-01 → 03-01, review 02-01
    let path_a = format!("/api/v1/arrangements/{}", a["id"].as_str().unwrap());
    let path_b = format!("/api/v1/arrangements/{}", b["id"].as_str().unwrap());
    let status = |v: &Value| {
        (
            v["status"].as_str().unwrap().to_string(),
            v.get("review_overdue").cloned(),
        )
    };
    let steps = [
        ("2026-11-30T23:59:59Z", "scheduled", None),
        ("2026-12-01T00:00:00Z", "active", None),
        ("2027-03-01T23:00:00Z", "active", None), // review day itself is not overdue
        ("2027-03-02T00:30:00Z", "active", Some(json!(true))),
        ("2027-06-01T00:00:00Z", "expired", None),
    ];
    for (at, want, overdue) in steps {
        clock.set(t(at));
        let v = get_json(&app, &path_a).await;
        assert_eq!(status(&v), (want.to_string(), overdue.clone()), "at {at}");
        // The list shows the same.
        let l = get_json(&app, "/api/v1/arrangements?phone=%2B442920123456").await;
        assert_eq!(
            status(&l["items"][0]),
            (want.to_string(), overdue),
            "list at {at}"
        );
    }
    // Revoked while its review is overdue: revoked, not overdue.
    clock.set(t("2027-02-15T10:00:00Z"));
    assert_eq!(
        status(&get_json(&app, &path_b).await),
        ("active".to_string(), Some(json!(true)))
    );
    let resp = app
        .manager(Method::POST, &format!("{path_b}/revoke"))
        .json(&json!({"reason": "appeal upheld"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        status(&get_json(&app, &path_b).await),
        ("revoked".to_string(), None)
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Evaluate and the decision log
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_evaluate_gives_every_reason_without_side_effects() {
    // Tuesday 2026-12-01, 10:30 GMT: inside the restricted window.
    let (app, clock) = spawn_at("2026-12-01T10:30:00Z").await;
    let restricted = app.create_arrangement(fixture("restricted")).await;
    let blocked = app.create_arrangement(fixture("blocked")).await;
    let allowance = app.create_arrangement(fixture("allowance")).await;
    let at = "2026-12-01T10:30:00Z";

    let ev = |from: &str, at: Option<&str>| {
        let mut body = json!({"from": from});
        if let Some(at) = at {
            body["at"] = json!(at);
        }
        body
    };

    let e = evaluate(&app, ev("anonymous", Some(at))).await;
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("continue"), Some("withheld_number"))
    );
    let e = evaluate(&app, ev("+266696687", Some(at))).await;
    assert_eq!(e["reason"], "withheld_number");
    let e = evaluate(&app, ev("call-me", Some(at))).await;
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("continue"), Some("unrecognised_number"))
    );
    let e = evaluate(&app, ev("+447700900999", Some(at))).await;
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("continue"), Some("no_arrangement"))
    );
    assert_eq!(e["arrangement_id"], Value::Null);
    assert_eq!(e["next_permitted_at"], Value::Null);
    assert_eq!(e["messages"], json!([]));

    // Blocked: refused, no next time, spoken in the organisation's language (en).
    let e = evaluate(&app, ev("07700 900123", Some(at))).await;
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("refuse"), Some("blocked"))
    );
    assert_eq!(e["arrangement_id"], blocked["id"]);
    assert_eq!(e["next_permitted_at"], Value::Null);
    let langs: Vec<&str> = e["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["language"].as_str().unwrap())
        .collect();
    assert_eq!(langs, ["en"]);

    // Inside the window with nothing counted: routed to Alice, nothing spoken.
    let e = evaluate(&app, ev(RESTRICTED_NUMBER, Some(at))).await;
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("route"), Some("designated_staff"))
    );
    assert_eq!(e["route_to"], "alice");
    assert_eq!(e["arrangement_id"], restricted["id"]);
    assert_eq!(e["next_permitted_at"], Value::Null);
    assert_eq!(e["calls_counted"], 0);
    assert_eq!(e["messages"], json!([]));

    // Outside the window (same day, 13:00): refused until Thursday 10:00, Welsh first.
    let e = evaluate(&app, ev("02920 123456", Some("2026-12-01T13:00:00Z"))).await;
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("refuse"), Some("outside_window"))
    );
    assert_eq!(
        t(e["next_permitted_at"].as_str().unwrap()),
        t("2026-12-03T10:00:00Z")
    );
    let langs: Vec<&str> = e["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["language"].as_str().unwrap())
        .collect();
    assert_eq!(langs, ["cy", "en"]);
    assert!(e["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| !m["text"].as_str().unwrap().is_empty()));

    // Allowance with room: continue within the arrangement.
    let e = evaluate(&app, ev(ALLOWANCE_NUMBER, Some(at))).await;
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("continue"), Some("within_arrangement"))
    );
    assert_eq!(e["arrangement_id"], allowance["id"]);
    assert_eq!(e["next_permitted_at"], Value::Null);
    assert_eq!(e["calls_counted"], 0);

    // No side effects: evaluating twice counts nothing and logs nothing.
    let again = evaluate(&app, ev(RESTRICTED_NUMBER, Some(at))).await;
    assert_eq!(again["calls_counted"], 0);
    assert_eq!(again["reason"], "designated_staff");
    let log = get_json(&app, "/api/v1/decisions").await;
    assert_eq!(log["items"], json!([]));

    // A real call is counted; evaluate then says the allowance is used, until Thursday.
    let d = app
        .state
        .decide_call(&event(RESTRICTED_NUMBER, "CA-eval-1"))
        .await;
    assert_eq!(d.decision.outcome, Outcome::Route);
    let e = evaluate(&app, ev(RESTRICTED_NUMBER, None)).await; // `at` defaults to the clock
    assert_eq!(
        (e["outcome"].as_str(), e["reason"].as_str()),
        (Some("refuse"), Some("allowance_used"))
    );
    assert_eq!(e["calls_counted"], 1);
    assert_eq!(
        t(e["next_permitted_at"].as_str().unwrap()),
        t("2026-12-03T10:00:00Z")
    );
    assert_eq!(e["messages"].as_array().unwrap().len(), 2);
    // The next day the count is 0 again (outside the window on a Wednesday).
    let e = evaluate(&app, ev(RESTRICTED_NUMBER, Some("2026-12-02T10:30:00Z"))).await;
    assert_eq!(e["calls_counted"], 0);
    assert_eq!(e["reason"], "outside_window");

    // Weekly allowance: two calls, then refused until Monday.
    for i in 0..2 {
        let d = app
            .state
            .decide_call(&event(ALLOWANCE_NUMBER, &format!("CA-week-{i}")))
            .await;
        assert_eq!(d.decision.reason, Reason::WithinArrangement);
    }
    clock.set(t("2026-12-04T09:00:00Z"));
    let e = evaluate(&app, ev(ALLOWANCE_NUMBER, None)).await;
    assert_eq!(e["reason"], "allowance_used");
    assert_eq!(e["calls_counted"], 2);
    assert_eq!(
        t(e["next_permitted_at"].as_str().unwrap()),
        t("2026-12-07T00:00:00Z")
    );
    // Only the real calls are in the log.
    let log = get_json(&app, "/api/v1/decisions").await;
    assert_eq!(log["items"].as_array().unwrap().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn api_decisions_log_filters_by_phone_since_and_until() {
    let (app, clock) = spawn_at("2026-12-01T10:00:00Z").await;
    let restricted = app.create_arrangement(fixture("restricted")).await;
    app.create_arrangement(fixture("blocked")).await;
    let calls = [
        ("2026-12-01T10:05:00Z", RESTRICTED_NUMBER, "CA-1"),
        ("2026-12-01T10:10:00Z", "07700 900123", "CA-2"),
        ("2026-12-01T10:20:00Z", "02920 123456", "CA-3"),
        ("2026-12-01T10:30:00Z", "+447700900999", "CA-4"), // no arrangement: not logged
        ("2026-12-01T10:40:00Z", BLOCKED_NUMBER, "CA-5"),
    ];
    for (at, from, id) in calls {
        clock.set(t(at));
        app.state.decide_call(&event(from, id)).await;
    }
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["call_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let all = get_json(&app, "/api/v1/decisions").await;
    assert_eq!(ids(&all), ["CA-1", "CA-2", "CA-3", "CA-5"]);
    let first = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["call_id"] == "CA-1")
        .unwrap();
    assert_eq!(first["provider"], "twilio");
    assert_eq!(first["number"], RESTRICTED_NUMBER);
    assert_eq!(first["outcome"], "route");
    assert_eq!(first["reason"], "designated_staff");
    assert_eq!(first["arrangement_id"], restricted["id"]);
    assert_eq!(first["arrangement_version"], 1);
    assert_eq!(first["source"], "store");
    assert_eq!(first["counted"], true);
    assert_eq!(
        t(first["decided_at"].as_str().unwrap()),
        t("2026-12-01T10:05:00Z")
    );
    let third = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["call_id"] == "CA-3")
        .unwrap();
    assert_eq!(third["reason"], "allowance_used");
    assert_eq!(third["source"], "cache");
    assert_eq!(third["counted"], false);

    let by_phone = get_json(&app, "/api/v1/decisions?phone=029%202012%203456").await;
    assert_eq!(ids(&by_phone), ["CA-1", "CA-3"]);
    let since = get_json(&app, "/api/v1/decisions?since=2026-12-01T10:10:00Z").await;
    assert_eq!(ids(&since), ["CA-2", "CA-3", "CA-5"]);
    let until = get_json(&app, "/api/v1/decisions?until=2026-12-01T10:20:00Z").await;
    assert_eq!(ids(&until), ["CA-1", "CA-2"]);
    let both = get_json(&app, "/api/v1/decisions?phone=%2B447700900123&since=2026-12-01T10:00:00Z&until=2026-12-01T10:40:00Z").await;
    assert_eq!(ids(&both), ["CA-2"]);
    let resp = app
        .manager(Method::GET, "/api/v1/decisions?since=yesterday&phone=abc")
        .send()
        .await
        .unwrap();
    let p = problem(resp, 422).await;
    let mut named = fields(&p);
    named.sort();
    assert_eq!(named, ["phone", "since"]);
    app.stop().await;
}

#[tokio::test]
async fn api_a_change_is_seen_by_the_next_decision() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let number = "+447700900555";
    let d = app.state.decide_call(&event(number, "CA-c1")).await;
    assert_eq!(d.decision.reason, Reason::NoArrangement);
    // Cached now as "no arrangement" (a negative hit).
    let d = app.state.decide_call(&event(number, "CA-c2")).await;
    assert_eq!(d.decision.reason, Reason::NoArrangement);

    let created = app
        .create_arrangement(with(
            fixture("blocked"),
            json!({"phone_numbers": ["07700 900555"], "starts_at": null}),
        ))
        .await;
    let d = app.state.decide_call(&event(number, "CA-c3")).await;
    assert_eq!(
        (d.decision.outcome, d.decision.reason),
        (Outcome::Refuse, Reason::Blocked)
    );

    let id = created["id"].as_str().unwrap();
    let resp = app
        .manager(Method::POST, &format!("/api/v1/arrangements/{id}/revoke"))
        .json(&json!({"reason": "appeal upheld"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let d = app.state.decide_call(&event(number, "CA-c4")).await;
    assert_eq!(
        (d.decision.outcome, d.decision.reason),
        (Outcome::Continue, Reason::NoArrangement)
    );

    // An update is seen too: a new arrangement, then its number changed away.
    let other = app
        .create_arrangement(with(
            fixture("blocked"),
            json!({"phone_numbers": [number], "starts_at": null}),
        ))
        .await;
    assert_eq!(
        app.state
            .decide_call(&event(number, "CA-c5"))
            .await
            .decision
            .reason,
        Reason::Blocked
    );
    let oid = other["id"].as_str().unwrap();
    let resp = app
        .manager(Method::PUT, &format!("/api/v1/arrangements/{oid}"))
        .header("if-match", "\"1\"")
        .json(&with(
            other.clone(),
            json!({"phone_numbers": ["+447700900556"]}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        app.state
            .decide_call(&event(number, "CA-c6"))
            .await
            .decision
            .reason,
        Reason::NoArrangement
    );
    assert_eq!(
        app.state
            .decide_call(&event("+447700900556", "CA-c7"))
            .await
            .decision
            .reason,
        Reason::Blocked
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

fn fairline() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_fairline"))
}

#[tokio::test]
async fn cli_evaluate_prints_the_decision_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let url = format!("sqlite://{}", db.display());
    // Prepare the file through the API of a server on it.
    {
        let config = crate::app::test_config(&url, "");
        let clock = ManualClock::new(t(PINNED_NOW));
        let overrides = Overrides {
            clock: Some(Arc::new(clock)),
            ..Default::default()
        };
        let state = fairline::AppState::build(config, overrides).await.unwrap();
        let app = TestApp::start(state, None).await;
        app.create_arrangement(fixture("restricted")).await;
        app.create_arrangement(fixture("blocked")).await;
        app.stop().await;
    }
    let config_path = dir.path().join("fairline.toml");
    std::fs::write(&config_path, crate::app::test_toml(&url, "")).unwrap();

    let run = |from: &str, at: &str| {
        let out = fairline()
            .args(["evaluate", "--from", from, "--at", at, "--config"])
            .arg(&config_path)
            .env_remove("FAIRLINE_STORAGE__URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let e = run("02920 123456", "2026-12-01T13:00:00Z");
    assert_eq!(e["outcome"], "refuse");
    assert_eq!(e["reason"], "outside_window");
    assert_eq!(
        t(e["next_permitted_at"].as_str().unwrap()),
        t("2026-12-03T10:00:00Z")
    );
    assert_eq!(e["calls_counted"], 0);
    let langs: Vec<&str> = e["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["language"].as_str().unwrap())
        .collect();
    assert_eq!(langs, ["cy", "en"]);
    let e = run(RESTRICTED_NUMBER, "2026-12-01T10:30:00Z");
    assert_eq!(e["outcome"], "route");
    assert_eq!(e["route_to"], "alice");
    let e = run(BLOCKED_NUMBER, "2026-12-02T10:30:00Z");
    assert_eq!(e["reason"], "blocked");
    assert_eq!(e["next_permitted_at"], Value::Null);
    let e = run(BLOCKED_NUMBER, "2026-11-02T10:30:00Z"); // before it starts
    assert_eq!(e["reason"], "no_arrangement");
    let e = run("anonymous", "2026-12-01T10:30:00Z");
    assert_eq!(e["reason"], "withheld_number");

    // No side effects: still nothing counted, no decision logged.
    let store = fairline::store::sqlite::SqliteStore::open_path(&db)
        .await
        .unwrap();
    use fairline::store::CallLog;
    let log = store
        .list_decisions(&fairline::store::DecisionFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(log.is_empty());
    store.close().await;

    // A bad --at is exit 2.
    let out = fairline()
        .args([
            "evaluate",
            "--from",
            RESTRICTED_NUMBER,
            "--at",
            "soon",
            "--config",
        ])
        .arg(&config_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_check_config_accepts_the_default_and_lists_every_problem() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = fairline()
        .current_dir(root)
        .args(["check-config", "--config", "config/default.toml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OK"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[server]
bind = "not an address"
colour = "blue"

[organisation]
timezone = "Europe/Atlantis"
language = "fr"

[decision]
on_lookup_failure = "maybe"

[[auth.tokens]]
name = "x"
role = "admin"
sha256 = "sha256:zz"
"#,
    )
    .unwrap();
    let out = fairline()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.bind",
        "colour",
        "organisation.timezone",
        "organisation.language",
        "on_lookup_failure",
        "role",
        "sha256",
    ] {
        assert!(stderr.contains(key), "{key} not reported in:\n{stderr}");
    }

    // Secrets are not printed in the summary.
    let secret_cfg = dir.path().join("secret.toml");
    let toml = crate::app::test_toml("sqlite://x.db", "");
    std::fs::write(&secret_cfg, &toml).unwrap();
    let out = fairline()
        .args(["check-config", "--config"])
        .arg(&secret_cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(crate::app::TWILIO_TOKEN), "{all}");
}

#[test]
fn cli_token_hash_prints_sha256_of_stdin() {
    use sha2::Digest;
    use std::io::Write;
    for input in [format!("{AGENT_TOKEN}\n"), AGENT_TOKEN.to_string()] {
        let mut child = fairline()
            .args(["token", "hash"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let line = String::from_utf8(out.stdout).unwrap();
        let expected = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(AGENT_TOKEN.as_bytes()))
        );
        assert_eq!(line.trim_end(), expected);
        assert_eq!(line.trim_end(), fairline::config::hash_token(AGENT_TOKEN));
    }
}

#[tokio::test]
async fn api_concurrent_updates_with_the_same_if_match_one_wins() {
    let (app, _clock) = spawn_at(PINNED_NOW).await;
    let created = app.create_arrangement(fixture("allowance")).await;
    let path = format!("/api/v1/arrangements/{}", created["id"].as_str().unwrap());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let req = app
            .manager(Method::PUT, &path)
            .header("if-match", "\"1\"")
            .json(&with(
                fixture("allowance"),
                json!({"customer_name": format!("writer {i}")}),
            ));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 412, 412, 412, 412, 412, 412, 412]);
    let h = get_json(&app, &format!("{path}/history")).await;
    assert_eq!(h["items"].as_array().unwrap().len(), 2);
    app.stop().await;
}
