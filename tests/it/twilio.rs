//! The Twilio webhooks end to end, through the real server on port 0 (SPEC §4, §7).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fairline::clock::ManualClock;
use fairline::config::{Config, LookupFailurePolicy, RefuseBlockedWith, Secret};
use fairline::providers::twilio;
use fairline::state::{AppState, Overrides};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::{arrangement, test_config, TestApp, TWILIO_TOKEN};

const INCOMING: &str = include_str!("../../fixtures/twilio/incoming-call.txt");
const WITHHELD: &str = include_str!("../../fixtures/twilio/incoming-call-withheld.txt");
const DIAL_NO_ANSWER: &str = include_str!("../../fixtures/twilio/dial-status-no-answer.txt");
const DIAL_COMPLETED: &str = include_str!("../../fixtures/twilio/dial-status-completed.txt");
const STATUS_COMPLETED: &str = include_str!("../../fixtures/twilio/status-completed.txt");

/// The caller in the fixtures.
const CALLER: &str = "+442920123456";
/// The call in the fixtures.
const FIXTURE_SID: &str = "CA5f8b3c1e2d4a6b7c8d9e0f1a2b3c4d5e";
const PUBLIC_URL: &str = "https://calls.example.org";
const CONTINUE_URL: &str = "https://example.org/twiml/main-menu";

const VOICE: &str = "/webhooks/twilio/voice";
const DIAL: &str = "/webhooks/twilio/dial-status";
const STATUS: &str = "/webhooks/twilio/status";

/// Tuesday 1 December 2026, 10:30 in London (GMT).
fn tue_1030() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 30, 0).unwrap()
}

fn sid(n: u32) -> String {
    format!("CA{n:032x}")
}

fn fields(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// A fixture body with some fields replaced (added when absent).
fn with_fields(fixture: &str, replace: &[(&str, &str)]) -> String {
    let mut pairs = fields(fixture);
    for (k, v) in replace {
        match pairs.iter_mut().find(|(name, _)| name == k) {
            Some(p) => p.1 = (*v).to_owned(),
            None => pairs.push(((*k).to_owned(), (*v).to_owned())),
        }
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The incoming-call fixture from `from` with call `sid`.
fn incoming(from: &str, call_sid: &str) -> String {
    with_fields(
        INCOMING,
        &[("From", from), ("Caller", from), ("CallSid", call_sid)],
    )
}

fn signature(path: &str, body: &str) -> String {
    twilio::compute_signature(
        &format!("{PUBLIC_URL}{path}"),
        &fields(body),
        &Secret::new(TWILIO_TOKEN),
    )
}

struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

async fn post_raw(app: &TestApp, path: &str, body: String, sig: Option<String>) -> Answer {
    let mut req = app
        .client
        .post(format!("{}{path}", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = sig {
        req = req.header(twilio::SIGNATURE_HEADER, s);
    }
    let resp = req.send().await.unwrap();
    Answer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: resp.text().await.unwrap(),
    }
}

/// POST a correctly signed webhook.
async fn post_signed(app: &TestApp, path: &str, body: &str) -> Answer {
    let sig = signature(path, body);
    post_raw(app, path, body.to_owned(), Some(sig)).await
}

/// POST a signed incoming call and return the TwiML (asserting 200 and text/xml).
async fn call(app: &TestApp, from: &str, call_sid: &str) -> String {
    twiml_ok(post_signed(app, VOICE, &incoming(from, call_sid)).await)
}

fn twiml_ok(a: Answer) -> String {
    assert_eq!(a.status, 200, "body: {}", a.body);
    assert_eq!(a.content_type.as_deref(), Some("text/xml"));
    a.body
}

/// One parsed verb: name, attributes, text, child elements (name, text).
#[derive(Debug)]
struct Verb {
    name: String,
    attrs: Vec<(String, String)>,
    text: Option<String>,
    children: Vec<(String, String)>,
}

impl Verb {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn verbs(xml: &str) -> Vec<Verb> {
    assert!(
        xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
        "{xml}"
    );
    let doc = roxmltree::Document::parse(xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response", "{xml}");
    root.children()
        .filter(|n| n.is_element())
        .map(|n| Verb {
            name: n.tag_name().name().to_owned(),
            attrs: n
                .attributes()
                .map(|a| (a.name().to_owned(), a.value().to_owned()))
                .collect(),
            text: n.text().map(str::to_owned),
            children: n
                .children()
                .filter(|c| c.is_element())
                .map(|c| {
                    (
                        c.tag_name().name().to_owned(),
                        c.text().unwrap_or("").to_owned(),
                    )
                })
                .collect(),
        })
        .collect()
}

fn names(v: &[Verb]) -> Vec<&str> {
    v.iter().map(|v| v.name.as_str()).collect()
}

fn assert_continue(xml: &str) {
    let v = verbs(xml);
    assert_eq!(names(&v), ["Redirect"], "{xml}");
    assert_eq!(v[0].attr("method"), Some("POST"));
    assert_eq!(v[0].text.as_deref(), Some(CONTINUE_URL));
}

/// The spoken texts of a refusal, checking it is `<Say>`… then `<Hangup/>`; (language, voice, text).
fn refusal(xml: &str) -> Vec<(String, Option<String>, String)> {
    let v = verbs(xml);
    assert!(v.len() >= 2, "{xml}");
    assert_eq!(v.last().unwrap().name, "Hangup", "{xml}");
    v[..v.len() - 1]
        .iter()
        .map(|s| {
            assert_eq!(s.name, "Say", "{xml}");
            (
                s.attr("language").unwrap().to_owned(),
                s.attr("voice").map(str::to_owned),
                s.text.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn pinned(at: DateTime<Utc>) -> TestApp {
    TestApp::spawn_with(
        "",
        Overrides {
            clock: Some(Arc::new(ManualClock::new(at))),
            ..Overrides::default()
        },
    )
    .await
}

/// Start a server from the test config changed by `edit`.
async fn spawn_edited(edit: impl FnOnce(&mut Config), overrides: Overrides) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
    let mut config = test_config(&url, "");
    edit(&mut config);
    let state = AppState::build(config, overrides).await.unwrap();
    TestApp::start(state, Some(dir)).await
}

async fn decisions(app: &TestApp, phone: &str) -> Vec<Value> {
    let resp = app
        .manager(
            reqwest::Method::GET,
            &format!("/api/v1/decisions?phone={}", phone.replace('+', "%2B")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

// --- the decision paths ------------------------------------------------------------------------

#[tokio::test]
async fn no_arrangement_redirects_to_the_normal_flow() {
    let app = pinned(tue_1030()).await;
    // The fixture exactly as Twilio sends it.
    let xml = twiml_ok(post_signed(&app, VOICE, INCOMING).await);
    assert_continue(&xml);
    assert!(
        decisions(&app, CALLER).await.is_empty(),
        "calls without an arrangement are not logged"
    );
    app.stop().await;
}

#[tokio::test]
async fn within_window_continues_and_is_logged() {
    let app = pinned(tue_1030()).await;
    app.create_arrangement(arrangement(
        CALLER,
        json!({"windows": [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}]}),
    ))
    .await;
    assert_continue(&call(&app, CALLER, FIXTURE_SID).await);
    let log = decisions(&app, CALLER).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "continue");
    assert_eq!(log[0]["reason"], "within_arrangement");
    assert_eq!(log[0]["call_id"], FIXTURE_SID);
    app.stop().await;
}

#[tokio::test]
async fn designated_staff_is_dialled_with_client_or_sip() {
    let app = pinned(tue_1030()).await;
    app.create_arrangement(arrangement(
        CALLER,
        json!({"designated_staff": ["alice", "bob"], "max_call_minutes": 20}),
    ))
    .await;
    app.create_arrangement(arrangement(
        "+442920654321",
        json!({"designated_staff": ["bob"]}),
    ))
    .await;

    let xml = call(&app, CALLER, &sid(1)).await;
    let v = verbs(&xml);
    assert_eq!(names(&v), ["Dial"], "{xml}");
    assert_eq!(v[0].attr("timeout"), Some("30"));
    assert_eq!(
        v[0].attr("action"),
        Some("https://calls.example.org/webhooks/twilio/dial-status")
    );
    assert_eq!(v[0].attr("timeLimit"), Some("1200"));
    assert_eq!(v[0].children, [("Client".to_owned(), "alice".to_owned())]);

    let xml = call(&app, "+442920654321", &sid(2)).await;
    let v = verbs(&xml);
    assert_eq!(names(&v), ["Dial"], "{xml}");
    assert_eq!(v[0].attr("timeLimit"), None, "no max_call_minutes");
    assert_eq!(
        v[0].children,
        [("Sip".to_owned(), "sip:bob@pbx.example.org".to_owned())]
    );
    let log = decisions(&app, CALLER).await;
    assert_eq!(log[0]["reason"], "designated_staff");
    assert_eq!(log[0]["route_to"], "alice");
    app.stop().await;
}

#[tokio::test]
async fn outside_window_is_refused_in_english_with_the_next_time() {
    // Tuesday 13:00: after the 10:00–12:00 window; next is Thursday 3 December at 10:00.
    let app = pinned(Utc.with_ymd_and_hms(2026, 12, 1, 13, 0, 0).unwrap()).await;
    app.create_arrangement(arrangement(
        CALLER,
        json!({"windows": [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}]}),
    ))
    .await;
    let said = refusal(&call(&app, CALLER, &sid(1)).await);
    assert_eq!(said.len(), 1);
    assert_eq!(said[0].0, "en-GB");
    assert_eq!(said[0].1, None);
    assert!(
        said[0].2.contains("Thursday 3 December at 10:00"),
        "{}",
        said[0].2
    );
    let log = decisions(&app, CALLER).await;
    assert_eq!(log[0]["reason"], "outside_window");
    assert_eq!(log[0]["next_permitted_at"], "2026-12-03T10:00:00Z");
    app.stop().await;
}

#[tokio::test]
async fn allowance_used_is_refused_after_the_counted_call() {
    let app = pinned(tue_1030()).await;
    app.create_arrangement(arrangement(
        CALLER,
        json!({"allowance": {"count": 1, "per": "day"}}),
    ))
    .await;
    assert_continue(&call(&app, CALLER, &sid(1)).await);
    let said = refusal(&call(&app, CALLER, &sid(2)).await);
    assert_eq!(said.len(), 1);
    assert!(said[0].2.contains("Wednesday 2 December"), "{}", said[0].2);
    let log = decisions(&app, CALLER).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["reason"], "allowance_used");
    assert_eq!(log[0]["counted"], false);
    assert_eq!(log[1]["counted"], true);
    app.stop().await;
}

#[tokio::test]
async fn blocked_is_rejected_unanswered_by_default() {
    let app = pinned(tue_1030()).await;
    app.create_arrangement(arrangement(CALLER, json!({"kind": "blocked"})))
        .await;
    let xml = call(&app, CALLER, &sid(1)).await;
    let v = verbs(&xml);
    assert_eq!(names(&v), ["Reject"], "{xml}");
    assert_eq!(v[0].attr("reason"), Some("rejected"));
    assert_eq!(decisions(&app, CALLER).await[0]["reason"], "blocked");
    app.stop().await;
}

#[tokio::test]
async fn blocked_with_message_says_and_hangs_up() {
    let app = spawn_edited(
        |c| c.twilio.refuse_blocked_with = RefuseBlockedWith::Message,
        Overrides::default(),
    )
    .await;
    app.create_arrangement(arrangement(CALLER, json!({"kind": "blocked"})))
        .await;
    let said = refusal(&call(&app, CALLER, &sid(1)).await);
    assert_eq!(said.len(), 1);
    assert_eq!(said[0].0, "en-GB");
    assert!(said[0].2.contains("in writing"), "{}", said[0].2);
    app.stop().await;
}

#[tokio::test]
async fn welsh_and_bilingual_refusals() {
    let app = pinned(tue_1030()).await;
    let cases = [
        ("+442920111111", "cy", vec!["cy-GB"]),
        ("+442920222222", "cy+en", vec!["cy-GB", "en-GB"]),
        ("+442920333333", "en+cy", vec!["en-GB", "cy-GB"]),
    ];
    for (number, language, _) in &cases {
        app.create_arrangement(arrangement(
            number,
            json!({"kind": "restricted", "language": language,
                   "windows": [{"days": ["thu"], "start": "10:00", "end": "12:00"}]}),
        ))
        .await;
    }
    for (i, (number, language, expected)) in cases.iter().enumerate() {
        let said = refusal(&call(&app, number, &sid(10 + i as u32)).await);
        let langs: Vec<&str> = said.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(&langs, expected, "{language}");
        for (lang, voice, text) in &said {
            if lang == "cy-GB" {
                assert_eq!(voice.as_deref(), Some("Polly.Gwyneth"));
                assert!(text.contains("dydd Iau 3 Rhagfyr am 10:00"), "{text}");
            } else {
                assert_eq!(voice, &None);
                assert!(text.contains("Thursday 3 December at 10:00"), "{text}");
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn withheld_and_unrecognised_callers_continue() {
    let app = pinned(tue_1030()).await;
    // Even with an arrangement on the fixture's caller, a withheld call cannot be matched.
    app.create_arrangement(arrangement(CALLER, json!({"kind": "blocked"})))
        .await;
    assert_continue(&twiml_ok(post_signed(&app, VOICE, WITHHELD).await));
    for (i, from) in ["anonymous", "Anonymous", "+266696687", "", "client:alice"]
        .iter()
        .enumerate()
    {
        assert_continue(&call(&app, from, &sid(100 + i as u32)).await);
    }
    // From missing altogether.
    let body = format!("CallSid={}&AccountSid=AC1&CallStatus=ringing", sid(200));
    assert_continue(&twiml_ok(post_signed(&app, VOICE, &body).await));
    assert!(decisions(&app, CALLER).await.is_empty());
    app.stop().await;
}

// --- retries and races ----------------------------------------------------------------------

#[tokio::test]
async fn a_retried_call_sid_gets_the_same_answer_and_is_counted_once() {
    let app = pinned(tue_1030()).await;
    app.create_arrangement(arrangement(
        CALLER,
        json!({"allowance": {"count": 1, "per": "day"}, "designated_staff": ["alice"]}),
    ))
    .await;
    let first = call(&app, CALLER, FIXTURE_SID).await;
    let again = call(&app, CALLER, FIXTURE_SID).await;
    assert_eq!(first, again);
    assert_eq!(names(&verbs(&first)), ["Dial"]);
    let log = decisions(&app, CALLER).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["counted"], true);
    // A different call is now over the allowance.
    let said = refusal(&call(&app, CALLER, &sid(2)).await);
    assert!(!said.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_calls_under_an_allowance_of_one() {
    let app = Arc::new(pinned(tue_1030()).await);
    app.create_arrangement(arrangement(
        CALLER,
        json!({"allowance": {"count": 1, "per": "day"}}),
    ))
    .await;
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            call(&app, CALLER, &sid(1000 + i)).await
        }));
    }
    let (mut continued, mut refused) = (0, 0);
    for t in tasks {
        let xml = t.await.unwrap();
        match verbs(&xml)[0].name.as_str() {
            "Redirect" => continued += 1,
            "Say" => refused += 1,
            other => panic!("unexpected {other}: {xml}"),
        }
    }
    assert_eq!((continued, refused), (1, 19));
    let log = decisions(&app, CALLER).await;
    assert_eq!(log.len(), 20);
    assert_eq!(log.iter().filter(|e| e["counted"] == true).count(), 1);
    assert_eq!(
        log.iter()
            .filter(|e| e["reason"] == "allowance_used")
            .count(),
        19
    );
}

// --- rejected requests ----------------------------------------------------------------------

#[tokio::test]
async fn bad_or_missing_signature_is_403_and_nothing_happens() {
    let app = pinned(tue_1030()).await;
    app.create_arrangement(arrangement(
        CALLER,
        json!({"allowance": {"count": 1, "per": "day"}}),
    ))
    .await;
    let body = incoming(CALLER, &sid(1));
    // Signed for another URL, with another token, or not at all.
    let wrong_url = signature("/webhooks/twilio/other", &body);
    let wrong_token = twilio::compute_signature(
        &format!("{PUBLIC_URL}{VOICE}"),
        &fields(&body),
        &Secret::new("not-the-token"),
    );
    for sig in [
        Some(wrong_url),
        Some(wrong_token),
        Some("garbage".into()),
        None,
    ] {
        for path in [VOICE, DIAL, STATUS] {
            let a = post_raw(&app, path, body.clone(), sig.clone()).await;
            assert_eq!(a.status, 403, "{path} {sig:?}");
            assert!(a.body.len() < 64, "short body: {}", a.body);
        }
    }
    // A tampered body (signature of the original).
    let sig = signature(VOICE, &body);
    let tampered = body.replace("ringing", "ringinG");
    assert_eq!(post_raw(&app, VOICE, tampered, Some(sig)).await.status, 403);
    assert!(decisions(&app, CALLER).await.is_empty());
    // The allowance is untouched: the first real call goes through.
    assert_continue(&call(&app, CALLER, &sid(2)).await);
    app.stop().await;
}

#[tokio::test]
async fn malformed_signed_bodies_are_400() {
    let app = pinned(tue_1030()).await;
    // Not a valid form (an escape that is not UTF-8), but correctly signed over what it
    // decodes to.
    let bad = format!("CallSid={}&From=%FF%FE", sid(1));
    assert_eq!(post_signed(&app, VOICE, &bad).await.status, 400);
    // No CallSid.
    let no_sid = "From=%2B442920123456&CallStatus=ringing";
    for path in [VOICE, DIAL, STATUS] {
        assert_eq!(post_signed(&app, path, no_sid).await.status, 400, "{path}");
    }
    // A status callback without CallStatus.
    let no_status = format!("CallSid={}", sid(2));
    assert_eq!(post_signed(&app, STATUS, &no_status).await.status, 400);
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = pinned(tue_1030()).await;
    let big = format!("{}&Padding={}", INCOMING, "x".repeat(70_000));
    let sig = signature(VOICE, &big);
    let a = post_raw(&app, VOICE, big.clone(), Some(sig.clone())).await;
    assert_eq!(a.status, 413);
    // Without a Content-Length (chunked): the limit applies while reading.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut req = format!(
        "POST {VOICE} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-Twilio-Signature: {sig}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    for chunk in big.as_bytes().chunks(8192) {
        req.push_str(&format!("{:x}\r\n", chunk.len()));
        req.push_str(std::str::from_utf8(chunk).unwrap());
        req.push_str("\r\n");
    }
    req.push_str("0\r\n\r\n");
    // The server may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(req.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    app.stop().await;
}

// --- internal failures after verification -----------------------------------------------------

use crate::support::{Fault, SlowStore as FaultyStore};

/// A server on an SQLite store the test can close, with `on_lookup_failure` = `policy`.
async fn with_sqlite(
    policy: LookupFailurePolicy,
) -> (TestApp, Arc<fairline::store::sqlite::SqliteStore>) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().join("fairline.db");
    let store = Arc::new(
        fairline::store::sqlite::SqliteStore::open_path(&path)
            .await
            .unwrap(),
    );
    let mut config = test_config(&format!("sqlite://{}", path.display()), "");
    config.decision.on_lookup_failure = policy;
    let state = AppState::with_store(
        config,
        store.clone(),
        Overrides {
            clock: Some(Arc::new(ManualClock::new(tue_1030()))),
            ..Overrides::default()
        },
    )
    .unwrap();
    (TestApp::start(state, Some(dir)).await, store)
}

#[tokio::test]
async fn store_down_still_answers_valid_twiml_per_policy() {
    // continue: into the normal flow.
    let (app, store) = with_sqlite(LookupFailurePolicy::Continue).await;
    store.close().await;
    assert_continue(&call(&app, CALLER, &sid(1)).await);
    app.stop().await;

    // refuse: a short spoken refusal, then hang up.
    let (app, store) = with_sqlite(LookupFailurePolicy::Refuse).await;
    store.close().await;
    let said = refusal(&call(&app, CALLER, &sid(1)).await);
    assert_eq!(said.len(), 1);
    assert_eq!(said[0].0, "en-GB");
    assert!(said[0].2.contains("cannot take your call"), "{}", said[0].2);
    app.stop().await;
}

async fn with_faulty(
    policy: LookupFailurePolicy,
    request_timeout: Duration,
) -> (TestApp, Arc<FaultyStore>) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().join("fairline.db");
    let inner = Arc::new(
        fairline::store::sqlite::SqliteStore::open_path(&path)
            .await
            .unwrap(),
    );
    let store = Arc::new(FaultyStore::new(inner));
    let mut config = test_config(&format!("sqlite://{}", path.display()), "");
    config.decision.on_lookup_failure = policy;
    config.server.request_timeout = request_timeout;
    // Longer than the webhook's own budget, so that the webhook's timeout is what fires.
    config.decision.lookup_timeout = Duration::from_secs(2);
    let state = AppState::with_store(
        config,
        store.clone(),
        Overrides {
            clock: Some(Arc::new(ManualClock::new(tue_1030()))),
            ..Overrides::default()
        },
    )
    .unwrap();
    (TestApp::start(state, Some(dir)).await, store)
}

#[tokio::test]
async fn a_panicking_decision_answers_the_fallback() {
    let (app, store) = with_faulty(LookupFailurePolicy::Continue, Duration::from_secs(5)).await;
    store.set_fault(Fault::Panic);
    assert_continue(&call(&app, CALLER, &sid(1)).await);
    app.stop().await;

    let (app, store) = with_faulty(LookupFailurePolicy::Refuse, Duration::from_secs(5)).await;
    store.set_fault(Fault::Panic);
    let said = refusal(&call(&app, CALLER, &sid(1)).await);
    assert!(said[0].2.contains("cannot take your call"), "{}", said[0].2);
    app.stop().await;
}

#[tokio::test]
async fn a_decision_over_the_time_budget_answers_the_fallback() {
    let (app, store) = with_faulty(LookupFailurePolicy::Refuse, Duration::from_millis(300)).await;
    app.create_arrangement(arrangement(CALLER, json!({"designated_staff": ["alice"]})))
        .await;
    store.set_fault(Fault::Hang);
    let started = std::time::Instant::now();
    let said = refusal(&call(&app, CALLER, &sid(1)).await);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(said[0].2.contains("cannot take your call"), "{}", said[0].2);
    // The abandoned decision was not recorded.
    store.set_fault(Fault::None);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(decisions(&app, CALLER).await.is_empty());
    app.stop().await;
}

// --- dial-status and status callbacks ----------------------------------------------------------

#[tokio::test]
async fn dial_status_no_answer_says_staff_unavailable() {
    let app = pinned(tue_1030()).await;
    app.create_arrangement(arrangement(
        CALLER,
        json!({"designated_staff": ["alice"], "language": "en+cy"}),
    ))
    .await;
    let said = refusal(&twiml_ok(post_signed(&app, DIAL, DIAL_NO_ANSWER).await));
    let langs: Vec<&str> = said.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(langs, ["en-GB", "cy-GB"], "the arrangement's language");
    assert!(said[0].2.contains("not available"), "{}", said[0].2);
    for status in ["busy", "failed", "canceled"] {
        let body = with_fields(DIAL_NO_ANSWER, &[("DialCallStatus", status)]);
        assert!(!refusal(&twiml_ok(post_signed(&app, DIAL, &body).await)).is_empty());
    }
    app.stop().await;
}

#[tokio::test]
async fn dial_status_completed_hangs_up_and_a_call_ended_during_the_dial_changes_nothing() {
    let app = pinned(tue_1030()).await;
    let xml = twiml_ok(post_signed(&app, DIAL, DIAL_COMPLETED).await);
    assert_eq!(names(&verbs(&xml)), ["Hangup"]);
    let answered = with_fields(DIAL_COMPLETED, &[("DialCallStatus", "answered")]);
    assert_eq!(
        names(&verbs(&twiml_ok(post_signed(&app, DIAL, &answered).await))),
        ["Hangup"]
    );
    // The call was ended during the dial: Twilio requests the action URL with the caller's leg
    // completed. SPEC §7: not completed → staff_unavailable and hang up; a valid answer, and
    // nothing is recorded.
    let gone = with_fields(
        DIAL_NO_ANSWER,
        &[("CallStatus", "completed"), ("DialCallStatus", "canceled")],
    );
    assert_eq!(
        names(&verbs(&twiml_ok(post_signed(&app, DIAL, &gone).await))),
        ["Say", "Hangup"]
    );
    let log = app
        .manager(reqwest::Method::GET, "/api/v1/decisions")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(log["items"].as_array().unwrap().len(), 0, "no state change");
    app.stop().await;
}

#[tokio::test]
async fn status_callback_records_final_status_for_logged_calls_only() {
    let app = pinned(tue_1030()).await;
    app.create_arrangement(arrangement(CALLER, json!({"designated_staff": ["alice"]})))
        .await;
    call(&app, CALLER, FIXTURE_SID).await;
    // A progress callback changes nothing.
    let ringing = with_fields(STATUS_COMPLETED, &[("CallStatus", "ringing")]);
    assert_eq!(post_signed(&app, STATUS, &ringing).await.status, 204);
    assert_eq!(
        decisions(&app, CALLER).await[0]["final_status"],
        Value::Null
    );

    for _ in 0..2 {
        // The duplicate is harmless.
        let a = post_signed(&app, STATUS, STATUS_COMPLETED).await;
        assert_eq!(a.status, 204);
        assert!(a.body.is_empty());
    }
    let log = decisions(&app, CALLER).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["final_status"], "completed");
    assert_eq!(log[0]["duration_seconds"], 214);

    // An unknown call (no arrangement, never logged): accepted, nothing stored.
    let other = with_fields(
        STATUS_COMPLETED,
        &[("CallSid", &sid(9)), ("From", "+442920999999")],
    );
    assert_eq!(post_signed(&app, STATUS, &other).await.status, 204);
    assert!(decisions(&app, "+442920999999").await.is_empty());
    assert_eq!(decisions(&app, CALLER).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn query_strings_are_signed_as_received() {
    let app = pinned(tue_1030()).await;
    let path = "/webhooks/twilio/voice?b=2&a=1%20x";
    let sig = signature(path, INCOMING);
    let a = post_raw(&app, path, INCOMING.to_owned(), Some(sig)).await;
    assert_continue(&twiml_ok(a));
    app.stop().await;
}
