//! Several instances on one PostgreSQL schema (SPEC §4, §5): race-free counting, cache
//! invalidation across instances within a second, and deciding while the store is unreachable.
//! Each test prints a "skipped" line when `FAIRLINE_TEST_POSTGRES_URL` is not set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fairline::domain::{CallId, CallerId, Provider};
use fairline::engine::{Outcome, Reason};
use fairline::providers::CallEvent;
use fairline::state::{AppState, Overrides};
use fairline::store::postgres::PgStore;
use fairline::store::{DecisionFilter, DecisionSource};
use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{arrangement, test_config, TestApp};
use crate::support::{self, SlowStore};

fn event(number: &str, call_id: &str) -> CallEvent {
    CallEvent {
        provider: Provider::Twilio,
        call_id: CallId::parse(call_id).unwrap(),
        caller: CallerId::classify(number),
    }
}

/// Decide `number` on `app` every 20 ms until `done` holds; the time it took, or panic after
/// `limit`.
async fn until_decision(
    app: &TestApp,
    number: &str,
    tag: &str,
    limit: Duration,
    done: impl Fn(Outcome, Reason) -> bool,
) -> Duration {
    let started = Instant::now();
    let mut i = 0;
    loop {
        i += 1;
        let d = app
            .state
            .decide_call(&event(number, &format!("{tag}-{i}")))
            .await;
        if done(d.decision.outcome, d.decision.reason) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{tag}: still {:?}/{:?} after {:?}",
            d.decision.outcome,
            d.decision.reason,
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cleanup(url: &str, schema: &str, apps: Vec<TestApp>) {
    for app in apps {
        app.stop().await;
    }
    let _ = PgStore::drop_schema(url, schema).await;
}

/// These tests count calls under an arrangement: a lookup that times out on a loaded machine
/// would be decided by the failure policy instead (tested on its own below).
const GENEROUS_LOOKUP: &str = "[decision]\nlookup_timeout_ms = 30000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_fifty_racing_calls_on_two_instances_count_once() {
    let Some((url, schema)) =
        support::pg_schema("scale_fifty_racing_calls_on_two_instances_count_once")
    else {
        return;
    };
    let a = TestApp::spawn_pg(&url, &schema, GENEROUS_LOOKUP, Overrides::default())
        .await
        .unwrap();
    let b = TestApp::spawn_pg(&url, &schema, GENEROUS_LOOKUP, Overrides::default())
        .await
        .unwrap();
    let number = "+442920123456";
    let created = a
        .create_arrangement(arrangement(
            number,
            json!({"allowance": {"count": 1, "per": "day"}}),
        ))
        .await;

    let mut tasks = Vec::new();
    for i in 0..50 {
        let state: AppState = if i % 2 == 0 {
            a.state.clone()
        } else {
            b.state.clone()
        };
        tasks.push(tokio::spawn(async move {
            state
                .decide_call(&event("02920 123456", &format!("CA-race-{i}")))
                .await
        }));
    }
    let mut allowed = 0;
    let mut refused = 0;
    for t in tasks {
        let d = t.await.unwrap();
        match (d.decision.outcome, d.decision.reason) {
            (Outcome::Continue, Reason::WithinArrangement) => allowed += 1,
            (Outcome::Refuse, Reason::AllowanceUsed) => refused += 1,
            other => panic!("unexpected decision {other:?}"),
        }
    }
    assert_eq!((allowed, refused), (1, 49));

    // The store agrees: 50 logged, one counted; both instances evaluate one counted call.
    let log = a
        .state
        .store
        .list_decisions(&DecisionFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(log.len(), 50);
    assert_eq!(log.iter().filter(|e| e.counted).count(), 1);
    for app in [&a, &b] {
        let resp = app
            .agent(Method::POST, "/api/v1/evaluate")
            .json(&json!({"from": number}))
            .send()
            .await
            .unwrap();
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["calls_counted"], 1);
        assert_eq!(e["reason"], "allowance_used");
        assert_eq!(e["arrangement_id"], created["id"]);
    }
    // A retried webhook for the counted call, on the other instance, replays its decision.
    let winner = log.iter().find(|e| e.counted).unwrap();
    let replay_on = if winner
        .call_id
        .as_str()
        .trim_start_matches("CA-race-")
        .parse::<u32>()
        .unwrap()
        % 2
        == 0
    {
        &b
    } else {
        &a
    };
    let d = replay_on
        .state
        .decide_call(&event(number, winner.call_id.as_str()))
        .await;
    assert_eq!(d.decision.outcome, Outcome::Continue);
    let log = a
        .state
        .store
        .list_decisions(&DecisionFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (log.len(), log.iter().filter(|e| e.counted).count()),
        (50, 1)
    );
    cleanup(&url, &schema, vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_a_change_on_one_instance_reaches_the_other_within_a_second() {
    let Some((url, schema)) =
        support::pg_schema("scale_a_change_on_one_instance_reaches_the_other_within_a_second")
    else {
        return;
    };
    let a = TestApp::spawn_pg(&url, &schema, "", Overrides::default())
        .await
        .unwrap();
    let b = TestApp::spawn_pg(&url, &schema, "", Overrides::default())
        .await
        .unwrap();
    let number = "+447700900123";

    // B caches "no arrangement" (a fresh negative entry for 30 s).
    for i in 0..2 {
        let d = b
            .state
            .decide_call(&event(number, &format!("CA-pre-{i}")))
            .await;
        assert_eq!(d.decision.reason, Reason::NoArrangement);
    }
    let d = b.state.decide_call(&event(number, "CA-pre-cached")).await;
    assert_eq!(d.source, DecisionSource::Cache);

    let created = a
        .create_arrangement(arrangement("07700 900123", json!({"kind": "blocked"})))
        .await;
    let took = until_decision(&b, number, "CA-block", Duration::from_secs(1), |o, r| {
        o == Outcome::Refuse && r == Reason::Blocked
    })
    .await;
    eprintln!("create on A seen by B after {took:?}");

    // Revoke through A: B lets the caller through again within a second.
    let id = created["id"].as_str().unwrap();
    let resp = a
        .manager(Method::POST, &format!("/api/v1/arrangements/{id}/revoke"))
        .json(&json!({"reason": "appeal upheld"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let took = until_decision(&b, number, "CA-free", Duration::from_secs(1), |o, r| {
        o == Outcome::Continue && r == Reason::NoArrangement
    })
    .await;
    eprintln!("revoke on A seen by B after {took:?}");

    // An update that moves the arrangement to another number, too. (A new arrangement for
    // the number starts now: backdated, it would overlap the revoked one's time in force.)
    let other = a
        .create_arrangement(arrangement(
            number,
            json!({"kind": "blocked", "starts_at": chrono::Utc::now().to_rfc3339()}),
        ))
        .await;
    until_decision(&b, number, "CA-block2", Duration::from_secs(1), |o, _| {
        o == Outcome::Refuse
    })
    .await;
    let oid = other["id"].as_str().unwrap();
    let resp = a
        .manager(Method::PUT, &format!("/api/v1/arrangements/{oid}"))
        .header("if-match", "\"1\"")
        .json(&arrangement("+447700900124", json!({"kind": "blocked"})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    until_decision(&b, number, "CA-moved", Duration::from_secs(1), |o, r| {
        o == Outcome::Continue && r == Reason::NoArrangement
    })
    .await;
    cleanup(&url, &schema, vec![a, b]).await;
}

/// A PostgreSQL-backed app whose number lookups can be slowed down.
async fn slow_app(url: &str, schema: &str, extra: &str) -> (TestApp, Arc<SlowStore>) {
    let pg = PgStore::connect_in_schema(url, schema).await.unwrap();
    let slow = Arc::new(SlowStore::new(Arc::new(pg)));
    let state =
        AppState::with_store(test_config(url, extra), slow.clone(), Overrides::default()).unwrap();
    (TestApp::start(state, None).await, slow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_store_unreachable_cached_block_holds_and_uncached_gets_the_default() {
    let Some((url, schema)) = support::pg_schema(
        "scale_store_unreachable_cached_block_holds_and_uncached_gets_the_default",
    ) else {
        return;
    };
    // Entries go stale at once, so every lookup tries the store first.
    let extra = "[decision]\nlookup_timeout_ms = 200\n\n[cache]\nttl_seconds = 0\n";
    let (app, slow) = slow_app(&url, &schema, extra).await;
    let (strict, strict_slow) = slow_app(
        &url,
        &schema,
        "[decision]\nlookup_timeout_ms = 200\non_lookup_failure = \"refuse\"\n",
    )
    .await;
    let blocked = "+447700900123";
    let restricted = "+442920123456";
    app.create_arrangement(arrangement(blocked, json!({"kind": "blocked"})))
        .await;
    app.create_arrangement(arrangement(
        restricted,
        json!({"allowance": {"count": 5, "per": "day"}}),
    ))
    .await;
    for n in [blocked, restricted] {
        let d = app
            .state
            .decide_call(&event(n, &format!("CA-warm-{n}")))
            .await;
        assert_eq!(d.source, DecisionSource::Store);
    }
    assert_eq!(
        app.state
            .decide_call(&event(blocked, "CA-warm-2"))
            .await
            .decision
            .reason,
        Reason::Blocked
    );

    // The store stops answering.
    slow.set_delay(Duration::from_secs(3));
    strict_slow.set_delay(Duration::from_secs(3));
    let budget = Duration::from_millis(200 * 3);

    let started = Instant::now();
    let d = app.state.decide_call(&event(blocked, "CA-down-1")).await;
    let took = started.elapsed();
    assert_eq!(
        (d.decision.outcome, d.decision.reason),
        (Outcome::Refuse, Reason::Blocked)
    );
    assert_eq!(d.source, DecisionSource::StaleCache);
    assert!(
        took >= Duration::from_millis(190) && took < budget,
        "cached block took {took:?}"
    );

    // A cached restricted arrangement is still applied (uncounted).
    let d = app.state.decide_call(&event(restricted, "CA-down-2")).await;
    assert_eq!(d.decision.reason, Reason::WithinArrangement);
    assert_eq!(d.source, DecisionSource::StaleCache);

    // Nothing cached: on_lookup_failure (continue here), within about the lookup timeout.
    let started = Instant::now();
    let d = app
        .state
        .decide_call(&event("+447700900999", "CA-down-3"))
        .await;
    let took = started.elapsed();
    assert_eq!(
        (d.decision.outcome, d.decision.reason),
        (Outcome::Continue, Reason::LookupFailed)
    );
    assert_eq!(d.source, DecisionSource::FailureDefault);
    assert!(took < budget, "uncached lookup took {took:?}");

    // `on_lookup_failure = "refuse"` on the other instance, which has nothing cached.
    let started = Instant::now();
    let d = strict
        .state
        .decide_call(&event(restricted, "CA-down-4"))
        .await;
    let took = started.elapsed();
    assert_eq!(
        (d.decision.outcome, d.decision.reason),
        (Outcome::Refuse, Reason::LookupFailed)
    );
    assert!(took < budget, "strict uncached lookup took {took:?}");

    // Back up: decisions come from the store again.
    slow.set_delay(Duration::ZERO);
    let d = app
        .state
        .decide_call(&event("+447700900999", "CA-up-1"))
        .await;
    assert_eq!(
        (d.decision.reason, d.source),
        (Reason::NoArrangement, DecisionSource::Store)
    );
    cleanup(&url, &schema, vec![app, strict]).await;
}
