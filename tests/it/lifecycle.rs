//! Reviews, appeals and `customer_explanation` (SPEC §13) through the real server, on SQLite
//! and (when `FAIRLINE_TEST_POSTGRES_URL` is set) PostgreSQL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fairline::clock::ManualClock;
use fairline::domain::{CallId, CallerId, Provider};
use fairline::engine::Outcome;
use fairline::providers::CallEvent;
use fairline::state::Overrides;
use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{arrangement, TestApp};

/// The instant the tests' clock shows (injected; nothing depends on today's date).
const NOW: &str = "2026-11-10T10:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn overrides(clock: &ManualClock) -> Overrides {
    Overrides {
        clock: Some(Arc::new(clock.clone())),
        ..Default::default()
    }
}

/// Run `$name(app, clock)` against SQLite and PostgreSQL.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let clock = ManualClock::new(t(NOW));
                let app = TestApp::spawn_with("", overrides(&clock)).await;
                super::$name(&app, &clock).await;
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let name = concat!("lifecycle::", stringify!($name), "::postgres");
                let Some((url, schema)) = crate::support::pg_schema(name) else { return };
                let clock = ManualClock::new(t(NOW));
                let app = TestApp::spawn_pg(&url, &schema, "", overrides(&clock))
                    .await
                    .unwrap();
                super::$name(&app, &clock).await;
                app.stop().await;
                let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
            }
        }
    )*};
}

both_backends!(
    reviews_continue_vary_end,
    review_validation_and_roles,
    appeals_open_decide_once_and_uphold,
    appeal_validation_and_roles,
    customer_explanation_is_stored_and_in_history,
);

const NUMBER: &str = "+442920123456";

/// A blocked arrangement in force at [`NOW`] (so that evaluate shows whether it is enforced).
fn blocked(number: &str) -> Value {
    arrangement(
        number,
        json!({
            "kind": "blocked",
            "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": "2027-05-01T00:00:00Z",
            "review_due": "2027-02-01",
        }),
    )
}

async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.manager(method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = send(app, Method::GET, path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    send(app, Method::POST, path, Some(body)).await
}

/// The fields named in a 422 problem document.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect()
}

/// The decision for a call from `number`, through the cache as a webhook would get it:
/// `"refuse"`, `"continue"` or `"route"`.
async fn evaluate_outcome(app: &TestApp, number: &str) -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    let d = app
        .state
        .decide_call(&CallEvent {
            provider: Provider::Twilio,
            call_id: CallId::parse(&format!("CA-lifecycle-{n}")).unwrap(),
            caller: CallerId::classify(number),
        })
        .await;
    match d.decision.outcome {
        Outcome::Refuse => "refuse",
        Outcome::Continue => "continue",
        Outcome::Route => "route",
    }
    .to_owned()
}

async fn history_changes(app: &TestApp, id: &str) -> Vec<(i64, String, String)> {
    let h = get(app, &format!("/api/v1/arrangements/{id}/history")).await;
    h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["version"].as_i64().unwrap(),
                e["change"].as_str().unwrap().to_owned(),
                e["changed_by"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reviews
// ---------------------------------------------------------------------------------------------

async fn reviews_continue_vary_end(app: &TestApp, clock: &ManualClock) {
    let created = app.create_arrangement(blocked(NUMBER)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["version"], 1);
    assert_eq!(created["open_appeals"], 0);
    // Cached as blocked before any review.
    assert_eq!(evaluate_outcome(app, NUMBER).await, "refuse");
    let reviews = format!("/api/v1/arrangements/{id}/reviews");

    // continue: moves review_due, new version.
    clock.set(t("2026-11-11T09:00:00Z"));
    let (status, r1) = post(
        app,
        &reviews,
        json!({"outcome": "continue", "notes": "Still needed", "next_review_due": "2027-04-01"}),
    )
    .await;
    assert_eq!(status, 201, "{r1}");
    assert!(r1["id"].as_str().unwrap().starts_with("rev_"), "{r1}");
    assert_eq!(r1["outcome"], "continue");
    assert_eq!(r1["next_review_due"], "2027-04-01");
    assert_eq!(r1["reviewer"], "casework-manager");
    assert_eq!(r1["reviewed_at"], "2026-11-11T09:00:00Z");
    assert_eq!(r1["arrangement_version"], 2);
    let a = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["review_due"], "2027-04-01");
    assert_eq!(a["version"], 2);
    assert_eq!(a["status"], "active");
    assert_eq!(a["updated_at"], "2026-11-11T09:00:00Z");

    // vary: recorded, version bumped, nothing else changes.
    let (status, r2) = post(
        app,
        &reviews,
        json!({"outcome": "vary", "notes": "Allow calls on Tuesdays"}),
    )
    .await;
    assert_eq!(status, 201, "{r2}");
    assert_eq!(r2["next_review_due"], Value::Null);
    let a = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["version"], 3);
    assert_eq!(a["review_due"], "2027-04-01");
    assert_eq!(a["kind"], "blocked");
    assert_eq!(evaluate_outcome(app, NUMBER).await, "refuse");

    // end: revoked now, with the review as the reason; the block is lifted at once.
    clock.set(t("2026-11-12T15:30:00Z"));
    let (status, r3) = post(
        app,
        &reviews,
        json!({"outcome": "end", "notes": "Behaviour has improved"}),
    )
    .await;
    assert_eq!(status, 201, "{r3}");
    let a = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["version"], 4);
    assert_eq!(a["status"], "revoked");
    assert_eq!(a["revoked_at"], "2026-11-12T15:30:00Z");
    let reason = a["revoked_reason"].as_str().unwrap();
    assert!(
        reason.contains(r3["id"].as_str().unwrap()) && reason.contains("Behaviour has improved"),
        "{reason}"
    );
    assert_eq!(evaluate_outcome(app, NUMBER).await, "continue");

    // A revoked arrangement is not reviewed again.
    let (status, p) = post(app, &reviews, json!({"outcome": "vary"})).await;
    assert_eq!(status, 409, "{p}");

    // The list, oldest first, and every review in the history.
    let list = get(app, &reviews).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            r1["id"].as_str().unwrap(),
            r2["id"].as_str().unwrap(),
            r3["id"].as_str().unwrap()
        ]
    );
    assert_eq!(list["items"][2]["outcome"], "end");
    assert_eq!(list["items"][2]["arrangement_version"], 4);
    let changes = history_changes(app, &id).await;
    let kinds: Vec<(i64, &str)> = changes.iter().map(|(v, c, _)| (*v, c.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (1, "created"),
            (2, "reviewed"),
            (3, "reviewed"),
            (4, "reviewed")
        ]
    );
    assert!(changes.iter().all(|(_, _, by)| by == "casework-manager"));
    let h = get(app, &format!("/api/v1/arrangements/{id}/history")).await;
    assert_eq!(h["items"][1]["arrangement"]["review_due"], "2027-04-01");
    assert_eq!(h["items"][3]["arrangement"]["status"], "revoked");

    // An If-Match with the version before the reviews is stale now.
    let resp = app
        .manager(Method::PUT, &format!("/api/v1/arrangements/{id}"))
        .header("If-Match", "\"1\"")
        .json(&blocked(NUMBER))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 412);
}

async fn review_validation_and_roles(app: &TestApp, _clock: &ManualClock) {
    let created = app.create_arrangement(blocked(NUMBER)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let reviews = format!("/api/v1/arrangements/{id}/reviews");

    let cases = [
        (json!({}), vec!["outcome"]),
        (json!({"outcome": "pause"}), vec!["outcome"]),
        (json!({"outcome": "continue"}), vec!["next_review_due"]),
        (
            json!({"outcome": "continue", "next_review_due": "2027-05-02"}),
            vec!["next_review_due"],
        ),
        (
            json!({"outcome": "continue", "next_review_due": "1 May"}),
            vec!["next_review_due"],
        ),
        (
            json!({"outcome": "end", "next_review_due": "2027-01-01"}),
            vec!["next_review_due"],
        ),
        (
            json!({"outcome": "vary", "notes": 7, "colour": "red"}),
            vec!["colour", "notes"],
        ),
    ];
    for (body, expected) in cases {
        let (status, p) = post(app, &reviews, body.clone()).await;
        assert_eq!(status, 422, "{body} -> {p}");
        let mut got = fields(&p);
        got.sort();
        assert_eq!(got, expected, "{body} -> {p}");
    }
    // ends_at's local date is allowed.
    let (status, p) = post(
        app,
        &reviews,
        json!({"outcome": "continue", "next_review_due": "2027-05-01"}),
    )
    .await;
    assert_eq!(status, 201, "{p}");

    // Agents may not review or list reviews.
    let resp = app
        .agent(Method::POST, &reviews)
        .json(&json!({"outcome": "vary"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = app.agent(Method::GET, &reviews).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    // No token.
    let resp = app
        .client
        .get(format!("{}{reviews}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // Unknown arrangements.
    let unknown = "/api/v1/arrangements/arr_01JF000000000000000000000Z/reviews";
    let (status, _) = post(app, unknown, json!({"outcome": "vary"})).await;
    assert_eq!(status, 404);
    let (status, _) = send(app, Method::GET, unknown, None).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        app,
        Method::GET,
        "/api/v1/arrangements/nonsense/reviews",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Nothing invalid changed the arrangement: one review, version 2.
    let a = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["version"], 2);
    assert_eq!(
        get(app, &reviews).await["items"].as_array().unwrap().len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Appeals
// ---------------------------------------------------------------------------------------------

async fn appeals_open_decide_once_and_uphold(app: &TestApp, clock: &ManualClock) {
    let created = app.create_arrangement(blocked(NUMBER)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let other = app.create_arrangement(blocked("+447700900123")).await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let appeals = format!("/api/v1/arrangements/{id}/appeals");

    let (status, a1) = post(
        app,
        &appeals,
        json!({"received_at": "2026-11-09T16:45:00Z", "grounds": "The calls were not abusive"}),
    )
    .await;
    assert_eq!(status, 201, "{a1}");
    assert!(a1["id"].as_str().unwrap().starts_with("apl_"), "{a1}");
    assert_eq!(a1["status"], "open");
    assert_eq!(a1["arrangement_id"], id.as_str());
    assert_eq!(a1["received_at"], "2026-11-09T16:45:00Z");
    assert_eq!(a1["created_at"], NOW);
    assert_eq!(a1["outcome"], Value::Null);
    assert_eq!(a1["decided_at"], Value::Null);
    let a = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["open_appeals"], 1);
    assert_eq!(a["version"], 2);

    clock.set(t("2026-11-10T11:00:00Z"));
    // received_at defaults to now.
    let (status, a2) = post(app, &appeals, json!({"grounds": "A second letter"})).await;
    assert_eq!(status, 201, "{a2}");
    assert_eq!(a2["received_at"], "2026-11-10T11:00:00Z");
    let (status, a3) = post(
        app,
        &format!("/api/v1/arrangements/{other_id}/appeals"),
        json!({"grounds": "About the other arrangement"}),
    )
    .await;
    assert_eq!(status, 201, "{a3}");
    assert_eq!(
        get(app, &format!("/api/v1/arrangements/{id}")).await["open_appeals"],
        2
    );
    // The list shows it too.
    let list = get(app, &format!("/api/v1/arrangements?phone={NUMBER}")).await;
    assert_eq!(list["items"][0]["open_appeals"], 2);

    let open = get(app, "/api/v1/appeals?status=open").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 3);
    let mine = get(app, &format!("/api/v1/appeals?arrangement_id={id}")).await;
    let mine_ids: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        mine_ids,
        vec![a1["id"].as_str().unwrap(), a2["id"].as_str().unwrap()]
    );

    // Dismissed: decided once; a second decision is 409 and changes nothing.
    clock.set(t("2026-11-20T12:00:00Z"));
    let decide1 = format!("/api/v1/appeals/{}/decision", a1["id"].as_str().unwrap());
    let (status, d1) = post(
        app,
        &decide1,
        json!({"outcome": "dismissed", "decided_by": "Chief Executive", "notes": "The arrangement stands"}),
    )
    .await;
    assert_eq!(status, 200, "{d1}");
    assert_eq!(d1["status"], "decided");
    assert_eq!(d1["outcome"], "dismissed");
    assert_eq!(d1["decided_by"], "Chief Executive");
    assert_eq!(d1["notes"], "The arrangement stands");
    assert_eq!(d1["decided_at"], "2026-11-20T12:00:00Z");
    let (status, p) = post(
        app,
        &decide1,
        json!({"outcome": "upheld", "decided_by": "Someone else"}),
    )
    .await;
    assert_eq!(status, 409, "{p}");
    let again = get(
        app,
        &format!("/api/v1/appeals/{}", a1["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(again["outcome"], "dismissed");
    let a = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["open_appeals"], 1);
    assert_eq!(a["status"], "active");
    assert_eq!(a["version"], 4);
    assert_eq!(evaluate_outcome(app, NUMBER).await, "refuse");

    let decided = get(app, "/api/v1/appeals?status=decided").await;
    assert_eq!(decided["items"].as_array().unwrap().len(), 1);
    assert_eq!(decided["items"][0]["id"], a1["id"]);
    assert_eq!(
        get(app, "/api/v1/appeals?status=open").await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Upheld: the arrangement is revoked at once and no longer enforced.
    clock.set(t("2026-11-21T09:15:00Z"));
    let decide2 = format!("/api/v1/appeals/{}/decision", a2["id"].as_str().unwrap());
    let (status, d2) = post(
        app,
        &decide2,
        json!({"outcome": "upheld", "decided_by": "Chief Executive"}),
    )
    .await;
    assert_eq!(status, 200, "{d2}");
    let a = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["status"], "revoked");
    assert_eq!(a["revoked_at"], "2026-11-21T09:15:00Z");
    assert!(
        a["revoked_reason"]
            .as_str()
            .unwrap()
            .contains(a2["id"].as_str().unwrap()),
        "{a}"
    );
    assert_eq!(a["open_appeals"], 0);
    assert_eq!(a["version"], 5);
    assert_eq!(evaluate_outcome(app, NUMBER).await, "continue");
    // The other arrangement is untouched.
    let o = get(app, &format!("/api/v1/arrangements/{other_id}")).await;
    assert_eq!(o["status"], "active");
    assert_eq!(o["open_appeals"], 1);

    // No appeal against a revoked arrangement.
    let (status, p) = post(app, &appeals, json!({"grounds": "Late"})).await;
    assert_eq!(status, 409, "{p}");

    let changes = history_changes(app, &id).await;
    let kinds: Vec<&str> = changes.iter().map(|(_, c, _)| c.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "created",
            "appealed",
            "appealed",
            "appeal_decided",
            "appeal_decided"
        ]
    );
    let h = get(app, &format!("/api/v1/arrangements/{id}/history")).await;
    assert_eq!(h["items"][2]["arrangement"]["open_appeals"], 2);
    assert_eq!(h["items"][3]["arrangement"]["open_appeals"], 1);
}

async fn appeal_validation_and_roles(app: &TestApp, _clock: &ManualClock) {
    let created = app.create_arrangement(blocked(NUMBER)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let appeals = format!("/api/v1/arrangements/{id}/appeals");

    let cases = [
        (json!({}), vec!["grounds"]),
        (json!({"grounds": "   "}), vec!["grounds"]),
        (
            json!({"grounds": "x", "received_at": "yesterday"}),
            vec!["received_at"],
        ),
        (
            json!({"grounds": "x", "received_at": "2026-11-11T10:00:00Z"}),
            vec!["received_at"],
        ),
        (json!({"grounds": "x", "status": "open"}), vec!["status"]),
    ];
    for (body, expected) in cases {
        let (status, p) = post(app, &appeals, body.clone()).await;
        assert_eq!(status, 422, "{body} -> {p}");
        assert_eq!(fields(&p), expected, "{body} -> {p}");
    }
    let (status, appeal) = post(app, &appeals, json!({"grounds": "Unfair"})).await;
    assert_eq!(status, 201, "{appeal}");
    let decide = format!(
        "/api/v1/appeals/{}/decision",
        appeal["id"].as_str().unwrap()
    );
    let cases = [
        (json!({}), vec!["decided_by", "outcome"]),
        (
            json!({"outcome": "granted", "decided_by": "CEO"}),
            vec!["outcome"],
        ),
        (
            json!({"outcome": "varied", "decided_by": ""}),
            vec!["decided_by"],
        ),
    ];
    for (body, expected) in cases {
        let (status, p) = post(app, &decide, body.clone()).await;
        assert_eq!(status, 422, "{body} -> {p}");
        let mut got = fields(&p);
        got.sort();
        assert_eq!(got, expected, "{body} -> {p}");
    }
    let (status, p) = send(app, Method::GET, "/api/v1/appeals?status=closed", None).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(fields(&p), vec!["status"]);
    // An empty filter is no filter, as on every list (and so documented: schemathesis found
    // the appeals' status documented as a bare enum).
    let (status, p) = send(app, Method::GET, "/api/v1/appeals?status=&limit=5", None).await;
    assert_eq!(status, 200, "{p}");

    // Agents may do none of it.
    for (method, path) in [
        (Method::POST, appeals.as_str()),
        (Method::POST, decide.as_str()),
        (Method::GET, "/api/v1/appeals"),
    ] {
        let resp = app
            .agent(method.clone(), path)
            .json(&json!({"grounds": "x", "outcome": "upheld", "decided_by": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{method} {path}");
    }

    // Unknown ids.
    let (status, _) = post(
        app,
        "/api/v1/appeals/apl_01JF000000000000000000000Z/decision",
        json!({"outcome": "upheld", "decided_by": "CEO"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(
        app,
        "/api/v1/arrangements/arr_01JF000000000000000000000Z/appeals",
        json!({"grounds": "x"}),
    )
    .await;
    assert_eq!(status, 404);

    // "varied" keeps the arrangement in force (the change itself is a PUT).
    let (status, d) = post(
        app,
        &decide,
        json!({"outcome": "varied", "decided_by": "Head of Casework"}),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    let a = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["status"], "active");
    assert_eq!(a["open_appeals"], 0);
    assert_eq!(a["version"], 3);
}

// ---------------------------------------------------------------------------------------------
// customer_explanation
// ---------------------------------------------------------------------------------------------

async fn customer_explanation_is_stored_and_in_history(app: &TestApp, _clock: &ManualClock) {
    let mut body = blocked(NUMBER);
    body["customer_explanation"] = json!("You shouted at our staff on three calls in October.");
    let created = app.create_arrangement(body.clone()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["customer_explanation"],
        "You shouted at our staff on three calls in October."
    );
    let got = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(got["customer_explanation"], created["customer_explanation"]);

    body["customer_explanation"] = json!("Updated words.");
    let resp = app
        .manager(Method::PUT, &format!("/api/v1/arrangements/{id}"))
        .header("If-Match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Echoing a GET back (with the read-only open_appeals) is accepted; leaving it out clears it.
    let mut echoed = get(app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(echoed["customer_explanation"], "Updated words.");
    echoed
        .as_object_mut()
        .unwrap()
        .remove("customer_explanation");
    let resp = app
        .manager(Method::PUT, &format!("/api/v1/arrangements/{id}"))
        .header("If-Match", "\"2\"")
        .json(&echoed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
    let h = get(app, &format!("/api/v1/arrangements/{id}/history")).await;
    let texts: Vec<Value> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["arrangement"]["customer_explanation"].clone())
        .collect();
    assert_eq!(
        texts,
        vec![
            json!("You shouted at our staff on three calls in October."),
            json!("Updated words."),
            Value::Null
        ]
    );

    let mut long = blocked("+447700900999");
    long["customer_explanation"] = json!("x".repeat(4001));
    let (status, p) = post(app, "/api/v1/arrangements", long).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(fields(&p), vec!["customer_explanation"]);
}

// ---------------------------------------------------------------------------------------------
// Several instances
// ---------------------------------------------------------------------------------------------

/// Poll `number` on `app` until the decision is `want`; panics after a second.
async fn within_a_second(app: &TestApp, number: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        if evaluate_outcome(app, number).await == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not {want} after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A review that ends an arrangement, and an upheld appeal, made through one instance are
/// enforced by another (which had the arrangement cached) within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_review_end_and_upheld_appeal_reach_another_instance_within_a_second() {
    let Some((url, schema)) = crate::support::pg_schema(
        "lifecycle::postgres_review_end_and_upheld_appeal_reach_another_instance_within_a_second",
    ) else {
        return;
    };
    let clock = ManualClock::new(t(NOW));
    let a = TestApp::spawn_pg(&url, &schema, "", overrides(&clock))
        .await
        .unwrap();
    let b = TestApp::spawn_pg(&url, &schema, "", overrides(&clock))
        .await
        .unwrap();

    let first = a.create_arrangement(blocked(NUMBER)).await;
    within_a_second(&b, NUMBER, "refuse").await;
    // Cached on B now.
    assert_eq!(evaluate_outcome(&b, NUMBER).await, "refuse");
    let (status, r) = post(
        &a,
        &format!(
            "/api/v1/arrangements/{}/reviews",
            first["id"].as_str().unwrap()
        ),
        json!({"outcome": "end"}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let took = within_a_second(&b, NUMBER, "continue").await;
    eprintln!("review end on A seen by B after {took:?}");

    let second_number = "+447700900777";
    let second = a.create_arrangement(blocked(second_number)).await;
    within_a_second(&b, second_number, "refuse").await;
    let (status, appeal) = post(
        &a,
        &format!(
            "/api/v1/arrangements/{}/appeals",
            second["id"].as_str().unwrap()
        ),
        json!({"grounds": "Unfair"}),
    )
    .await;
    assert_eq!(status, 201, "{appeal}");
    // Decided through B this time; A had it cached.
    assert_eq!(evaluate_outcome(&a, second_number).await, "refuse");
    let (status, d) = post(
        &b,
        &format!(
            "/api/v1/appeals/{}/decision",
            appeal["id"].as_str().unwrap()
        ),
        json!({"outcome": "upheld", "decided_by": "Chief Executive"}),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    let took = within_a_second(&a, second_number, "continue").await;
    eprintln!("upheld appeal on B seen by A after {took:?}");

    a.stop().await;
    b.stop().await;
    let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
}

/// The new endpoints are in the OpenAPI document.
#[tokio::test]
async fn the_openapi_document_lists_the_new_endpoints() {
    let app = TestApp::spawn("").await;
    let doc: Value = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/arrangements/{id}/reviews", "post"),
        ("/api/v1/arrangements/{id}/reviews", "get"),
        ("/api/v1/arrangements/{id}/appeals", "post"),
        ("/api/v1/appeals/{id}/decision", "post"),
        ("/api/v1/appeals", "get"),
        ("/api/v1/appeals/{id}", "get"),
        ("/api/v1/arrangements/{id}/letter", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let view = &doc["components"]["schemas"]["ArrangementView"]["properties"];
    assert!(view.get("open_appeals").is_some());
    assert!(view.get("customer_explanation").is_some());
    app.stop().await;
}
