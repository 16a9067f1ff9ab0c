//! Notices to the organisation (SPEC §13): the sweep with an injected clock — review due,
//! review overdue, ending, ended, appeal.created — each queued and delivered once per
//! arrangement version, on SQLite and PostgreSQL, and once when two instances sweep one store.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fairline::clock::ManualClock;
use fairline::state::Overrides;
use reqwest::Method;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::app::{arrangement, TestApp};

const T0: &str = "2026-11-10T10:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    server
}

fn extra(receiver: &MockServer) -> String {
    format!(
        "[notifications]\nwebhook_url = \"{}/hook\"\n",
        receiver.uri()
    )
}

fn overrides(clock: &ManualClock) -> Overrides {
    Overrides {
        clock: Some(Arc::new(clock.clone())),
        ..Default::default()
    }
}

/// Wait until the app's background sweep at start has finished, so that the sweeps a test runs
/// itself are the only ones queueing what the test creates.
async fn start_sweep_done(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while app
        .state
        .notice_sweeps
        .load(std::sync::atomic::Ordering::Acquire)
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweep at start never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Run `$name(app, clock, receiver)` against SQLite and PostgreSQL.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let clock = ManualClock::new(t(T0));
                let rx = receiver().await;
                let app = TestApp::spawn_with(&extra(&rx), overrides(&clock)).await;
                app.state.outbox.set_base_backoff(Duration::from_millis(20));
                start_sweep_done(&app).await;
                super::$name(&app, &clock, &rx).await;
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let name = concat!("notices::", stringify!($name), "::postgres");
                let Some((url, schema)) = crate::support::pg_schema(name) else { return };
                let clock = ManualClock::new(t(T0));
                let rx = receiver().await;
                let app = TestApp::spawn_pg(&url, &schema, &extra(&rx), overrides(&clock))
                    .await
                    .unwrap();
                app.state.outbox.set_base_backoff(Duration::from_millis(20));
                start_sweep_done(&app).await;
                super::$name(&app, &clock, &rx).await;
                app.stop().await;
                let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
            }
        }
    )*};
}

both_backends!(due_overdue_ending_ended_and_appeals_each_once);

async fn create(app: &TestApp, number: &str, fields: Value) -> String {
    let mut body = arrangement(number, json!({"kind": "blocked"}));
    for (k, v) in fields.as_object().unwrap() {
        body[k.as_str()] = v.clone();
    }
    app.create_arrangement(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The (event, arrangement id) of every notice in the store.
async fn queued(app: &TestApp) -> BTreeSet<(String, String)> {
    let all = app.state.store.list_notices(1000).await.unwrap();
    let set: BTreeSet<(String, String)> = all
        .iter()
        .map(|n| (n.event.clone(), n.arrangement_id.clone()))
        .collect();
    let keys: BTreeSet<&str> = all.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys.len(), all.len(), "a key queued twice");
    set
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(e, a)| (e.to_string(), a.to_string()))
        .collect()
}

/// Every request the receiver has, once there are `n` (then a pause to catch extras).
async fn delivered(rx: &MockServer, n: usize) -> Vec<Request> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = rx.received_requests().await.unwrap_or_default();
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    rx.received_requests().await.unwrap_or_default()
}

fn delivered_pairs(requests: &[Request]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = requests
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(
                r.headers.get("idempotency-key").unwrap().to_str().unwrap(),
                body["id"].as_str().unwrap()
            );
            (
                body["event"].as_str().unwrap().to_owned(),
                body["arrangement"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn due_overdue_ending_ended_and_appeals_each_once(
    app: &TestApp,
    clock: &ManualClock,
    rx: &MockServer,
) {
    let window = json!({"starts_at": "2026-10-01T00:00:00Z", "ends_at": "2027-05-01T00:00:00Z"});
    let mut due = window.clone();
    due["review_due"] = json!("2026-11-20");
    let a_due = create(app, "+442920100001", due).await;
    let mut overdue = window.clone();
    overdue["review_due"] = json!("2026-11-05");
    let a_overdue = create(app, "+442920100002", overdue).await;
    let a_ending = create(
        app,
        "+442920100003",
        json!({"starts_at": "2026-10-01T00:00:00Z", "ends_at": "2026-11-15T00:00:00Z", "review_due": "2026-11-14"}),
    )
    .await;
    let a_ended = create(
        app,
        "+442920100004",
        json!({"starts_at": "2026-09-01T00:00:00Z", "ends_at": "2026-11-09T00:00:00Z", "review_due": "2026-11-01"}),
    )
    .await;
    let mut quiet = window.clone();
    quiet["review_due"] = json!("2027-03-01");
    let a_quiet = create(app, "+442920100005", quiet).await;
    // Ended long ago: never announced.
    create(
        app,
        "+442920100006",
        json!({"starts_at": "2025-01-01T00:00:00Z", "ends_at": "2025-06-01T00:00:00Z", "review_due": "2025-05-01"}),
    )
    .await;
    // Not started yet: nothing.
    let a_scheduled = create(
        app,
        "+442920100007",
        json!({"starts_at": "2026-11-12T00:00:00Z", "ends_at": "2026-11-20T00:00:00Z", "review_due": "2026-11-19"}),
    )
    .await;

    let n = fairline::notices::sweep(&app.state).await.unwrap();
    let expected = pairs(&[
        ("arrangement.review_due", &a_due),
        ("arrangement.review_overdue", &a_overdue),
        ("arrangement.review_due", &a_ending),
        ("arrangement.ending", &a_ending),
        ("arrangement.ended", &a_ended),
    ]);
    assert_eq!(queued(app).await, expected);
    assert_eq!(n, 5);
    // A second sweep (same day, or the next) queues nothing new.
    assert_eq!(fairline::notices::sweep(&app.state).await.unwrap(), 0);
    clock.set(t("2026-11-11T10:00:00Z"));
    assert_eq!(fairline::notices::sweep(&app.state).await.unwrap(), 0);
    let got = delivered(rx, 5).await;
    assert_eq!(
        delivered_pairs(&got),
        expected.iter().cloned().collect::<Vec<_>>()
    );

    // Time passes (the daily sweeps were missed): a_due becomes overdue, a_ending has ended,
    // and the scheduled one has come and gone. Each new event once; nothing repeated.
    clock.set(t("2026-11-21T10:00:00Z"));
    assert_eq!(fairline::notices::sweep(&app.state).await.unwrap(), 3);
    let mut expected_now = expected.clone();
    expected_now.extend(pairs(&[
        ("arrangement.review_overdue", &a_due),
        ("arrangement.ended", &a_ending),
        ("arrangement.ended", &a_scheduled),
    ]));
    assert_eq!(queued(app).await, expected_now);
    assert_eq!(fairline::notices::sweep(&app.state).await.unwrap(), 0);

    // A review makes a new version: its due review is announced again, once.
    let (status, _) = {
        let resp = app
            .manager(
                Method::POST,
                &format!("/api/v1/arrangements/{a_quiet}/reviews"),
            )
            .json(&json!({"outcome": "continue", "next_review_due": "2026-11-30"}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), ())
    };
    assert_eq!(status, 201);
    assert_eq!(fairline::notices::sweep(&app.state).await.unwrap(), 1);
    assert!(queued(app)
        .await
        .contains(&("arrangement.review_due".to_string(), a_quiet.clone())));
    assert_eq!(fairline::notices::sweep(&app.state).await.unwrap(), 0);

    // appeal.created: queued when the appeal is made; the sweep does not repeat it.
    let resp = app
        .manager(
            Method::POST,
            &format!("/api/v1/arrangements/{a_quiet}/appeals"),
        )
        .json(&json!({"grounds": "Unfair"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let appeal: Value = resp.json().await.unwrap();
    assert!(queued(app)
        .await
        .contains(&("appeal.created".to_string(), a_quiet.clone())));
    // The appeal made a new version, so the review due is announced for it too; the appeal not.
    let before = app.state.store.list_notices(1000).await.unwrap().len();
    fairline::notices::sweep(&app.state).await.unwrap();
    let after = app.state.store.list_notices(1000).await.unwrap();
    assert_eq!(
        after.iter().filter(|n| n.event == "appeal.created").count(),
        1
    );
    assert!(after.len() <= before + 1);

    let total = after.len();
    let got = delivered(rx, total).await;
    assert_eq!(got.len(), total, "each notice delivered once");
    let appeal_body: Value = got
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|b| b["event"] == "appeal.created")
        .unwrap();
    assert_eq!(appeal_body["appeal"]["id"], appeal["id"]);
    assert_eq!(appeal_body["arrangement"]["open_appeals"], 1);
    assert_eq!(app.state.store.pending_notices().await.unwrap(), 0);
    assert!(app
        .state
        .store
        .list_notices(1000)
        .await
        .unwrap()
        .iter()
        .all(|n| n.delivered_at.is_some()));
}

/// Two instances on one PostgreSQL store sweeping at the same moment queue and deliver each
/// notice once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_instances_sweep_and_deliver_each_notice_once() {
    let Some((url, schema)) = crate::support::pg_schema(
        "notices::postgres_two_instances_sweep_and_deliver_each_notice_once",
    ) else {
        return;
    };
    let clock = ManualClock::new(t(T0));
    let rx = receiver().await;
    let a = TestApp::spawn_pg(&url, &schema, &extra(&rx), overrides(&clock))
        .await
        .unwrap();
    let b = TestApp::spawn_pg(&url, &schema, &extra(&rx), overrides(&clock))
        .await
        .unwrap();
    for app in [&a, &b] {
        app.state.outbox.set_base_backoff(Duration::from_millis(20));
    }
    for i in 0..10 {
        create(
            &a,
            &format!("+4429201100{i:02}"),
            json!({"starts_at": "2026-10-01T00:00:00Z", "ends_at": "2026-11-20T00:00:00Z", "review_due": "2026-11-12"}),
        )
        .await;
    }
    let (na, nb) = tokio::join!(
        fairline::notices::sweep(&a.state),
        fairline::notices::sweep(&b.state)
    );
    // Each instance also sweeps once at start, in the background, and may queue some of them
    // first: what the two sweeps queued here is at most the whole, and the store holds each
    // event exactly once.
    let here = na.unwrap() + nb.unwrap();
    assert!(here <= 20, "queued {here} notices for 20 events");
    assert_eq!(
        a.state.store.list_notices(1000).await.unwrap().len(),
        20,
        "10 review_due + 10 ending, once"
    );
    let got = delivered(&rx, 20).await;
    assert_eq!(got.len(), 20, "each delivered once by one of the two");
    let ids: BTreeSet<String> = got
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 20);
    a.stop().await;
    b.stop().await;
    let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
}
