//! Telnyx Call Control end to end: the real server, signed webhooks, a fake Telnyx REST API.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::{Signer, SigningKey};
use fairline::clock::ManualClock;
use fairline::domain::HangupResult;
use fairline::domain::{CallId, CallerId, Provider};
use fairline::providers::telnyx::ClientState;
use fairline::state::{AppState, Overrides};
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::app::{arrangement, test_toml, TestApp};

const CONTINUE_TO: &str = "sip:main-queue@pbx.example.org";
const CALLER: &str = "+447700900123";
const API_KEY: &str = "KEYtest";

/// Tuesday 13 January 2026, 09:00 in London (GMT): outside a Tue 10:00–12:00 window.
fn tuesday_nine() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 13, 9, 0, 0).unwrap()
}

struct Telnyx {
    app: TestApp,
    mock: MockServer,
    key: SigningKey,
    clock: ManualClock,
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {"result": "ok"}}))
}

fn call_ended() -> ResponseTemplate {
    ResponseTemplate::new(422).set_body_json(json!({"errors": [{
        "code": "90018", "title": "Call has already ended",
        "detail": "This call is no longer active and can't receive commands."}]}))
}

impl Telnyx {
    /// The app with signatures on, pointed at a fresh fake Telnyx; `mount` adds the fake's
    /// specific answers before the catch-all 200.
    async fn start(extra_toml: &str) -> Telnyx {
        let mock = MockServer::start().await;
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let public =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
        let config = fairline::config::from_sources(
            &test_toml(&url, extra_toml),
            &[
                ("FAIRLINE_TELNYX__API_BASE_URL".into(), mock.uri()),
                ("FAIRLINE_TELNYX__VERIFY_SIGNATURES".into(), "true".into()),
                ("FAIRLINE_TELNYX__PUBLIC_KEY".into(), public),
                ("FAIRLINE_TELNYX__API_KEY".into(), API_KEY.into()),
            ],
        )
        .unwrap();
        assert_eq!(config.telnyx.continue_to, CONTINUE_TO);
        let clock = ManualClock::new(tuesday_nine());
        let state = AppState::build(
            config,
            Overrides {
                clock: Some(Arc::new(clock.clone())),
                ..Overrides::default()
            },
        )
        .await
        .unwrap();
        let app = TestApp::start(state, Some(dir)).await;
        Telnyx {
            app,
            mock,
            key,
            clock,
        }
    }

    async fn catch_all_ok(&self) {
        Mock::given(method("POST"))
            .respond_with(ok())
            .with_priority(10)
            .mount(&self.mock)
            .await;
    }

    fn now(&self) -> DateTime<Utc> {
        use fairline::clock::Clock;
        self.clock.now()
    }

    fn sign(&self, ts: &str, body: &str) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(self.key.sign(format!("{ts}|{body}").as_bytes()).to_bytes())
    }

    /// POST a body signed now.
    async fn post(&self, body: &str) -> reqwest::StatusCode {
        let ts = self.now().timestamp().to_string();
        let sig = self.sign(&ts, body);
        self.post_raw(body, Some(&sig), Some(&ts)).await
    }

    async fn post_raw(
        &self,
        body: &str,
        sig: Option<&str>,
        ts: Option<&str>,
    ) -> reqwest::StatusCode {
        let mut req = self
            .app
            .client
            .post(format!("{}/webhooks/telnyx", self.app.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(s) = sig {
            req = req.header("telnyx-signature-ed25519", s);
        }
        if let Some(t) = ts {
            req = req.header("telnyx-timestamp", t);
        }
        req.send().await.unwrap().status()
    }

    /// The command requests received so far.
    async fn commands(&self) -> Vec<Request> {
        self.mock
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path().contains("/actions/"))
            .collect()
    }

    /// Wait until at least `n` commands arrived (10 s deadline), then a little more to catch
    /// any extra ones; returns them all.
    async fn wait_commands(&self, n: usize) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.commands().await;
            if got.len() >= n {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return self.commands().await;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "expected {n} commands, got {}: {:?}",
                    got.len(),
                    summary(&got)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn event(event_type: &str, id: &str, payload: Value) -> String {
    json!({
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": id,
            "occurred_at": "2026-01-13T09:00:00.000000Z",
            "payload": payload,
        },
        "meta": {"attempt": 1, "delivered_to": "https://calls.example.org/webhooks/telnyx"}
    })
    .to_string()
}

fn initiated(id: &str, call: &str, from: &str, direction: &str) -> String {
    event(
        "call.initiated",
        id,
        json!({
            "call_control_id": call, "call_leg_id": "leg-1", "call_session_id": "sess-1",
            "connection_id": "1234567890", "direction": direction, "from": from,
            "to": "+442079460000", "state": "parked",
        }),
    )
}

fn answered(id: &str, call: &str, client_state: Option<&str>) -> String {
    let mut p = json!({"call_control_id": call, "call_leg_id": "leg-1", "state": "answered"});
    if let Some(s) = client_state {
        p["client_state"] = json!(s);
    }
    event("call.answered", id, p)
}

fn speak_ended(id: &str, call: &str, client_state: Option<&str>) -> String {
    let mut p = json!({"call_control_id": call, "status": "completed"});
    if let Some(s) = client_state {
        p["client_state"] = json!(s);
    }
    event("call.speak.ended", id, p)
}

fn action_of(r: &Request) -> String {
    r.url.path().rsplit('/').next().unwrap_or("").to_owned()
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn summary(rs: &[Request]) -> Vec<String> {
    rs.iter()
        .map(|r| format!("{} {}", r.url.path(), body(r)))
        .collect()
}

fn actions(rs: &[Request]) -> Vec<String> {
    rs.iter().map(action_of).collect()
}

/// Every command went to `/v2/calls/{call}/actions/…` with the bearer key and its own id.
fn assert_well_formed(rs: &[Request], call: &str) {
    let mut ids = HashSet::new();
    for r in rs {
        assert!(
            r.url
                .path()
                .starts_with(&format!("/v2/calls/{call}/actions/")),
            "{}",
            r.url.path()
        );
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("Bearer {API_KEY}")
        );
        let id = body(r)["command_id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert!(ids.insert(id), "command_id reused: {:?}", summary(rs));
    }
}

fn client_state(r: &Request) -> String {
    body(r)["client_state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn no_arrangement_transfers_to_continue_to() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    let status = t
        .post(&initiated("evt-1", "v3:call-1", CALLER, "incoming"))
        .await;
    assert_eq!(status, 200);
    let cmds = t.wait_commands(1).await;
    assert_eq!(actions(&cmds), ["transfer"], "{:?}", summary(&cmds));
    assert_eq!(body(&cmds[0])["to"], CONTINUE_TO);
    assert!(body(&cmds[0]).get("time_limit_secs").is_none());
    assert_well_formed(&cmds, "v3:call-1");
    // Unlogged calls leave no decision row (data minimisation) but the caller is remembered.
    let info = t
        .app
        .state
        .call_control(Provider::Telnyx)
        .lookup_call(&CallId::parse("v3:call-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.caller, CallerId::classify(CALLER));
}

#[tokio::test]
async fn designated_staff_transfers_to_the_staff_target_with_a_time_limit() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    t.app
        .create_arrangement(arrangement(
            CALLER,
            json!({"designated_staff": ["alice"], "max_call_minutes": 20}),
        ))
        .await;
    assert_eq!(
        t.post(&initiated("evt-1", "v3:route", CALLER, "incoming"))
            .await,
        200
    );
    let cmds = t.wait_commands(1).await;
    assert_eq!(actions(&cmds), ["transfer"]);
    let b = body(&cmds[0]);
    assert_eq!(b["to"], "sip:alice@pbx.example.org");
    assert_eq!(b["time_limit_secs"], 1200);
    assert_well_formed(&cmds, "v3:route");
}

#[tokio::test]
async fn outside_window_answers_speaks_then_hangs_up() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    t.app
        .create_arrangement(arrangement(
            CALLER,
            json!({"windows": [{"days": ["tue"], "start": "10:00", "end": "12:00"}],
                   "language": "en"}),
        ))
        .await;
    let expected = t
        .app
        .state
        .evaluate(&CallerId::classify(CALLER), t.now())
        .await
        .unwrap();
    assert_eq!(expected.messages.len(), 1);

    let call = "v3:refuse-1";
    assert_eq!(
        t.post(&initiated("evt-1", call, CALLER, "incoming")).await,
        200
    );
    let cmds = t.wait_commands(1).await;
    assert_eq!(actions(&cmds), ["answer"]);
    let answer_state = client_state(&cmds[0]);

    // Telnyx echoes the answer's client_state on call.answered.
    assert_eq!(
        t.post(&answered("evt-2", call, Some(&answer_state))).await,
        200
    );
    let cmds = t.wait_commands(2).await;
    assert_eq!(actions(&cmds), ["answer", "speak"]);
    let speak = body(&cmds[1]);
    assert_eq!(speak["voice"], "AWS.Polly.Amy");
    assert_eq!(speak["payload"], expected.messages[0].text.as_str());
    assert!(
        speak["payload"].as_str().unwrap().contains("10:00"),
        "{speak}"
    );
    let speak_state = client_state(&cmds[1]);

    assert_eq!(
        t.post(&speak_ended("evt-3", call, Some(&speak_state)))
            .await,
        200
    );
    let cmds = t.wait_commands(3).await;
    assert_eq!(actions(&cmds), ["answer", "speak", "hangup"]);
    assert_well_formed(&cmds, call);

    // The hangup's state echoed on a late speak.ended asks for nothing more.
    let hangup_state = client_state(&cmds[2]);
    assert_eq!(
        t.post(&speak_ended("evt-4", call, Some(&hangup_state)))
            .await,
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.commands().await.len(), 3);
}

#[tokio::test]
async fn bilingual_refusal_speaks_welsh_then_english_then_hangs_up() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    t.app
        .create_arrangement(arrangement(
            CALLER,
            json!({"windows": [{"days": ["tue"], "start": "10:00", "end": "12:00"}],
                   "language": "cy+en"}),
        ))
        .await;
    let expected = t
        .app
        .state
        .evaluate(&CallerId::classify(CALLER), t.now())
        .await
        .unwrap();
    assert_eq!(expected.messages.len(), 2);

    let call = "v3:bilingual";
    t.post(&initiated("evt-1", call, CALLER, "incoming")).await;
    let cmds = t.wait_commands(1).await;
    t.post(&answered("evt-2", call, Some(&client_state(&cmds[0]))))
        .await;
    let cmds = t.wait_commands(2).await;
    t.post(&speak_ended("evt-3", call, Some(&client_state(&cmds[1]))))
        .await;
    let cmds = t.wait_commands(3).await;
    t.post(&speak_ended("evt-4", call, Some(&client_state(&cmds[2]))))
        .await;
    let cmds = t.wait_commands(4).await;
    assert_eq!(actions(&cmds), ["answer", "speak", "speak", "hangup"]);
    let (cy, en) = (body(&cmds[1]), body(&cmds[2]));
    assert_eq!(cy["voice"], "AWS.Polly.Gwyneth");
    assert_eq!(cy["payload"], expected.messages[0].text.as_str());
    assert_eq!(en["voice"], "AWS.Polly.Amy");
    assert_eq!(en["payload"], expected.messages[1].text.as_str());
    assert_well_formed(&cmds, call);
}

#[tokio::test]
async fn blocked_is_rejected_with_call_rejected() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    t.app
        .create_arrangement(arrangement(CALLER, json!({"kind": "blocked"})))
        .await;
    t.post(&initiated("evt-1", "v3:blocked", CALLER, "incoming"))
        .await;
    let cmds = t.wait_commands(1).await;
    assert_eq!(actions(&cmds), ["reject"]);
    assert_eq!(body(&cmds[0])["cause"], "CALL_REJECTED");
    assert_well_formed(&cmds, "v3:blocked");
}

#[tokio::test]
async fn a_duplicate_event_sends_one_command() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    let e = initiated("evt-dup", "v3:dup", CALLER, "incoming");
    for _ in 0..3 {
        assert_eq!(t.post(&e).await, 200);
    }
    // The same call.initiated under another event id is also not acted on twice.
    assert_eq!(
        t.post(&initiated("evt-dup-2", "v3:dup", CALLER, "incoming"))
            .await,
        200
    );
    let cmds = t.wait_commands(1).await;
    assert_eq!(actions(&cmds), ["transfer"], "{:?}", summary(&cmds));
}

#[tokio::test]
async fn a_repeated_answered_step_speaks_once() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    // A refusal state as our answer would have set it, echoed twice under different ids.
    let state = ClientState::Refuse {
        messages: vec![fairline::messages::SpokenMessage {
            language: fairline::domain::Language::En,
            text: "Goodbye.".into(),
        }],
    }
    .encode();
    t.post(&answered("evt-a", "v3:twice", Some(&state))).await;
    t.post(&answered("evt-b", "v3:twice", Some(&state))).await;
    let cmds = t.wait_commands(1).await;
    assert_eq!(actions(&cmds), ["speak"]);
}

#[tokio::test]
async fn unexpected_or_foreign_events_do_nothing() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    let foreign = base64::engine::general_purpose::STANDARD.encode(r#"{"decision":"refuse"}"#);
    let bodies = [
        answered("e1", "v3:x", None),
        answered("e2", "v3:x", Some(&foreign)),
        answered("e3", "v3:x", Some(&ClientState::Continue.encode())),
        speak_ended("e4", "v3:x", None),
        speak_ended("e5", "v3:x", Some(&foreign)),
        speak_ended("e6", "v3:x", Some("!!! not base64")),
        event(
            "call.hangup",
            "e7",
            json!({"call_control_id": "v3:x",
            "hangup_cause": "normal_clearing", "hangup_source": "caller"}),
        ),
        event("call.bridged", "e8", json!({"call_control_id": "v3:x"})),
        event("call.recording.saved", "e9", json!({})),
        // Outgoing legs (e.g. the staff leg of a transfer) are never decided.
        initiated("e10", "v3:outgoing", CALLER, "outgoing"),
    ];
    for b in &bodies {
        assert_eq!(t.post(b).await, 200, "{b}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        t.commands().await.is_empty(),
        "{:?}",
        summary(&t.commands().await)
    );
    // The server is still healthy.
    let health = t
        .app
        .client
        .get(format!("{}/healthz", t.app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn signature_failures_are_403_and_v1_or_malformed_is_400() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    let body = initiated("evt-sig", "v3:sig", CALLER, "incoming");
    let now = t.now().timestamp();
    let ts = now.to_string();

    // Wrong key.
    let other = SigningKey::generate(&mut rand::rngs::OsRng);
    let wrong = base64::engine::general_purpose::STANDARD
        .encode(other.sign(format!("{ts}|{body}").as_bytes()).to_bytes());
    assert_eq!(t.post_raw(&body, Some(&wrong), Some(&ts)).await, 403);
    // Altered body (signature of the original).
    let sig = t.sign(&ts, &body);
    let altered = body.replace(CALLER, "+447700900124");
    assert_eq!(t.post_raw(&altered, Some(&sig), Some(&ts)).await, 403);
    // Old and future timestamps, correctly signed.
    for skew in [-301_i64, 301, -3600, 86_400] {
        let ts = (now + skew).to_string();
        let sig = t.sign(&ts, &body);
        assert_eq!(
            t.post_raw(&body, Some(&sig), Some(&ts)).await,
            403,
            "{skew}"
        );
    }
    // Within tolerance is fine (but use another event id so this is a fresh call).
    // Missing headers.
    assert_eq!(t.post_raw(&body, None, Some(&ts)).await, 403);
    assert_eq!(t.post_raw(&body, Some(&sig), None).await, 403);
    assert_eq!(t.post_raw(&body, None, None).await, 403);
    // Nothing was sent for any of those.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(t.commands().await.is_empty());

    // A v1 envelope, validly signed: 400 telling the operator to switch to v2.
    let v1 = json!({"event_type": "call_initiated", "payload": {"call_control_id": "v3:v1"}})
        .to_string();
    let ts = t.now().timestamp().to_string();
    let resp = t
        .app
        .client
        .post(format!("{}/webhooks/telnyx", t.app.url))
        .header("telnyx-signature-ed25519", t.sign(&ts, &v1))
        .header("telnyx-timestamp", &ts)
        .body(v1.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("version to 2"), "{text}");
    // Malformed JSON, validly signed.
    assert_eq!(t.post("{not json").await, 400);
    assert_eq!(
        t.post(r#"{"data": {"event_type": "call.initiated"}}"#)
            .await,
        400
    );

    // And the genuine event, 299 s old, goes through.
    let ts = (now - 299).to_string();
    let sig = t.sign(&ts, &body);
    assert_eq!(t.post_raw(&body, Some(&sig), Some(&ts)).await, 200);
    assert_eq!(actions(&t.wait_commands(1).await), ["transfer"]);
}

#[tokio::test]
async fn a_failed_staff_transfer_falls_back_to_continue_to() {
    let t = Telnyx::start("").await;
    Mock::given(method("POST"))
        .and(path_regex("/actions/transfer$"))
        .and(body_partial_json(
            json!({"to": "sip:alice@pbx.example.org"}),
        ))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(&t.mock)
        .await;
    t.catch_all_ok().await;
    t.app
        .create_arrangement(arrangement(CALLER, json!({"designated_staff": ["alice"]})))
        .await;
    t.post(&initiated("evt-1", "v3:fail", CALLER, "incoming"))
        .await;
    // Three attempts at the staff transfer, then the continue transfer.
    let cmds = t.wait_commands(4).await;
    assert_eq!(
        actions(&cmds),
        ["transfer", "transfer", "transfer", "transfer"],
        "{:?}",
        summary(&cmds)
    );
    for c in &cmds[..3] {
        assert_eq!(body(c)["to"], "sip:alice@pbx.example.org");
    }
    // Retries reuse the command id; the fallback has its own.
    assert_eq!(body(&cmds[0])["command_id"], body(&cmds[2])["command_id"]);
    assert_ne!(body(&cmds[0])["command_id"], body(&cmds[3])["command_id"]);
    assert_eq!(body(&cmds[3])["to"], CONTINUE_TO);
}

#[tokio::test]
async fn a_failed_continue_transfer_rejects_rather_than_leaving_silence() {
    let t = Telnyx::start("").await;
    Mock::given(method("POST"))
        .and(path_regex("/actions/transfer$"))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(&t.mock)
        .await;
    t.catch_all_ok().await;
    t.post(&initiated("evt-1", "v3:silence", CALLER, "incoming"))
        .await;
    let cmds = t.wait_commands(4).await;
    assert_eq!(
        actions(&cmds),
        ["transfer", "transfer", "transfer", "reject"],
        "{:?}",
        summary(&cmds)
    );
    assert_eq!(body(&cmds[3])["cause"], "CALL_REJECTED");
}

#[tokio::test]
async fn a_failed_answer_on_a_refusal_rejects() {
    let t = Telnyx::start("").await;
    Mock::given(method("POST"))
        .and(path_regex("/actions/answer$"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&t.mock)
        .await;
    t.catch_all_ok().await;
    t.app
        .create_arrangement(arrangement(
            CALLER,
            json!({"windows": [{"days": ["tue"], "start": "10:00", "end": "12:00"}]}),
        ))
        .await;
    t.post(&initiated("evt-1", "v3:noanswer", CALLER, "incoming"))
        .await;
    let cmds = t.wait_commands(4).await;
    assert_eq!(actions(&cmds), ["answer", "answer", "answer", "reject"]);
}

#[tokio::test]
async fn a_call_that_already_ended_gets_no_fallback() {
    let t = Telnyx::start("").await;
    Mock::given(method("POST"))
        .and(path_regex("/actions/transfer$"))
        .respond_with(call_ended())
        .with_priority(1)
        .mount(&t.mock)
        .await;
    t.catch_all_ok().await;
    t.post(&initiated("evt-1", "v3:gone", CALLER, "incoming"))
        .await;
    let cmds = t.wait_commands(1).await;
    assert_eq!(actions(&cmds), ["transfer"]);
}

#[tokio::test]
async fn end_call_lookup_and_hang_up() {
    let t = Telnyx::start("").await;
    Mock::given(method("POST"))
        .and(path("/v2/calls/v3:live/actions/hangup"))
        .respond_with(ok())
        .mount(&t.mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/calls/v3:over/actions/hangup"))
        .respond_with(call_ended())
        .mount(&t.mock)
        .await;
    t.catch_all_ok().await;
    let control = t.app.state.call_control(Provider::Telnyx);
    let live = CallId::parse("v3:live").unwrap();
    assert_eq!(control.lookup_call(&live).await.unwrap(), None);

    t.post(&initiated("evt-1", "v3:live", CALLER, "incoming"))
        .await;
    let info = control.lookup_call(&live).await.unwrap().unwrap();
    assert_eq!(info.caller, CallerId::classify(CALLER));
    // Outgoing legs are not remembered.
    t.post(&initiated("evt-2", "v3:leg-b", "+442079460999", "outgoing"))
        .await;
    assert_eq!(
        control
            .lookup_call(&CallId::parse("v3:leg-b").unwrap())
            .await
            .unwrap(),
        None
    );

    assert_eq!(
        control.hang_up(&live).await.unwrap(),
        HangupResult::Completed
    );
    let over = CallId::parse("v3:over").unwrap();
    assert_eq!(
        control.hang_up(&over).await.unwrap(),
        HangupResult::AlreadyEnded
    );
    let hangups: Vec<Request> = t
        .commands()
        .await
        .into_iter()
        .filter(|r| action_of(r) == "hangup")
        .collect();
    assert_eq!(hangups.len(), 2);
    assert_well_formed(&hangups[..1], "v3:live");
}

#[tokio::test]
async fn hangup_records_the_final_status_of_a_logged_call() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    t.app
        .create_arrangement(arrangement(CALLER, json!({"designated_staff": ["bob"]})))
        .await;
    let call = "v3:logged";
    t.post(&initiated("evt-1", call, CALLER, "incoming")).await;
    let cmds = t.wait_commands(1).await;
    assert_eq!(body(&cmds[0])["to"], "+442079460999");
    let hangup = json!({
        "data": {"record_type": "event", "event_type": "call.hangup", "id": "evt-h",
                 "occurred_at": "2026-01-13T09:02:05.000000Z",
                 "payload": {"call_control_id": call, "hangup_cause": "normal_clearing",
                             "hangup_source": "caller"}}
    })
    .to_string();
    assert_eq!(t.post(&hangup).await, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resp = t
            .app
            .manager(
                reqwest::Method::GET,
                "/api/v1/decisions?since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z",
            )
            .send()
            .await
            .unwrap();
        let json: Value = resp.json().await.unwrap();
        let text = json.to_string();
        let item = json["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["call_id"] == call))
            .cloned()
            .unwrap_or(Value::Null);
        if item["final_status"] == "normal_clearing" {
            assert_eq!(item["duration_seconds"], 125, "{item}");
            assert_eq!(item["provider"], "telnyx");
            break;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("final status not recorded: {text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_transfer_refused_as_not_answered_is_answered_then_retried() {
    let t = Telnyx::start("").await;
    Mock::given(method("POST"))
        .and(path_regex("/actions/transfer$"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"errors": [
            {"code": "90034", "title": "Call not answered yet"}]})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&t.mock)
        .await;
    t.catch_all_ok().await;
    t.post(&initiated("evt-1", "v3:parked", CALLER, "incoming"))
        .await;
    let cmds = t.wait_commands(3).await;
    assert_eq!(actions(&cmds), ["transfer", "answer", "transfer"]);
    assert_eq!(body(&cmds[2])["to"], CONTINUE_TO);
    assert_well_formed(&cmds, "v3:parked");
}

/// The agent's end-call button for a Telnyx call: the caller remembered from `call.initiated`
/// links the termination to the caller's arrangement; the platform gets one `actions/hangup`;
/// a call Telnyx says had ended is recorded as `already_ended`.
#[tokio::test]
async fn the_end_call_endpoint_works_for_telnyx_calls() {
    let t = Telnyx::start("").await;
    Mock::given(method("POST"))
        .and(path("/v2/calls/v3:abusive/actions/hangup"))
        .respond_with(ok())
        .mount(&t.mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/calls/v3:gone/actions/hangup"))
        .respond_with(call_ended())
        .mount(&t.mock)
        .await;
    t.catch_all_ok().await;
    let created = t
        .app
        .create_arrangement(arrangement(CALLER, json!({"designated_staff": ["bob"]})))
        .await;
    t.post(&initiated("evt-1", "v3:abusive", CALLER, "incoming"))
        .await;

    let press = |call: &'static str| {
        t.app
            .agent(
                reqwest::Method::POST,
                &format!("/api/v1/calls/telnyx/{call}/terminate"),
            )
            .json(&json!({"reason": "threat_of_violence", "warning_given": false}))
            .send()
    };
    let r = press("v3:abusive").await.unwrap();
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["provider"], "telnyx");
    assert_eq!(rec["call_id"], "v3:abusive");
    assert_eq!(rec["caller"], CALLER);
    assert_eq!(rec["arrangement_id"], created["id"]);
    assert_eq!(rec["hangup"]["result"], "completed");
    assert_eq!(rec["police_report_required"], true);
    // A second press answers the same record and does not hang up again.
    let again = press("v3:abusive").await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], rec["id"]);

    let r = press("v3:gone").await.unwrap();
    assert_eq!(r.status(), 201);
    let gone: Value = r.json().await.unwrap();
    assert_eq!(gone["hangup"]["result"], "already_ended");
    assert_eq!(
        gone["caller"],
        Value::Null,
        "a call this instance never saw"
    );

    let hangups: Vec<Request> = t
        .commands()
        .await
        .into_iter()
        .filter(|r| action_of(r) == "hangup")
        .collect();
    let paths: Vec<String> = hangups.iter().map(|r| r.url.path().to_string()).collect();
    assert_eq!(
        paths,
        vec![
            "/v2/calls/v3:abusive/actions/hangup".to_string(),
            "/v2/calls/v3:gone/actions/hangup".to_string()
        ]
    );
    assert_well_formed(&hangups[..1], "v3:abusive");
}

/// Commands are sent after the 200; a shutdown waits for the ones in flight instead of cutting
/// a call off mid-decision.
#[tokio::test]
async fn shutdown_waits_for_commands_in_flight() {
    let t = Telnyx::start("").await;
    Mock::given(method("POST"))
        .and(path("/v2/calls/v3:late/actions/transfer"))
        .respond_with(ok().set_delay(std::time::Duration::from_millis(600)))
        .mount(&t.mock)
        .await;
    t.catch_all_ok().await;
    assert_eq!(
        t.post(&initiated("evt-1", "v3:late", CALLER, "incoming"))
            .await,
        200
    );
    // The transfer is under way (the fake answers slowly).
    let _ = t.wait_commands(1).await;
    let state = t.app.state.clone();
    assert!(
        !state.tasks.is_empty(),
        "the command should still be in flight"
    );
    let Telnyx { app, .. } = t;
    app.stop().await;
    assert!(
        state.tasks.is_empty(),
        "serve returned before the command in flight had finished"
    );
}

/// An end-call press served by an instance that never saw the call's `call.initiated` still
/// finds the caller of a call under an arrangement, in the shared decision log.
#[tokio::test]
async fn the_end_call_endpoint_finds_a_logged_caller_without_the_event() {
    let t = Telnyx::start("").await;
    t.catch_all_ok().await;
    let created = t
        .app
        .create_arrangement(arrangement(CALLER, json!({"designated_staff": ["bob"]})))
        .await;
    // Decided (and logged) as another instance would have: nothing remembered in memory here.
    let call = fairline::providers::CallEvent {
        provider: Provider::Telnyx,
        call_id: CallId::parse("v3:elsewhere").unwrap(),
        caller: CallerId::classify(CALLER),
    };
    t.app.state.decide_call(&call).await;
    let control = t.app.state.call_control(Provider::Telnyx);
    assert_eq!(
        control.lookup_call(&call.call_id).await.unwrap(),
        None,
        "this instance has no memory of the call"
    );
    let r = t
        .app
        .agent(
            reqwest::Method::POST,
            "/api/v1/calls/telnyx/v3:elsewhere/terminate",
        )
        .json(&json!({"reason": "abusive", "warning_given": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["caller"], CALLER);
    assert_eq!(rec["arrangement_id"], created["id"]);
    assert_eq!(rec["customer_ref"], created["customer_ref"]);
}
