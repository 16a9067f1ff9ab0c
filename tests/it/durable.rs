//! The durable path for calls under an arrangement (group commit on SQLite): an answered call
//! is in the decision log, with the decision it was answered with, even when the process is
//! killed in the middle of a burst; and the allowance stays exact under concurrent calls, on
//! SQLite and PostgreSQL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use fairline::clock::ManualClock;
use fairline::config::Secret;
use fairline::providers::twilio;
use fairline::state::Overrides;
use serde_json::{json, Value};

use crate::app::{arrangement, test_toml, TestApp, MANAGER_TOKEN, TWILIO_TOKEN};
use crate::procs::{twilio_call, twiml_verbs, Server};

const CALLER: &str = "+442920123456";
const PUBLIC_URL: &str = "https://calls.example.org";
const VOICE: &str = "/webhooks/twilio/voice";

/// The first TwiML verb of each outcome.
fn outcome_of(verb: &str) -> &'static str {
    match verb {
        "Redirect" => "continue",
        "Say" => "refuse",
        "Dial" => "route",
        other => panic!("unexpected TwiML verb {other}"),
    }
}

// --- SIGKILL during a burst ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_sigkill_during_a_burst_loses_no_answered_call() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fairline.db");
    let url = format!("sqlite://{}", db.display());
    // A generous write budget: this test is about the answers the store gave, not the
    // uncounted fallback a slow machine would otherwise answer with (and not log).
    let env = [
        ("FAIRLINE_TWILIO__VERIFY_SIGNATURES", "false"),
        ("FAIRLINE_DECISION__LOOKUP_TIMEOUT_MS", "10000"),
    ];
    let mut server = Server::start(dir.path(), "burst", &test_toml(&url, ""), &env, None).await;
    let client = reqwest::Client::new();
    // An allowance large enough for some calls to be permitted and the rest refused.
    let r = client
        .post(format!("{}/api/v1/arrangements", server.url))
        .bearer_auth(MANAGER_TOKEN)
        .json(&arrangement(
            CALLER,
            json!({"allowance": {"count": 150, "per": "day"}}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // 32 callers, each calling again as soon as it is answered, with a new CallSid each time.
    let answered: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let cut_off = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..32u32)
        .map(|w| {
            let client = client.clone();
            let base = server.url.clone();
            let answered = answered.clone();
            let cut_off = cut_off.clone();
            tokio::spawn(async move {
                for i in 0..5_000u32 {
                    let sid = format!("CA{w:08x}{i:024x}");
                    match twilio_call(&client, &base, &sid, CALLER).await {
                        Ok((200, xml)) => {
                            let verb = twiml_verbs(&xml).first().cloned().unwrap_or_default();
                            answered.lock().unwrap().push((sid, verb));
                        }
                        Ok((status, body)) => panic!("{sid}: status {status}: {body}"),
                        Err(_) => {
                            // The server is gone: this call got no answer.
                            cut_off.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    while answered.lock().unwrap().len() < 600 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the burst never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill(); // SIGKILL, mid-burst
    for w in workers {
        w.await.unwrap();
    }
    assert!(
        cut_off.load(Ordering::SeqCst),
        "the kill landed during the burst"
    );

    // Every answered call is in the log, with the decision it was answered with.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT call_id, outcome FROM calls WHERE provider = 'twilio'")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    let logged: HashMap<String, String> = rows.into_iter().collect();
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 600);
    let outcomes: Vec<&str> = answered.iter().map(|(_, v)| outcome_of(v)).collect();
    assert!(outcomes.contains(&"continue") && outcomes.contains(&"refuse"));
    let mut missing = Vec::new();
    for (sid, verb) in &answered {
        match logged.get(sid) {
            None => missing.push(sid.clone()),
            Some(outcome) => assert_eq!(outcome, outcome_of(verb), "{sid} was answered {verb}"),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} answered calls are not in the decision log, e.g. {:?}",
        missing.len(),
        answered.len(),
        missing.first()
    );
    // Exactly 150 were permitted, whatever was answered before the kill.
    let permitted = logged.values().filter(|o| *o == "continue").count();
    assert!(permitted <= 150, "{permitted} permitted");
}

// --- the allowance under concurrent calls ----------------------------------------------------

fn pinned() -> Overrides {
    // Tuesday 1 December 2026, 10:30 in London: a fixed day, whatever today is.
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 30, 0).unwrap();
    Overrides {
        clock: Some(Arc::new(ManualClock::new(at))),
        ..Overrides::default()
    }
}

/// A signed incoming call from `CALLER`.
async fn signed_call(app: &TestApp, call_sid: &str) -> String {
    let fields: Vec<(String, String)> = [
        ("AccountSid", crate::app::ACCOUNT_SID),
        ("CallSid", call_sid),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", CALLER),
        ("Caller", CALLER),
        ("To", "+442920000100"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let sig = twilio::compute_signature(
        &format!("{PUBLIC_URL}{VOICE}"),
        &fields,
        &Secret::new(TWILIO_TOKEN),
    );
    let resp = app
        .client
        .post(format!("{}{VOICE}", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(twilio::SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

async fn forty_concurrent_calls_under_an_allowance_of_one(app: Arc<TestApp>) {
    app.create_arrangement(arrangement(
        CALLER,
        json!({"allowance": {"count": 1, "per": "day"}}),
    ))
    .await;
    let tasks: Vec<_> = (0..40u32)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let sid = format!("CA{i:032x}");
                let xml = signed_call(&app, &sid).await;
                (sid, twiml_verbs(&xml)[0].clone())
            })
        })
        .collect();
    let mut answers = HashMap::new();
    for t in tasks {
        let (sid, verb) = t.await.unwrap();
        answers.insert(sid, verb);
    }
    let permitted = answers.values().filter(|v| *v == "Redirect").count();
    let refused = answers.values().filter(|v| *v == "Say").count();
    assert_eq!((permitted, refused), (1, 39), "{answers:?}");

    let resp = app
        .manager(
            reqwest::Method::GET,
            &format!(
                "/api/v1/decisions?phone={}&limit=100",
                CALLER.replace('+', "%2B")
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let log: Value = resp.json().await.unwrap();
    let log = log["items"].as_array().unwrap();
    assert_eq!(log.len(), 40);
    assert_eq!(log.iter().filter(|e| e["counted"] == true).count(), 1);
    assert_eq!(
        log.iter()
            .filter(|e| e["reason"] == "allowance_used")
            .count(),
        39
    );
    // Each logged decision is the one its call was answered with.
    for e in log {
        let sid = e["call_id"].as_str().unwrap();
        assert_eq!(e["outcome"], outcome_of(&answers[sid]), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_forty_concurrent_calls_under_an_allowance_of_one() {
    let app = Arc::new(TestApp::spawn_with("", pinned()).await);
    forty_concurrent_calls_under_an_allowance_of_one(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_forty_concurrent_calls_under_an_allowance_of_one() {
    let Some((url, schema)) =
        crate::support::pg_schema("durable::pg_forty_concurrent_calls_under_an_allowance_of_one")
    else {
        return;
    };
    let app = Arc::new(
        TestApp::spawn_pg(&url, &schema, "", pinned())
            .await
            .unwrap(),
    );
    forty_concurrent_calls_under_an_allowance_of_one(app.clone()).await;
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
    let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
}
