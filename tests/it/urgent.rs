//! The safeguarding route on refusal (SPEC §14), through the real server on port 0, on SQLite
//! and (with `FAIRLINE_TEST_POSTGRES_URL`) PostgreSQL. The clock is a `ManualClock`; the
//! arrangements run from 2000 to 2199, so nothing depends on today's date.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fairline::clock::ManualClock;
use fairline::config::Secret;
use fairline::domain::{CallId, Provider};
use fairline::providers::twilio;
use fairline::state::{AppState, Overrides};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::app::{arrangement, test_toml, TestApp, TWILIO_TOKEN};
use crate::support;

pub const CALLER: &str = "+442920123456";
const PUBLIC_URL: &str = "https://calls.example.org";
const VOICE: &str = "/webhooks/twilio/voice";
const TWILIO_URGENT: &str = "/webhooks/twilio/urgent";

/// `[decision.urgent]` on, for the platforms of the test configuration (and Vonage's).
pub const URGENT_ON: &str = r#"
[decision.urgent]
enabled = true
digit = "9"
twilio = "client:duty-manager"
telnyx = "sip:duty@pbx.example.org"
vonage = "+447700900999"
"#;

pub const EN_OFFER: &str =
    "If someone is at risk of harm, press 9 now to speak to the duty manager.";
pub const CY_OFFER: &str =
    "Os oes rhywun mewn perygl o niwed, pwyswch 9 nawr i siarad â'r rheolwr ar ddyletswydd.";

/// Wednesday 2 December 2026, 10:30 in London: outside a Tuesday-only window.
pub fn wed_1030() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 10, 30, 0).unwrap()
}

/// Tuesday 8 December 2026, 10:30 in London: inside the Tuesday window.
pub fn tue_1030() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 10, 30, 0).unwrap()
}

/// Calls on Tuesdays 10:00-12:00, one call a day.
pub fn tuesday_once(extra: Value) -> Value {
    let mut a = arrangement(
        CALLER,
        json!({
            "windows": [{"days": ["tue"], "start": "10:00", "end": "12:00"}],
            "allowance": {"count": 1, "per": "day"}
        }),
    );
    if let (Some(b), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    a
}

/// A server on SQLite, or on PostgreSQL in a fresh schema when `pg` (None when PostgreSQL is
/// not configured for tests), with the clock pinned at `at`.
pub async fn spawn(
    pg: bool,
    test: &str,
    extra: &str,
    at: DateTime<Utc>,
) -> Option<(TestApp, Arc<ManualClock>, Option<(String, String)>)> {
    spawn_env(pg, test, extra, &[], at).await
}

/// [`spawn`] with environment-variable overrides of the configuration.
pub async fn spawn_env(
    pg: bool,
    test: &str,
    extra: &str,
    env: &[(String, String)],
    at: DateTime<Utc>,
) -> Option<(TestApp, Arc<ManualClock>, Option<(String, String)>)> {
    let clock = Arc::new(ManualClock::new(at));
    let overrides = Overrides {
        clock: Some(clock.clone()),
        ..Overrides::default()
    };
    if pg {
        let (url, schema) = support::pg_schema(test)?;
        let store = fairline::store::postgres::PgStore::connect_in_schema(&url, &schema)
            .await
            .unwrap();
        let config = fairline::config::from_sources(&test_toml(&url, extra), env).unwrap();
        let state = AppState::with_store(config, Arc::new(store), overrides).unwrap();
        Some((
            TestApp::start(state, None).await,
            clock,
            Some((url, schema)),
        ))
    } else {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
        let config = fairline::config::from_sources(&test_toml(&url, extra), env).unwrap();
        let state = AppState::build(config, overrides).await.unwrap();
        Some((TestApp::start(state, Some(dir)).await, clock, None))
    }
}

pub async fn finish(app: TestApp, pg: Option<(String, String)>) {
    app.stop().await;
    if let Some((url, schema)) = pg {
        let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
    }
}

pub async fn decisions(app: &TestApp) -> Vec<Value> {
    let resp = app
        .manager(
            reqwest::Method::GET,
            &format!("/api/v1/decisions?phone={}", CALLER.replace('+', "%2B")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

/// The decision-log entry of one call.
pub async fn logged(app: &TestApp, call_id: &str) -> Value {
    decisions(app)
        .await
        .into_iter()
        .find(|d| d["call_id"] == call_id)
        .unwrap_or_else(|| panic!("{call_id} is not in the decision log"))
}

/// Wait until the live-call row of a call says `reason`.
pub async fn wait_live_reason(app: &TestApp, provider: Provider, call_id: &str, reason: &str) {
    let id = CallId::parse(call_id).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = app.state.store.get_live_call(provider, &id).await.unwrap();
        if row.as_ref().is_some_and(|r| r.reason.as_str() == reason) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live call {call_id}: {row:?}, wanted {reason}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A notification receiver that accepts everything.
pub async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    server
}

pub fn notifications_to(server: &MockServer) -> String {
    format!("[notifications]\nwebhook_url = \"{}/hook\"\n", server.uri())
}

pub async fn wait_for_requests(server: &MockServer, n: usize) -> Vec<Request> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = server.received_requests().await.unwrap_or_default();
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `call.urgent_route` notification a receiver got, checked for its shape.
pub fn urgent_notification(req: &Request, provider: &str, call_id: &str, target: &str) {
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["event"], "call.urgent_route", "{body}");
    assert_eq!(
        req.headers.get("x-fairline-event").unwrap(),
        "call.urgent_route"
    );
    assert_eq!(
        req.headers
            .get("idempotency-key")
            .unwrap()
            .to_str()
            .unwrap(),
        body["id"].as_str().unwrap()
    );
    assert_eq!(body["call"]["provider"], provider);
    assert_eq!(body["call"]["call_id"], call_id);
    assert_eq!(body["call"]["caller"], CALLER);
    assert!(body["call"]["arrangement_id"]
        .as_str()
        .unwrap()
        .starts_with("arr_"));
    assert_eq!(body["call"]["target"], target);
}

async fn evaluate(app: &TestApp, at: DateTime<Utc>) -> Value {
    let resp = app
        .agent(reqwest::Method::POST, "/api/v1/evaluate")
        .json(&json!({"from": CALLER, "at": at.to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn texts(messages: &Value) -> Vec<(String, String)> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["language"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// --- Twilio ------------------------------------------------------------------------------------

fn sid(n: u32) -> String {
    format!("CA{n:032x}")
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn fields(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn signature(path: &str, body: &str) -> String {
    twilio::compute_signature(
        &format!("{PUBLIC_URL}{path}"),
        &fields(body),
        &Secret::new(TWILIO_TOKEN),
    )
}

async fn post(app: &TestApp, path: &str, body: String, sig: Option<String>) -> (u16, String) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = sig {
        req = req.header(twilio::SIGNATURE_HEADER, s);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn twilio_call(app: &TestApp, call_sid: &str) -> String {
    let body = form(&[
        ("CallSid", call_sid),
        ("AccountSid", crate::app::ACCOUNT_SID),
        ("From", CALLER),
        ("To", "+442920000000"),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
    ]);
    let sig = signature(VOICE, &body);
    let (status, xml) = post(app, VOICE, body, Some(sig)).await;
    assert_eq!(status, 200, "{xml}");
    xml
}

fn gather_body(call_sid: &str, digits: &str) -> String {
    form(&[
        ("CallSid", call_sid),
        ("AccountSid", crate::app::ACCOUNT_SID),
        ("From", CALLER),
        ("To", "+442920000000"),
        ("CallStatus", "in-progress"),
        ("Digits", digits),
        ("FinishedOnKey", ""),
    ])
}

async fn twilio_press(app: &TestApp, call_sid: &str, digits: &str) -> String {
    let body = gather_body(call_sid, digits);
    let sig = signature(TWILIO_URGENT, &body);
    let (status, xml) = post(app, TWILIO_URGENT, body, Some(sig)).await;
    assert_eq!(status, 200, "{xml}");
    xml
}

/// `(verb, attributes, children (name, attrs, text))` of each top-level verb.
type Verbs = Vec<(
    String,
    Vec<(String, String)>,
    Vec<(String, Vec<(String, String)>, String)>,
)>;

fn verbs(xml: &str) -> Verbs {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response");
    let attrs = |n: roxmltree::Node| -> Vec<(String, String)> {
        n.attributes()
            .map(|a| (a.name().to_owned(), a.value().to_owned()))
            .collect()
    };
    root.children()
        .filter(|n| n.is_element())
        .map(|n| {
            (
                n.tag_name().name().to_owned(),
                attrs(n),
                n.children()
                    .filter(|c| c.is_element())
                    .map(|c| {
                        (
                            c.tag_name().name().to_owned(),
                            attrs(c),
                            c.text().unwrap_or("").to_owned(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The texts said inside the `<Gather>` (language, text), checking the whole answer's shape.
fn offered(xml: &str) -> Vec<(String, String)> {
    let v = verbs(xml);
    let names: Vec<&str> = v.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["Gather", "Hangup"], "{xml}");
    let (_, gather, says) = &v[0];
    assert_eq!(attr(gather, "numDigits"), Some("1"));
    assert_eq!(attr(gather, "timeout"), Some("5"));
    assert_eq!(
        attr(gather, "action"),
        Some("https://calls.example.org/webhooks/twilio/urgent")
    );
    says.iter()
        .map(|(name, attrs, text)| {
            assert_eq!(name, "Say", "{xml}");
            let lang = attr(attrs, "language").unwrap();
            if lang == "cy-GB" {
                assert_eq!(attr(attrs, "voice"), Some("Polly.Gwyneth"));
            }
            (lang.to_owned(), text.clone())
        })
        .collect()
}

fn is_plain_refusal(xml: &str) -> bool {
    let v = verbs(xml);
    v.last().is_some_and(|(n, _, _)| n == "Hangup")
        && v[..v.len() - 1].iter().all(|(n, _, _)| n == "Say")
        && v.len() >= 2
}

fn is_hangup(xml: &str) -> bool {
    let v = verbs(xml);
    v.len() == 1 && v[0].0 == "Hangup"
}

#[tokio::test]
async fn twilio_offer_is_spoken_in_english_welsh_and_both() {
    let (app, _clock, _) = spawn(false, "", URGENT_ON, wed_1030()).await.unwrap();
    let cases = [
        ("en", vec![("en-GB", EN_OFFER)]),
        ("cy", vec![("cy-GB", CY_OFFER)]),
        ("en+cy", vec![("en-GB", EN_OFFER), ("cy-GB", CY_OFFER)]),
        ("cy+en", vec![("cy-GB", CY_OFFER), ("en-GB", EN_OFFER)]),
    ];
    for (i, (language, offer)) in cases.iter().enumerate() {
        let created = app
            // Each starts when the one before was revoked (periods may not overlap).
            .create_arrangement(tuesday_once(
                json!({"language": language, "starts_at": wed_1030().to_rfc3339()}),
            ))
            .await;
        let said = offered(&twilio_call(&app, &sid(i as u32 + 1)).await);
        // The refusal texts first (one per language), then the offer in the same order.
        assert_eq!(said.len(), offer.len() * 2, "{said:?}");
        let tail: Vec<(&str, &str)> = said[offer.len()..]
            .iter()
            .map(|(l, t)| (l.as_str(), t.as_str()))
            .collect();
        assert_eq!(&tail, offer);
        for ((lang, text), (want_lang, _)) in said[..offer.len()].iter().zip(offer) {
            assert_eq!(lang, want_lang);
            assert!(!text.contains("press 9") && !text.contains("pwyswch"));
        }
        // The evaluate output lists the same texts in the same order.
        let eval = evaluate(&app, wed_1030()).await;
        let eval_texts = texts(&eval["messages"]);
        assert_eq!(eval_texts.len(), said.len());
        for ((el, et), (_, st)) in eval_texts.iter().zip(&said) {
            assert_eq!(et, st);
            assert!(el == "en" || el == "cy");
        }
        let id = created["id"].as_str().unwrap();
        let resp = app
            .manager(
                reqwest::Method::POST,
                &format!("/api/v1/arrangements/{id}/revoke"),
            )
            .json(&json!({"reason": "next case"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    app.stop().await;
}

async fn twilio_digit_9_routes_notifies_and_is_not_counted(pg: bool) {
    let hook = receiver().await;
    let extra = format!("{URGENT_ON}\n{}", notifications_to(&hook));
    let Some((app, clock, schema)) = spawn(
        pg,
        "twilio_digit_9_routes_notifies_and_is_not_counted",
        &extra,
        wed_1030(),
    )
    .await
    else {
        return;
    };
    let created = app.create_arrangement(tuesday_once(json!({}))).await;
    assert_eq!(created["urgent_route"], true, "the default");

    // Refused outside the window, with the offer.
    let call = sid(1);
    let said = offered(&twilio_call(&app, &call).await);
    assert_eq!(said.last().unwrap().1, EN_OFFER);
    wait_live_reason(&app, Provider::Twilio, &call, "outside_window").await;

    // 9 → <Dial> to the duty target.
    let xml = twilio_press(&app, &call, "9").await;
    let v = verbs(&xml);
    assert_eq!(v.len(), 1, "{xml}");
    let (name, attrs, nouns) = &v[0];
    assert_eq!(name, "Dial");
    assert_eq!(
        attr(attrs, "action"),
        Some("https://calls.example.org/webhooks/twilio/dial-status")
    );
    assert_eq!(attr(attrs, "timeLimit"), None);
    assert_eq!(nouns.len(), 1);
    assert_eq!(
        (nouns[0].0.as_str(), nouns[0].2.as_str()),
        ("Client", "duty-manager")
    );

    // Logged as an urgent route, not counted; live calls say so; the receiver is told.
    let entry = logged(&app, &call).await;
    assert_eq!(entry["outcome"], "route", "{entry}");
    assert_eq!(entry["reason"], "urgent_route", "{entry}");
    wait_live_reason(&app, Provider::Twilio, &call, "urgent_route").await;
    let got = wait_for_requests(&hook, 1).await;
    assert_eq!(got.len(), 1);
    urgent_notification(&got[0], "twilio", &call, "client:duty-manager");

    // The allowance of one call a day is untouched: Tuesday's first call goes through ...
    clock.set(tue_1030());
    let xml = twilio_call(&app, &sid(2)).await;
    assert!(!xml.contains("<Gather"), "{xml}");
    assert!(xml.contains("<Redirect"), "{xml}");
    // ... and the second is refused for the allowance, with the offer again.
    let said = offered(&twilio_call(&app, &sid(3)).await);
    assert_eq!(said.last().unwrap().1, EN_OFFER);
    assert_eq!(logged(&app, &sid(3)).await["reason"], "allowance_used");
    finish(app, schema).await;
}

#[tokio::test]
async fn twilio_digit_9_routes_notifies_and_is_not_counted_sqlite() {
    twilio_digit_9_routes_notifies_and_is_not_counted(false).await;
}

#[tokio::test]
async fn twilio_digit_9_routes_notifies_and_is_not_counted_postgres() {
    twilio_digit_9_routes_notifies_and_is_not_counted(true).await;
}

#[tokio::test]
async fn twilio_other_digit_or_silence_hangs_up() {
    let hook = receiver().await;
    let extra = format!("{URGENT_ON}\n{}", notifications_to(&hook));
    let (app, _clock, _) = spawn(false, "", &extra, wed_1030()).await.unwrap();
    app.create_arrangement(tuesday_once(json!({}))).await;
    let call = sid(1);
    offered(&twilio_call(&app, &call).await);
    for digits in ["1", "#", "*", ""] {
        let xml = twilio_press(&app, &call, digits).await;
        assert!(is_hangup(&xml), "{digits:?}: {xml}");
    }
    // Silence: Twilio carries on after the <Gather> to the <Hangup/> (checked in `offered`).
    let entry = logged(&app, &call).await;
    assert_eq!(entry["outcome"], "refuse");
    assert_eq!(entry["reason"], "outside_window");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.received_requests().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn twilio_no_offer_when_the_arrangement_or_the_config_says_no() {
    // The arrangement turns it off (and the API shows it).
    let (app, _clock, _) = spawn(false, "", URGENT_ON, wed_1030()).await.unwrap();
    let created = app
        .create_arrangement(tuesday_once(json!({"urgent_route": false})))
        .await;
    assert_eq!(created["urgent_route"], false);
    let xml = twilio_call(&app, &sid(1)).await;
    assert!(is_plain_refusal(&xml), "{xml}");
    assert!(!xml.contains("press 9"));
    let eval = evaluate(&app, wed_1030()).await;
    assert_eq!(eval["messages"].as_array().unwrap().len(), 1);
    app.stop().await;

    // Off in the configuration (the default).
    let (app, _clock, _) = spawn(false, "", "", wed_1030()).await.unwrap();
    app.create_arrangement(tuesday_once(json!({}))).await;
    let xml = twilio_call(&app, &sid(1)).await;
    assert!(is_plain_refusal(&xml), "{xml}");
    // A late or forged key press while the route is off only hangs up.
    assert!(is_hangup(&twilio_press(&app, &sid(1), "9").await));
    app.stop().await;

    // A block answered with `reject` offers nothing.
    let (app, _clock, _) = spawn(false, "", URGENT_ON, wed_1030()).await.unwrap();
    app.create_arrangement(arrangement(CALLER, json!({"kind": "blocked"})))
        .await;
    let xml = twilio_call(&app, &sid(1)).await;
    let v = verbs(&xml);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, "Reject");
    assert!(evaluate(&app, wed_1030()).await["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| !m["text"].as_str().unwrap().contains("press 9")));
    app.stop().await;
}

#[tokio::test]
async fn twilio_urgent_endpoint_checks_the_signature() {
    let hook = receiver().await;
    let extra = format!("{URGENT_ON}\n{}", notifications_to(&hook));
    let (app, _clock, _) = spawn(false, "", &extra, wed_1030()).await.unwrap();
    app.create_arrangement(tuesday_once(json!({}))).await;
    let call = sid(1);
    offered(&twilio_call(&app, &call).await);
    let body = gather_body(&call, "9");
    // No signature, a signature for another path, a signature over other fields.
    let (status, _) = post(&app, TWILIO_URGENT, body.clone(), None).await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &app,
        TWILIO_URGENT,
        body.clone(),
        Some(signature(VOICE, &body)),
    )
    .await;
    assert_eq!(status, 403);
    let other = gather_body(&call, "1");
    let (status, _) = post(
        &app,
        TWILIO_URGENT,
        body,
        Some(signature(TWILIO_URGENT, &other)),
    )
    .await;
    assert_eq!(status, 403);
    // Nothing happened.
    assert_eq!(logged(&app, &call).await["reason"], "outside_window");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.received_requests().await.unwrap().is_empty());
    app.stop().await;
}

// --- Vonage ------------------------------------------------------------------------------------

const VONAGE_SECRET: &str = "test-vonage-signature-secret-0123456789";
const VONAGE_APP_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
const VONAGE_KEY: &str = include_str!("../../fixtures/vonage/test-application-private-key.pem");
const VONAGE_ANSWER: &str = "/webhooks/vonage/answer";
const VONAGE_URGENT: &str = "/webhooks/vonage/urgent";
const OUR_NUMBER: &str = "442079460000";

fn vonage_extra(api_base: &str) -> String {
    format!(
        r#"
[vonage]
application_id = "{VONAGE_APP_ID}"
private_key = '''
{VONAGE_KEY}'''
signature_secret = "{VONAGE_SECRET}"
api_base_url = "{api_base}"
continue_to = "sip:main-queue@pbx.example.org"
"#
    )
}

fn vonage_uuid(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

fn vonage_token(payload: &[u8], iat: DateTime<Utc>, secret: &str) -> String {
    use fairline::providers::vonage;
    vonage::sign(
        &vonage::WebhookClaims {
            iat: iat.timestamp(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            iss: Some("Vonage".into()),
            payload_hash: Some(vonage::payload_hash(payload)),
            api_key: Some("abcd1234".into()),
            application_id: Some(VONAGE_APP_ID.into()),
            exp: None,
        },
        &Secret::new(secret),
    )
    .unwrap()
}

async fn vonage_post(
    app: &TestApp,
    path: &str,
    body: &Value,
    auth: Option<String>,
) -> (u16, Value) {
    let raw = body.to_string();
    let mut req = app
        .client
        .post(format!("{}{path}", app.url))
        .header("content-type", "application/json")
        .body(raw);
    if let Some(a) = auth {
        req = req.header("authorization", format!("Bearer {a}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn vonage_signed(app: &TestApp, path: &str, body: &Value, now: DateTime<Utc>) -> Value {
    let token = vonage_token(body.to_string().as_bytes(), now, VONAGE_SECRET);
    let (status, ncco) = vonage_post(app, path, body, Some(token)).await;
    assert_eq!(status, 200, "{ncco}");
    ncco
}

async fn vonage_call(app: &TestApp, n: u32, now: DateTime<Utc>) -> Value {
    let body = json!({
        "from": CALLER.trim_start_matches('+'),
        "to": OUR_NUMBER,
        "uuid": vonage_uuid(n),
        "conversation_uuid": format!("CON-{}", vonage_uuid(n)),
        "region_url": "https://api-eu-1.vonage.com",
    });
    vonage_signed(app, VONAGE_ANSWER, &body, now).await
}

fn vonage_input(n: u32, digits: &str, timed_out: bool) -> Value {
    json!({
        "from": CALLER.trim_start_matches('+'),
        "to": OUR_NUMBER,
        "uuid": vonage_uuid(n),
        "conversation_uuid": format!("CON-{}", vonage_uuid(n)),
        "dtmf": {"digits": digits, "timed_out": timed_out},
        "speech": {"results": []},
        "timestamp": "2026-12-02T10:30:05.000Z",
    })
}

/// The talk texts (language, text) of an offer NCCO, checking the closing `input`.
fn vonage_offered(ncco: &Value) -> Vec<(String, String)> {
    let actions = ncco.as_array().unwrap();
    let (last, talks) = actions.split_last().unwrap();
    assert_eq!(
        last,
        &json!({
            "action": "input",
            "type": ["dtmf"],
            "dtmf": {"maxDigits": 1, "timeOut": 5},
            "eventUrl": ["https://calls.example.org/webhooks/vonage/urgent"],
        })
    );
    talks
        .iter()
        .map(|t| {
            assert_eq!(t["action"], "talk", "{ncco}");
            (
                t["language"].as_str().unwrap().to_owned(),
                t["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn vonage_offer_is_spoken_in_english_welsh_and_both() {
    let rest = MockServer::start().await;
    let extra = format!("{URGENT_ON}\n{}", vonage_extra(&rest.uri()));
    let (app, _clock, _) = spawn(false, "", &extra, wed_1030()).await.unwrap();
    let cases = [
        ("en", vec![("en-GB", EN_OFFER)]),
        ("cy", vec![("cy-GB", CY_OFFER)]),
        ("en+cy", vec![("en-GB", EN_OFFER), ("cy-GB", CY_OFFER)]),
    ];
    for (i, (language, offer)) in cases.iter().enumerate() {
        let created = app
            .create_arrangement(tuesday_once(
                json!({"language": language, "starts_at": wed_1030().to_rfc3339()}),
            ))
            .await;
        let said = vonage_offered(&vonage_call(&app, i as u32 + 1, wed_1030()).await);
        assert_eq!(said.len(), offer.len() * 2, "{said:?}");
        let tail: Vec<(&str, &str)> = said[offer.len()..]
            .iter()
            .map(|(l, t)| (l.as_str(), t.as_str()))
            .collect();
        assert_eq!(&tail, offer);
        let id = created["id"].as_str().unwrap();
        let resp = app
            .manager(
                reqwest::Method::POST,
                &format!("/api/v1/arrangements/{id}/revoke"),
            )
            .json(&json!({"reason": "next case"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    app.stop().await;
}

async fn vonage_digit_9_routes_notifies_and_is_not_counted(pg: bool) {
    let rest = MockServer::start().await;
    let hook = receiver().await;
    let extra = format!(
        "{URGENT_ON}\n{}\n{}",
        vonage_extra(&rest.uri()),
        notifications_to(&hook)
    );
    let Some((app, clock, schema)) = spawn(
        pg,
        "vonage_digit_9_routes_notifies_and_is_not_counted",
        &extra,
        wed_1030(),
    )
    .await
    else {
        return;
    };
    app.create_arrangement(tuesday_once(json!({}))).await;
    let said = vonage_offered(&vonage_call(&app, 1, wed_1030()).await);
    assert_eq!(said.last().unwrap().1, EN_OFFER);
    let call = vonage_uuid(1);
    wait_live_reason(&app, Provider::Vonage, &call, "outside_window").await;

    let ncco = vonage_signed(
        &app,
        VONAGE_URGENT,
        &vonage_input(1, "9", false),
        wed_1030(),
    )
    .await;
    assert_eq!(
        ncco,
        json!([{
            "action": "connect",
            "from": OUR_NUMBER,
            "endpoint": [{"type": "phone", "number": "447700900999"}],
            "timeout": 30,
            "eventType": "synchronous",
            "eventUrl": ["https://calls.example.org/webhooks/vonage/event"],
        }])
    );
    let entry = logged(&app, &call).await;
    assert_eq!(entry["outcome"], "route", "{entry}");
    assert_eq!(entry["reason"], "urgent_route", "{entry}");
    wait_live_reason(&app, Provider::Vonage, &call, "urgent_route").await;
    let got = wait_for_requests(&hook, 1).await;
    assert_eq!(got.len(), 1);
    urgent_notification(&got[0], "vonage", &call, "+447700900999");

    // Not counted: Tuesday's first call is admitted, the second refused for the allowance.
    clock.set(tue_1030());
    let ncco = vonage_call(&app, 2, tue_1030()).await;
    assert_eq!(ncco[0]["action"], "connect", "{ncco}");
    let said = vonage_offered(&vonage_call(&app, 3, tue_1030()).await);
    assert_eq!(said.last().unwrap().1, EN_OFFER);
    assert_eq!(
        logged(&app, &vonage_uuid(3)).await["reason"],
        "allowance_used"
    );
    finish(app, schema).await;
}

#[tokio::test]
async fn vonage_digit_9_routes_notifies_and_is_not_counted_sqlite() {
    vonage_digit_9_routes_notifies_and_is_not_counted(false).await;
}

#[tokio::test]
async fn vonage_digit_9_routes_notifies_and_is_not_counted_postgres() {
    vonage_digit_9_routes_notifies_and_is_not_counted(true).await;
}

#[tokio::test]
async fn vonage_other_digit_timeout_opt_out_and_signatures() {
    let rest = MockServer::start().await;
    let hook = receiver().await;
    let extra = format!(
        "{URGENT_ON}\n{}\n{}",
        vonage_extra(&rest.uri()),
        notifications_to(&hook)
    );
    let (app, _clock, _) = spawn(false, "", &extra, wed_1030()).await.unwrap();
    let created = app.create_arrangement(tuesday_once(json!({}))).await;
    vonage_offered(&vonage_call(&app, 1, wed_1030()).await);
    // Another key, or the 5 s running out: `[]` ends the call.
    for (digits, timed_out) in [("1", false), ("#", false), ("", true)] {
        let ncco = vonage_signed(
            &app,
            VONAGE_URGENT,
            &vonage_input(1, digits, timed_out),
            wed_1030(),
        )
        .await;
        assert_eq!(ncco, json!([]), "{digits:?}");
    }
    // Signatures: none, the wrong secret, a body that is not the one signed → 401.
    let body = vonage_input(1, "9", false);
    let (status, _) = vonage_post(&app, VONAGE_URGENT, &body, None).await;
    assert_eq!(status, 401);
    let wrong = vonage_token(
        body.to_string().as_bytes(),
        wed_1030(),
        "another-secret-0123456789",
    );
    let (status, _) = vonage_post(&app, VONAGE_URGENT, &body, Some(wrong)).await;
    assert_eq!(status, 401);
    let other = vonage_token(
        vonage_input(1, "1", false).to_string().as_bytes(),
        wed_1030(),
        VONAGE_SECRET,
    );
    let (status, _) = vonage_post(&app, VONAGE_URGENT, &body, Some(other)).await;
    assert_eq!(status, 401);
    let entry = logged(&app, &vonage_uuid(1)).await;
    assert_eq!(entry["reason"], "outside_window");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.received_requests().await.unwrap().is_empty());

    // `urgent_route: false` on the arrangement: only the refusal's talk.
    let id = created["id"].as_str().unwrap();
    let resp = app
        .manager(reqwest::Method::PUT, &format!("/api/v1/arrangements/{id}"))
        .header("if-match", format!("\"{}\"", created["version"]))
        .json(&tuesday_once(json!({"urgent_route": false})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["urgent_route"], false);
    // History keeps both versions of the field; GET shows the current one.
    let history: Value = app
        .manager(
            reqwest::Method::GET,
            &format!("/api/v1/arrangements/{id}/history"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let versions: Vec<&Value> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["arrangement"]["urgent_route"])
        .collect();
    assert_eq!(versions.len(), 2, "{history}");
    assert!(versions.contains(&&json!(true)) && versions.contains(&&json!(false)));
    let got: Value = app
        .manager(reqwest::Method::GET, &format!("/api/v1/arrangements/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["urgent_route"], false);
    // A value that is not true/false is a validation problem on the field.
    let resp = app
        .manager(reqwest::Method::POST, "/api/v1/arrangements")
        .json(&arrangement(
            "+442920999999",
            json!({"allowance": {"count": 1, "per": "day"}, "urgent_route": "no"}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "urgent_route", "{problem}");
    let ncco = vonage_call(&app, 2, wed_1030()).await;
    let actions = ncco.as_array().unwrap();
    assert_eq!(actions.len(), 1, "{ncco}");
    assert_eq!(actions[0]["action"], "talk");
    app.stop().await;
}

// --- Telnyx ------------------------------------------------------------------------------------

struct Telnyx {
    app: TestApp,
    clock: Arc<ManualClock>,
    rest: MockServer,
    key: ed25519_dalek::SigningKey,
    schema: Option<(String, String)>,
}

impl Telnyx {
    async fn start(pg: bool, test: &str, extra: &str) -> Option<Telnyx> {
        use base64::Engine;
        let rest = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"data": {"result": "ok"}})),
            )
            .mount(&rest)
            .await;
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let public =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
        let env = [
            ("FAIRLINE_TELNYX__API_BASE_URL".to_owned(), rest.uri()),
            (
                "FAIRLINE_TELNYX__VERIFY_SIGNATURES".to_owned(),
                "true".to_owned(),
            ),
            ("FAIRLINE_TELNYX__PUBLIC_KEY".to_owned(), public),
            ("FAIRLINE_TELNYX__API_KEY".to_owned(), "KEYtest".to_owned()),
        ];
        let (app, clock, schema) = spawn_env(pg, test, extra, &env, wed_1030()).await?;
        Some(Telnyx {
            app,
            clock,
            rest,
            key,
            schema,
        })
    }

    fn signed(&self, body: &str) -> (String, String) {
        use base64::Engine;
        use ed25519_dalek::Signer;
        use fairline::clock::Clock;
        let ts = self.clock.now().timestamp().to_string();
        let sig = base64::engine::general_purpose::STANDARD
            .encode(self.key.sign(format!("{ts}|{body}").as_bytes()).to_bytes());
        (ts, sig)
    }

    async fn post_with(&self, body: &str, ts: &str, sig: &str) -> u16 {
        self.app
            .client
            .post(format!("{}/webhooks/telnyx", self.app.url))
            .header("content-type", "application/json")
            .header("telnyx-signature-ed25519", sig)
            .header("telnyx-timestamp", ts)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn post(&self, body: &str) {
        let (ts, sig) = self.signed(body);
        assert_eq!(self.post_with(body, &ts, &sig).await, 200);
    }

    /// The commands sent so far (action, body).
    async fn commands(&self) -> Vec<(String, Value)> {
        self.rest
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path().contains("/actions/"))
            .map(|r| {
                (
                    r.url.path().rsplit('/').next().unwrap().to_owned(),
                    serde_json::from_slice(&r.body).unwrap(),
                )
            })
            .collect()
    }

    async fn wait_commands(&self, n: usize) -> Vec<(String, Value)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.commands().await;
            if got.len() >= n {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return self.commands().await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} commands, got {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Drive a refused call up to the gather: returns every text spoken (voice language,
    /// text), the last one being the gathered one, and the gather command's body.
    async fn refuse_to_gather(&self, call: &str) -> (Vec<(String, String)>, Value) {
        let before = self.commands().await.len();
        self.post(&telnyx_event(
            "call.initiated",
            &format!("{call}-init"),
            json!({"call_control_id": call, "direction": "incoming", "from": CALLER,
                   "to": "+442079460000", "state": "parked"}),
        ))
        .await;
        let cmds = self.wait_commands(before + 1).await;
        let (action, body) = cmds.last().unwrap().clone();
        assert_eq!(action, "answer", "{cmds:?}");
        let mut state = body["client_state"].as_str().unwrap().to_owned();
        self.post(&telnyx_event(
            "call.answered",
            &format!("{call}-answered"),
            json!({"call_control_id": call, "client_state": state}),
        ))
        .await;
        let mut said = Vec::new();
        for step in 0..10 {
            let cmds = self.wait_commands(before + 2 + step).await;
            let (action, body) = cmds.last().unwrap().clone();
            said.push((
                body["language"].as_str().unwrap().to_owned(),
                body["payload"].as_str().unwrap().to_owned(),
            ));
            match action.as_str() {
                "gather_using_speak" => return (said, body),
                "speak" => {
                    state = body["client_state"].as_str().unwrap().to_owned();
                    self.post(&telnyx_event(
                        "call.speak.ended",
                        &format!("{call}-spoken-{step}"),
                        json!({"call_control_id": call, "client_state": state,
                               "status": "completed"}),
                    ))
                    .await;
                }
                other => panic!("unexpected {other}: {cmds:?}"),
            }
        }
        panic!("no gather")
    }

    async fn gather_ended(&self, call: &str, gather: &Value, digits: &str, status: &str) {
        self.post(&telnyx_event(
            "call.gather.ended",
            &format!("{call}-gathered-{digits}-{status}"),
            json!({"call_control_id": call, "client_state": gather["client_state"],
                   "digits": digits, "status": status}),
        ))
        .await;
    }
}

fn telnyx_event(event_type: &str, id: &str, payload: Value) -> String {
    json!({
        "data": {"record_type": "event", "event_type": event_type, "id": id,
                 "occurred_at": "2026-12-02T10:30:00.000000Z", "payload": payload},
        "meta": {"attempt": 1, "delivered_to": "https://calls.example.org/webhooks/telnyx"}
    })
    .to_string()
}

#[tokio::test]
async fn telnyx_offer_is_spoken_in_english_welsh_and_both() {
    let t = Telnyx::start(false, "", URGENT_ON).await.unwrap();
    let cases = [
        ("en", vec![("en-GB", EN_OFFER)]),
        ("cy", vec![("cy-GB", CY_OFFER)]),
        ("cy+en", vec![("cy-GB", CY_OFFER), ("en-GB", EN_OFFER)]),
    ];
    for (i, (language, offer)) in cases.iter().enumerate() {
        let created = t
            .app
            .create_arrangement(tuesday_once(
                json!({"language": language, "starts_at": wed_1030().to_rfc3339()}),
            ))
            .await;
        let call = format!("v3:offer-{i}");
        let (said, gather) = t.refuse_to_gather(&call).await;
        assert_eq!(said.len(), offer.len() * 2, "{said:?}");
        let tail: Vec<(&str, &str)> = said[offer.len()..]
            .iter()
            .map(|(l, x)| (l.as_str(), x.as_str()))
            .collect();
        assert_eq!(&tail, offer);
        assert_eq!(gather["valid_digits"], "9");
        assert_eq!(gather["maximum_digits"], 1);
        assert_eq!(gather["timeout_millis"], 5000);
        let voice = if offer.last().unwrap().0 == "cy-GB" {
            "AWS.Polly.Gwyneth"
        } else {
            "AWS.Polly.Amy"
        };
        assert_eq!(gather["voice"], voice);
        let id = created["id"].as_str().unwrap();
        let resp = t
            .app
            .manager(
                reqwest::Method::POST,
                &format!("/api/v1/arrangements/{id}/revoke"),
            )
            .json(&json!({"reason": "next case"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    t.app.stop().await;
}

async fn telnyx_digit_9_routes_notifies_and_is_not_counted(pg: bool) {
    let hook = receiver().await;
    let extra = format!("{URGENT_ON}\n{}", notifications_to(&hook));
    let Some(t) = Telnyx::start(
        pg,
        "telnyx_digit_9_routes_notifies_and_is_not_counted",
        &extra,
    )
    .await
    else {
        return;
    };
    t.app.create_arrangement(tuesday_once(json!({}))).await;
    let call = "v3:urgent-1";
    let (said, gather) = t.refuse_to_gather(call).await;
    assert_eq!(said.last().unwrap().1, EN_OFFER);
    wait_live_reason(&t.app, Provider::Telnyx, call, "outside_window").await;

    let before = t.commands().await.len();
    t.gather_ended(call, &gather, "9", "valid").await;
    let cmds = t.wait_commands(before + 1).await;
    let (action, body) = cmds.last().unwrap();
    assert_eq!(action, "transfer");
    assert_eq!(body["to"], "sip:duty@pbx.example.org");
    let entry = logged(&t.app, call).await;
    assert_eq!(entry["outcome"], "route", "{entry}");
    assert_eq!(entry["reason"], "urgent_route", "{entry}");
    wait_live_reason(&t.app, Provider::Telnyx, call, "urgent_route").await;
    let got = wait_for_requests(&hook, 1).await;
    assert_eq!(got.len(), 1);
    urgent_notification(&got[0], "telnyx", call, "sip:duty@pbx.example.org");

    // Not counted: Tuesday's first call is transferred into the normal flow, the second refused.
    t.clock.set(tue_1030());
    let before = t.commands().await.len();
    t.post(&telnyx_event(
        "call.initiated",
        "normal-init",
        json!({"call_control_id": "v3:normal", "direction": "incoming", "from": CALLER,
               "to": "+442079460000", "state": "parked"}),
    ))
    .await;
    let cmds = t.wait_commands(before + 1).await;
    assert_eq!(cmds.last().unwrap().0, "transfer");
    assert_eq!(
        cmds.last().unwrap().1["to"],
        "sip:main-queue@pbx.example.org"
    );
    let (said, _) = t.refuse_to_gather("v3:again").await;
    assert_eq!(said.last().unwrap().1, EN_OFFER);
    assert_eq!(logged(&t.app, "v3:again").await["reason"], "allowance_used");
    t.app.stop().await;
    if let Some((url, schema)) = t.schema {
        let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
    }
}

#[tokio::test]
async fn telnyx_digit_9_routes_notifies_and_is_not_counted_sqlite() {
    telnyx_digit_9_routes_notifies_and_is_not_counted(false).await;
}

#[tokio::test]
async fn telnyx_digit_9_routes_notifies_and_is_not_counted_postgres() {
    telnyx_digit_9_routes_notifies_and_is_not_counted(true).await;
}

#[tokio::test]
async fn telnyx_other_digit_timeout_opt_out_and_signatures() {
    let hook = receiver().await;
    let extra = format!("{URGENT_ON}\n{}", notifications_to(&hook));
    let t = Telnyx::start(false, "", &extra).await.unwrap();
    let created = t.app.create_arrangement(tuesday_once(json!({}))).await;

    // A gather.ended with a bad signature: 403, nothing sent.
    let (_, gather) = t.refuse_to_gather("v3:sig").await;
    let before = t.commands().await.len();
    let body = telnyx_event(
        "call.gather.ended",
        "forged",
        json!({"call_control_id": "v3:sig", "client_state": gather["client_state"],
               "digits": "9", "status": "valid"}),
    );
    let (ts, _) = t.signed(&body);
    let (_, other_sig) = t.signed("something else");
    assert_eq!(t.post_with(&body, &ts, &other_sig).await, 403);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.commands().await.len(), before);
    assert_eq!(logged(&t.app, "v3:sig").await["reason"], "outside_window");

    // Another key, or the time running out: hangup.
    for (n, (digits, status)) in [("1", "invalid"), ("", "timeout")].iter().enumerate() {
        let call = format!("v3:no-{n}");
        let (_, gather) = t.refuse_to_gather(&call).await;
        let before = t.commands().await.len();
        t.gather_ended(&call, &gather, digits, status).await;
        let cmds = t.wait_commands(before + 1).await;
        assert_eq!(cmds.last().unwrap().0, "hangup", "{digits:?} {status}");
        assert_eq!(logged(&t.app, &call).await["reason"], "outside_window");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.received_requests().await.unwrap().is_empty());

    // `urgent_route: false`: the plain refusal (speak, then hangup), no gather.
    let id = created["id"].as_str().unwrap();
    let resp = t
        .app
        .manager(reqwest::Method::PUT, &format!("/api/v1/arrangements/{id}"))
        .header("if-match", format!("\"{}\"", created["version"]))
        .json(&tuesday_once(json!({"urgent_route": false})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let before = t.commands().await.len();
    t.post(&telnyx_event(
        "call.initiated",
        "plain-init",
        json!({"call_control_id": "v3:plain", "direction": "incoming", "from": CALLER,
               "to": "+442079460000", "state": "parked"}),
    ))
    .await;
    let cmds = t.wait_commands(before + 1).await;
    let state = cmds.last().unwrap().1["client_state"]
        .as_str()
        .unwrap()
        .to_owned();
    t.post(&telnyx_event(
        "call.answered",
        "plain-answered",
        json!({"call_control_id": "v3:plain", "client_state": state}),
    ))
    .await;
    let cmds = t.wait_commands(before + 2).await;
    assert_eq!(cmds.last().unwrap().0, "speak");
    let state = cmds.last().unwrap().1["client_state"]
        .as_str()
        .unwrap()
        .to_owned();
    t.post(&telnyx_event(
        "call.speak.ended",
        "plain-spoken",
        json!({"call_control_id": "v3:plain", "client_state": state, "status": "completed"}),
    ))
    .await;
    let cmds = t.wait_commands(before + 3).await;
    assert_eq!(cmds.last().unwrap().0, "hangup");
    assert!(cmds[before..]
        .iter()
        .all(|(a, _)| a != "gather_using_speak"));
    t.app.stop().await;
}

#[tokio::test]
async fn another_digit_and_overridden_texts() {
    let extra = r##"
[decision.urgent]
digit = "#"
twilio = "+447700900999"
telnyx = "+447700900999"

[messages.cy]
urgent_offer = "Os oes angen help ar frys, pwyswch {digit} i siarad â {organisation}."
"##;
    let (app, _clock, _) = spawn(false, "", extra, wed_1030()).await.unwrap();
    app.create_arrangement(tuesday_once(json!({"language": "en+cy"})))
        .await;
    let eval = evaluate(&app, wed_1030()).await;
    let said = texts(&eval["messages"]);
    assert_eq!(said.len(), 4, "{said:?}");
    assert_eq!(
        said[2],
        (
            "en".to_owned(),
            "If someone is at risk of harm, press the hash key now to speak to the duty manager."
                .to_owned()
        )
    );
    assert_eq!(
        said[3],
        (
            "cy".to_owned(),
            "Os oes angen help ar frys, pwyswch y botwm hash i siarad â Test Ombudsman.".to_owned()
        )
    );
    // The same texts are spoken, and "#" is the key that routes.
    let call = sid(1);
    let spoken = offered(&twilio_call(&app, &call).await);
    assert_eq!(spoken.len(), 4);
    assert_eq!(spoken[3].1, said[3].1);
    assert!(is_hangup(&twilio_press(&app, &call, "9").await));
    let xml = twilio_press(&app, &call, "#").await;
    let v = verbs(&xml);
    assert_eq!(v[0].0, "Dial", "{xml}");
    assert_eq!(v[0].2[0].0, "Number");
    assert_eq!(v[0].2[0].2, "+447700900999");
    app.stop().await;
}

#[tokio::test]
async fn check_config_names_missing_and_bad_urgent_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("f.db").display());
    let toml = test_toml(
        &url,
        "[decision.urgent]\nenabled = true\ndigit = \"10\"\ntwilio = \"alice\"\n",
    );
    let problems = match fairline::config::from_sources(&toml, &[]) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.problems(),
    };
    let text = problems.join("\n");
    assert!(text.contains("decision.urgent.digit"), "{text}");
    assert!(text.contains("decision.urgent.twilio"), "{text}");
    // Telnyx is on in the test configuration, so its target is required; Vonage is off.
    assert!(text.contains("decision.urgent.telnyx"), "{text}");
    assert!(!text.contains("decision.urgent.vonage"), "{text}");
}

#[tokio::test]
async fn the_console_says_it_in_plain_words() {
    use fairline::console::words;
    use fairline::engine::{Outcome, Reason};
    let (app, _clock, _) = spawn(false, "", URGENT_ON, wed_1030()).await.unwrap();
    let on = app.create_arrangement(tuesday_once(json!({}))).await;
    let id = fairline::domain::ArrangementId::parse(on["id"].as_str().unwrap()).unwrap();
    let a = app.state.store.get_arrangement(&id).await.unwrap().unwrap();
    assert!(a.urgent_route);
    let cfg = &app.state.config;
    assert!(
        words::arrangement_rules(cfg, &a)
            .ends_with("A refused caller is offered the safeguarding route to the duty manager."),
        "{}",
        words::arrangement_rules(cfg, &a)
    );
    let mut off = a.clone();
    off.urgent_route = false;
    assert!(words::arrangement_rules(cfg, &off)
        .ends_with("A refused caller is not offered the safeguarding route."));
    assert_eq!(
        words::decision(cfg, Outcome::Route, Reason::UrgentRoute, None),
        "Put through to the duty manager: the caller pressed the safeguarding key after a refusal"
    );
    app.stop().await;

    // With the route switched off nothing is said about it.
    let (app, _clock, _) = spawn(false, "", "", wed_1030()).await.unwrap();
    assert!(!words::arrangement_rules(&app.state.config, &a).contains("safeguarding"));
    app.stop().await;
}
