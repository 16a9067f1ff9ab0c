//! The Vonage Voice API end to end (SPEC §11, §15): the answer and event webhooks through the
//! real server on port 0, signed like Vonage signs them, and the end-call path against a fake
//! Vonage REST API (wiremock) that checks the RS256 application JWT with the public key.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use fairline::clock::ManualClock;
use fairline::config::Secret;
use fairline::providers::vonage;
use fairline::state::Overrides;
use reqwest::Method;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::app::{arrangement, TestApp};

const SECRET: &str = "test-vonage-signature-secret-0123456789";
const APP_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
const PRIVATE_KEY: &str = include_str!("../../fixtures/vonage/test-application-private-key.pem");
const PUBLIC_KEY: &str = include_str!("../../fixtures/vonage/test-application-public-key.pem");
const VECTORS: &str = include_str!("../../fixtures/vonage/vectors.json");

const ANSWER: &str = "/webhooks/vonage/answer";
const EVENT: &str = "/webhooks/vonage/event";
const PUBLIC_URL: &str = "https://calls.example.org";
/// Our virtual number, as Vonage sends it (no `+`).
const OUR_NUMBER: &str = "442079460000";
const CONTINUE_TO: &str = "sip:main-queue@pbx.example.org";

/// Tuesday 1 December 2026, 10:30 in London (GMT): the injected clock.
fn tue_1030() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 30, 0).unwrap()
}

fn uuid(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

/// `[vonage]` and three members of staff with Vonage endpoints, one of each kind.
fn extra(api_base: &str) -> String {
    format!(
        r#"
[vonage]
application_id = "{APP_ID}"
private_key = '''
{PRIVATE_KEY}'''
signature_secret = "{SECRET}"
api_base_url = "{api_base}"
continue_to = "{CONTINUE_TO}"

[[staff]]
id = "carol"
name = "Carol Hughes"
vonage = "app:carol"

[[staff]]
id = "dave"
name = "Dave Price"
vonage = "sip:dave@pbx.example.org"

[[staff]]
id = "erin"
name = "Erin Lloyd"
vonage = "+442079460998"
"#
    )
}

async fn spawn_sqlite(api_base: &str) -> TestApp {
    TestApp::spawn_with(
        &extra(api_base),
        Overrides {
            clock: Some(Arc::new(ManualClock::new(tue_1030()))),
            ..Overrides::default()
        },
    )
    .await
}

async fn spawn_pg(url: &str, schema: &str, api_base: &str) -> TestApp {
    TestApp::spawn_pg(
        url,
        schema,
        &extra(api_base),
        Overrides {
            clock: Some(Arc::new(ManualClock::new(tue_1030()))),
            ..Overrides::default()
        },
    )
    .await
    .unwrap()
}

/// A webhook JWT as Vonage makes it, over `payload`, issued at `iat`, signed with `secret`.
fn token(payload: &[u8], iat: DateTime<Utc>, secret: &str) -> String {
    vonage::sign(
        &vonage::WebhookClaims {
            iat: iat.timestamp(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            iss: Some("Vonage".into()),
            payload_hash: Some(vonage::payload_hash(payload)),
            api_key: Some("abcd1234".into()),
            application_id: Some(APP_ID.into()),
            exp: None,
        },
        &Secret::new(secret),
    )
    .unwrap()
}

struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

impl Answer {
    fn ncco(&self) -> Value {
        assert_eq!(self.status, 200, "body: {}", self.body);
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        serde_json::from_str(&self.body).unwrap()
    }
}

async fn answer_of(resp: reqwest::Response) -> Answer {
    Answer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: resp.text().await.unwrap(),
    }
}

async fn post_raw(app: &TestApp, path: &str, body: &str, auth: Option<String>) -> Answer {
    let mut req = app
        .client
        .post(format!("{}{path}", app.url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    answer_of(req.send().await.unwrap()).await
}

async fn get_raw(app: &TestApp, query: &str, auth: Option<String>) -> Answer {
    let mut req = app.client.get(format!("{}{ANSWER}?{query}", app.url));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    answer_of(req.send().await.unwrap()).await
}

/// POST `body`, signed now (by the injected clock).
async fn post_signed(app: &TestApp, path: &str, body: &Value) -> Answer {
    let text = body.to_string();
    let auth = format!("Bearer {}", token(text.as_bytes(), tue_1030(), SECRET));
    post_raw(app, path, &text, Some(auth)).await
}

fn answer_body(from: &str, call: &str) -> Value {
    json!({
        "from": from, "to": OUR_NUMBER, "uuid": call,
        "conversation_uuid": format!("CON-{call}"),
        "region_url": "https://api-eu-1.vonage.com"
    })
}

/// An incoming call by POST; the NCCO.
async fn call(app: &TestApp, from: &str, call: &str) -> Value {
    post_signed(app, ANSWER, &answer_body(from, call))
        .await
        .ncco()
}

fn continue_ncco() -> Value {
    json!([{"action": "connect", "from": OUR_NUMBER,
            "endpoint": [{"type": "sip", "uri": CONTINUE_TO}]}])
}

async fn decisions(app: &TestApp, phone: &str) -> Vec<Value> {
    let resp = app
        .manager(
            Method::GET,
            &format!("/api/v1/decisions?phone={}", phone.replace('+', "%2B")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

/// The talk actions of a refusal: (language, text).
fn talks(ncco: &Value) -> Vec<(String, String)> {
    ncco.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["action"], "talk", "{ncco}");
            (
                a["language"].as_str().unwrap().to_owned(),
                a["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Decisions (both backends)
// ---------------------------------------------------------------------------------------------

/// Every decision path, and the event webhook, against one running server.
async fn decision_paths(app: &TestApp) {
    // Continue: no arrangement (not logged), by POST and by GET.
    assert_eq!(call(app, "447700900001", &uuid(1)).await, continue_ncco());
    let query = format!(
        "to={OUR_NUMBER}&from=447700900001&uuid={}&conversation_uuid=CON-2",
        uuid(2)
    );
    let json = vonage::query_json(&vonage::query_pairs(&query));
    let auth = format!("Bearer {}", token(json.as_bytes(), tue_1030(), SECRET));
    assert_eq!(
        get_raw(app, &query, Some(auth)).await.ncco(),
        continue_ncco()
    );
    // A withheld caller continues too.
    assert_eq!(call(app, "anonymous", &uuid(3)).await, continue_ncco());

    // Route, with `limit` from max_call_minutes, to each endpoint kind.
    let cases = [
        (
            "+447700900011",
            "carol",
            json!({"type": "app", "user": "carol"}),
        ),
        (
            "+447700900012",
            "dave",
            json!({"type": "sip", "uri": "sip:dave@pbx.example.org"}),
        ),
        (
            "+447700900013",
            "erin",
            json!({"type": "phone", "number": "442079460998"}),
        ),
    ];
    for (i, (number, staff, endpoint)) in cases.iter().enumerate() {
        app.create_arrangement(arrangement(
            number,
            json!({"designated_staff": [staff], "max_call_minutes": 20}),
        ))
        .await;
        let id = uuid(10 + u32::try_from(i).unwrap());
        let ncco = call(app, number.trim_start_matches('+'), &id).await;
        assert_eq!(
            ncco,
            json!([{"action": "connect", "from": OUR_NUMBER, "timeout": 30, "limit": 1200,
                    "eventType": "synchronous",
                    "eventUrl": [format!("{PUBLIC_URL}{EVENT}")],
                    "endpoint": [endpoint]}]),
            "{staff}"
        );
        let logged = decisions(app, number).await;
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert_eq!(logged[0]["provider"], "vonage");
        assert_eq!(logged[0]["call_id"], id.as_str());
        assert_eq!(logged[0]["outcome"], "route");
    }

    // The member of staff did not answer: the synchronous event speaks staff_unavailable, in
    // the caller's language, found through the conversation.
    let welsh = "+447700900014";
    app.create_arrangement(arrangement(
        welsh,
        json!({"designated_staff": ["carol"], "language": "cy"}),
    ))
    .await;
    call(app, welsh.trim_start_matches('+'), &uuid(14)).await;
    for status in ["unanswered", "busy", "failed", "timeout"] {
        let leg = post_signed(
            app,
            EVENT,
            &json!({"uuid": uuid(15), "conversation_uuid": format!("CON-{}", uuid(14)),
                    "status": status, "direction": "outbound", "from": OUR_NUMBER,
                    "to": "carol", "timestamp": "2026-12-01T10:30:20.000Z"}),
        )
        .await;
        let spoken = talks(&leg.ncco());
        assert_eq!(spoken.len(), 1, "{status}");
        assert_eq!(spoken[0].0, "cy-GB", "{status}");
    }
    // Not answered, conversation unknown: the organisation's language (en).
    let unknown = post_signed(
        app,
        EVENT,
        &json!({"uuid": uuid(16), "conversation_uuid": "CON-unknown", "status": "timeout",
                "direction": "outbound"}),
    )
    .await;
    let spoken = talks(&unknown.ncco());
    assert_eq!(spoken[0].0, "en-GB");
    assert!(!spoken[0].1.is_empty());
    // Answered by staff, or the caller's own leg ringing: nothing to say.
    for ev in [
        json!({"uuid": uuid(15), "status": "answered", "direction": "outbound"}),
        json!({"uuid": uuid(14), "status": "ringing", "direction": "inbound"}),
        json!({"uuid": uuid(14), "type": "transfer"}),
    ] {
        assert_eq!(post_signed(app, EVENT, &ev).await.status, 204, "{ev}");
    }

    // Refusals: outside the window (Wednesdays only; the clock says Tuesday), in en, cy and
    // both, in the arrangement's order.
    for (i, (language, expected)) in [
        ("en", vec!["en-GB"]),
        ("cy", vec!["cy-GB"]),
        ("cy+en", vec!["cy-GB", "en-GB"]),
        ("en+cy", vec!["en-GB", "cy-GB"]),
    ]
    .into_iter()
    .enumerate()
    {
        let number = format!("+4477009000{}", 20 + i);
        app.create_arrangement(arrangement(
            &number,
            json!({"windows": [{"days": ["wed"], "start": "10:00", "end": "12:00"}],
                   "language": language}),
        ))
        .await;
        let ncco = call(
            app,
            number.trim_start_matches('+'),
            &uuid(20 + u32::try_from(i).unwrap()),
        )
        .await;
        let spoken = talks(&ncco);
        let langs: Vec<&str> = spoken.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(langs, expected, "{language}");
        assert!(spoken.iter().all(|(_, t)| !t.is_empty()));
        assert_eq!(decisions(app, &number).await[0]["reason"], "outside_window");
    }

    // A block, with refuse_blocked_with = "reject": Vonage cannot reject before answer, `[]`.
    let blocked = "+447700900030";
    app.create_arrangement(arrangement(blocked, json!({"kind": "blocked"})))
        .await;
    assert_eq!(call(app, "447700900030", &uuid(30)).await, json!([]));
    assert_eq!(decisions(app, blocked).await[0]["reason"], "blocked");

    // A webhook retried for the same call is the same call: same answer, logged once.
    let again = call(app, "447700900011", &uuid(10)).await;
    assert_eq!(again[0]["endpoint"][0]["user"], "carol");
    assert_eq!(decisions(app, "+447700900011").await.len(), 1);

    // The event webhook records the final status and duration of a logged call.
    let done = post_signed(
        app,
        EVENT,
        &json!({"uuid": uuid(10), "conversation_uuid": format!("CON-{}", uuid(10)),
                "status": "completed", "direction": "inbound", "duration": "42",
                "from": "447700900011", "to": OUR_NUMBER}),
    )
    .await;
    assert_eq!(done.status, 204);
    let logged = decisions(app, "+447700900011").await;
    assert_eq!(logged[0]["final_status"], "completed");
    assert_eq!(logged[0]["duration_seconds"], 42);
    // A call that was not logged: 204 and nothing stored.
    let unlogged = post_signed(
        app,
        EVENT,
        &json!({"uuid": uuid(1), "status": "completed", "direction": "inbound", "duration": "7"}),
    )
    .await;
    assert_eq!(unlogged.status, 204);
}

#[tokio::test]
async fn decision_paths_sqlite() {
    let app = spawn_sqlite("https://api.nexmo.com").await;
    decision_paths(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn decision_paths_postgres() {
    let Some((url, schema)) = crate::support::pg_schema("vonage::decision_paths_postgres") else {
        return;
    };
    let app = spawn_pg(&url, &schema, "https://api.nexmo.com").await;
    decision_paths(&app).await;
    app.stop().await;
    let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn signature_failures_answer_401_and_record_nothing() {
    let app = spawn_sqlite("https://api.nexmo.com").await;
    let number = "+447700900040";
    app.create_arrangement(arrangement(number, json!({"designated_staff": ["carol"]})))
        .await;
    let body = answer_body("447700900040", &uuid(40)).to_string();
    let now = tue_1030();
    let bearer = |t: String| Some(format!("Bearer {t}"));

    let cases: Vec<(&str, Option<String>, String)> = vec![
        ("no header", None, body.clone()),
        (
            "not bearer",
            Some("Basic dXNlcjpwYXNz".into()),
            body.clone(),
        ),
        ("garbage", bearer("not-a-jwt".into()), body.clone()),
        (
            "bad key",
            bearer(token(body.as_bytes(), now, "some-other-secret")),
            body.clone(),
        ),
        (
            "stale iat",
            bearer(token(
                body.as_bytes(),
                now - chrono::Duration::seconds(301),
                SECRET,
            )),
            body.clone(),
        ),
        (
            "iat from the future",
            bearer(token(
                body.as_bytes(),
                now + chrono::Duration::seconds(301),
                SECRET,
            )),
            body.clone(),
        ),
        (
            "tampered body",
            bearer(token(body.as_bytes(), now, SECRET)),
            body.replace("447700900040", "447700900041"),
        ),
    ];
    for (why, auth, payload) in cases {
        for path in [ANSWER, EVENT] {
            let a = post_raw(&app, path, &payload, auth.clone()).await;
            assert_eq!(a.status, 401, "{why} {path}");
            assert!(a.body.is_empty(), "{why}");
        }
    }
    // GET: the query as signed, but reordered on the way.
    let query = format!(
        "to={OUR_NUMBER}&from=447700900040&uuid={}&conversation_uuid=CON-40",
        uuid(40)
    );
    let json = vonage::query_json(&vonage::query_pairs(&query));
    let auth = format!("Bearer {}", token(json.as_bytes(), now, SECRET));
    let reordered = format!(
        "from=447700900040&to={OUR_NUMBER}&uuid={}&conversation_uuid=CON-40",
        uuid(40)
    );
    assert_eq!(
        get_raw(&app, &reordered, Some(auth.clone())).await.status,
        401
    );
    assert!(decisions(&app, number).await.is_empty(), "nothing recorded");

    // Within the window either way, the same request is accepted (and only then recorded).
    let late = format!(
        "Bearer {}",
        token(
            json.as_bytes(),
            now - chrono::Duration::seconds(299),
            SECRET
        )
    );
    let ncco = get_raw(&app, &query, Some(late)).await.ncco();
    assert_eq!(ncco[0]["endpoint"][0]["user"], "carol");
    assert_eq!(decisions(&app, number).await.len(), 1);
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
        metrics.contains(r#"fairline_webhook_rejected_total{provider="vonage",status="401"}"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn signatures_can_be_switched_off_for_development() {
    let app = TestApp::spawn_with(
        &extra("https://api.nexmo.com")
            .replace("[vonage]\n", "[vonage]\nverify_signatures = false\n"),
        Overrides::default(),
    )
    .await;
    let body = answer_body("447700900050", &uuid(50)).to_string();
    assert_eq!(
        post_raw(&app, ANSWER, &body, None).await.ncco(),
        continue_ncco()
    );
    app.stop().await;
}

/// Vectors made by PyJWT (fixtures/vonage/make_vectors.py), checked against Fairline's
/// verifier at their pinned instant.
#[test]
fn independent_pyjwt_vectors_verify_and_their_negatives_do_not() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let secret = Secret::new(v["secret"].as_str().unwrap());
    let at = Utc.timestamp_opt(v["iat"].as_i64().unwrap(), 0).unwrap();
    let bearer = |t: &Value| format!("Bearer {}", t.as_str().unwrap());
    for p in v["post"].as_array().unwrap() {
        let body = p["body"].as_str().unwrap();
        assert_eq!(vonage::payload_hash(body.as_bytes()), p["payload_hash"]);
        vonage::UnverifiedRequest::post(Some(&bearer(&p["token"])), body.to_owned().into())
            .verify(&secret, at)
            .unwrap();
    }
    for g in v["get"].as_array().unwrap() {
        let query = g["query"].as_str().unwrap();
        assert_eq!(
            vonage::query_json(&vonage::query_pairs(query)),
            g["hashed_json"].as_str().unwrap()
        );
        vonage::UnverifiedRequest::get(Some(&bearer(&g["token"])), query)
            .verify(&secret, at)
            .unwrap();
    }
    for bad in v["invalid"].as_array().unwrap() {
        let payload = bad["payload"].as_str().unwrap();
        let req = match bad["method"].as_str().unwrap() {
            "GET" => vonage::UnverifiedRequest::get(Some(&bearer(&bad["token"])), payload),
            _ => vonage::UnverifiedRequest::post(
                Some(&bearer(&bad["token"])),
                payload.to_owned().into(),
            ),
        };
        assert!(req.verify(&secret, at).is_err(), "{}", bad["why"]);
    }
    // PyJWT's RS256 application JWT verifies with the test public key through jsonwebtoken.
    let app_jwt = &v["application_jwt"];
    let claims = decode_application_jwt(app_jwt["token"].as_str().unwrap(), false).unwrap();
    assert_eq!(json!(claims), app_jwt["claims"]);
}

// ---------------------------------------------------------------------------------------------
// Ending a call through the fake Vonage REST API
// ---------------------------------------------------------------------------------------------

/// Decode an application JWT with the test public key (RS256 only).
fn decode_application_jwt(token: &str, check_exp: bool) -> Option<vonage::ApplicationClaims> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = check_exp;
    validation.required_spec_claims = ["exp", "iat"].iter().map(|s| s.to_string()).collect();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).ok()?;
    jsonwebtoken::decode::<vonage::ApplicationClaims>(token, &key, &validation)
        .ok()
        .map(|d| d.claims)
}

/// Matches only requests carrying a valid application JWT for our application.
struct ApplicationJwt;

impl wiremock::Match for ApplicationJwt {
    fn matches(&self, req: &Request) -> bool {
        let Some(token) = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let Some(claims) = decode_application_jwt(token, true) else {
            return false;
        };
        let now = Utc::now().timestamp();
        claims.application_id == APP_ID
            && uuid::Uuid::parse_str(&claims.jti).is_ok()
            && (claims.iat - now).abs() <= 60
            && claims.exp > claims.iat
            && claims.exp - claims.iat <= 24 * 3600
    }
}

fn call_path(call: &str) -> String {
    format!("/v1/calls/{call}")
}

async fn mount_lookup(server: &MockServer, call: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(call_path(call)))
        .and(ApplicationJwt)
        .respond_with(answer)
        .mount(server)
        .await;
}

async fn mount_hangup(server: &MockServer, call: &str, answer: ResponseTemplate) {
    Mock::given(method("PUT"))
        .and(path(call_path(call)))
        .and(body_json(json!({"action": "hangup"})))
        .and(ApplicationJwt)
        .respond_with(answer)
        .mount(server)
        .await;
}

fn call_resource(call: &str, status: &str) -> Value {
    json!({
        "uuid": call, "conversation_uuid": format!("CON-{call}"),
        "to": {"type": "phone", "number": OUR_NUMBER},
        "from": {"type": "phone", "number": "447700900060"},
        "status": status, "direction": "inbound", "rate": "0.00400000",
        "start_time": "2026-12-01T10:29:00.000Z", "network": "23410"
    })
}

async fn press(app: &TestApp, call: &str) -> (u16, Value) {
    let resp = app
        .agent(
            Method::POST,
            &format!("/api/v1/calls/vonage/{call}/terminate"),
        )
        .json(&json!({"reason": "abusive", "warning_given": true, "notes": "shouting"}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn hangups(requests: &[Request]) -> usize {
    requests
        .iter()
        .filter(|r| r.method.as_str() == "PUT")
        .count()
}

async fn end_call_paths(app: &TestApp, fake: &MockServer) {
    // Hung up: the caller comes from the lookup (digits without '+', made E.164), and the
    // arrangement in force is attached.
    let caller = "+447700900060";
    let arr = app
        .create_arrangement(arrangement(caller, json!({"designated_staff": ["carol"]})))
        .await;
    let live = uuid(60);
    mount_lookup(
        fake,
        &live,
        ResponseTemplate::new(200).set_body_json(call_resource(&live, "answered")),
    )
    .await;
    mount_hangup(fake, &live, ResponseTemplate::new(204)).await;
    let (status, rec) = press(app, &live).await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["provider"], "vonage");
    assert_eq!(rec["call_id"], live.as_str());
    assert_eq!(rec["caller"], caller);
    assert_eq!(rec["arrangement_id"], arr["id"]);
    assert_eq!(rec["hangup"]["result"], "completed", "{rec}");
    // Pressed again: the same record, no second hang-up.
    let before = hangups(&fake.received_requests().await.unwrap());
    let (again, rec2) = press(app, &live).await;
    assert_eq!(again, 200);
    assert_eq!(rec2["id"], rec["id"]);
    assert_eq!(hangups(&fake.received_requests().await.unwrap()), before);

    // Already ended: Vonage answers 404.
    let gone = uuid(61);
    mount_lookup(fake, &gone, ResponseTemplate::new(404)).await;
    mount_hangup(fake, &gone, ResponseTemplate::new(404)).await;
    let (status, rec) = press(app, &gone).await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["hangup"]["result"], "already_ended");
    assert_eq!(rec["caller"], Value::Null);

    // Already ended: the hang-up is refused and the call is `completed`.
    let over = uuid(62);
    mount_lookup(
        fake,
        &over,
        ResponseTemplate::new(200).set_body_json(call_resource(&over, "completed")),
    )
    .await;
    mount_hangup(
        fake,
        &over,
        ResponseTemplate::new(400)
            .set_body_json(json!({"title": "Bad Request", "detail": "call is completed"})),
    )
    .await;
    let (status, rec) = press(app, &over).await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["hangup"]["result"], "already_ended");
    assert_eq!(rec["caller"], caller);

    // The lookup fails (5xx on every attempt): still hung up, caller unknown.
    let blind = uuid(63);
    mount_lookup(fake, &blind, ResponseTemplate::new(503)).await;
    mount_hangup(fake, &blind, ResponseTemplate::new(204)).await;
    let (status, rec) = press(app, &blind).await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["hangup"]["result"], "completed");
    assert_eq!(rec["caller"], Value::Null);

    // Vonage cannot be reached for the hang-up: recorded as failed, 502.
    let down = uuid(64);
    mount_lookup(fake, &down, ResponseTemplate::new(503)).await;
    mount_hangup(fake, &down, ResponseTemplate::new(503)).await;
    let (status, rec) = press(app, &down).await;
    assert_eq!(status, 502, "{rec}");
    assert_eq!(rec["hangup"]["result"], "failed");

    // Every request to the fake carried a valid application JWT (unmatched ones would 404).
    for r in fake.received_requests().await.unwrap() {
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        let claims = decode_application_jwt(auth.strip_prefix("Bearer ").unwrap(), true).unwrap();
        assert_eq!(claims.application_id, APP_ID);
    }
}

#[tokio::test]
async fn end_call_sqlite() {
    let fake = MockServer::start().await;
    let app = spawn_sqlite(&fake.uri()).await;
    end_call_paths(&app, &fake).await;
    app.stop().await;
}

#[tokio::test]
async fn end_call_postgres() {
    let Some((url, schema)) = crate::support::pg_schema("vonage::end_call_postgres") else {
        return;
    };
    let fake = MockServer::start().await;
    let app = spawn_pg(&url, &schema, &fake.uri()).await;
    end_call_paths(&app, &fake).await;
    app.stop().await;
    let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
}

// ---------------------------------------------------------------------------------------------
// Configuration and the `enabled` switch
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_disabled_vonage_answers_404_everywhere() {
    // No [vonage] section at all: disabled, no key needed.
    let app = TestApp::spawn("").await;
    assert!(!app.state.config.vonage.enabled);
    let body = answer_body("447700900070", &uuid(70)).to_string();
    let auth = Some(format!(
        "Bearer {}",
        token(body.as_bytes(), Utc::now(), SECRET)
    ));
    assert_eq!(
        post_raw(&app, ANSWER, &body, auth.clone()).await.status,
        404
    );
    assert_eq!(get_raw(&app, "from=1&to=2&uuid=3", None).await.status, 404);
    assert_eq!(post_raw(&app, EVENT, &body, auth).await.status, 404);
    let (status, _) = press(&app, &uuid(70)).await;
    assert_eq!(status, 404);
    app.stop().await;

    // `enabled = false` with nothing else: also fine.
    let cfg = fairline::config::from_sources(
        &crate::app::test_toml("sqlite://unused.db", "[vonage]\nenabled = false\n"),
        &[],
    )
    .unwrap();
    assert!(!cfg.vonage.enabled);
}

#[test]
fn vonage_config_is_validated_and_listed_without_secrets() {
    let toml = |extra: &str| crate::app::test_toml("sqlite://unused.db", extra);
    // Present → enabled; everything required is reported at once.
    let problems = fairline::config::from_sources(&toml("[vonage]\n"), &[])
        .unwrap_err()
        .problems()
        .join("\n");
    for key in [
        "vonage.application_id",
        "vonage.private_key",
        "vonage.signature_secret",
        "vonage.continue_to",
    ] {
        assert!(problems.contains(key), "{key} in {problems}");
    }
    let problems = fairline::config::from_sources(
        &toml(
            "[vonage]\napplication_id = \"x\"\nprivate_key = \"not a key\"\nsignature_secret = \"s\"\n\
             continue_to = \"442079460000\"\ncolour = \"red\"\n\n[[staff]]\nid = \"zed\"\nname = \"Z\"\nvonage = \"client:zed\"\n",
        ),
        &[],
    )
    .unwrap_err()
    .problems()
    .join("\n");
    for key in [
        "vonage.private_key",
        "vonage.continue_to",
        "vonage.colour",
        "staff[2].vonage",
    ] {
        assert!(problems.contains(key), "{key} in {problems}");
    }
    assert!(!problems.contains("not a key"));

    // A good section; the key may come from the environment with literal \n.
    let escaped = PRIVATE_KEY.trim_end().replace('\n', "\\n");
    let cfg = fairline::config::from_sources(
        &toml(
            &extra("https://api.nexmo.com")
                .replace(&format!("private_key = '''\n{PRIVATE_KEY}'''\n"), ""),
        ),
        &[("FAIRLINE_VONAGE__PRIVATE_KEY".into(), escaped)],
    )
    .unwrap();
    assert!(cfg.vonage.enabled);
    let summary = cfg.summary();
    assert!(summary.contains("vonage.enabled"), "{summary}");
    assert!(summary.contains(APP_ID));
    assert!(summary.contains("staff.carol.vonage"));
    assert!(!summary.contains(SECRET));
    assert!(!summary.contains("PRIVATE KEY"));
    assert!(!format!("{cfg:?}").contains(SECRET));
    assert!(!format!("{cfg:?}").contains("PRIVATE KEY"));
}

#[tokio::test]
async fn check_config_lists_vonage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fairline.toml");
    std::fs::write(
        &path,
        crate::app::test_toml(
            &format!("sqlite://{}", dir.path().join("f.db").display()),
            &extra("https://api.nexmo.com"),
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fairline"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("vonage.enabled"), "{text}");
    assert!(text.contains("vonage.continue_to"), "{text}");
    assert!(!text.contains(SECRET));
    assert!(!text.contains("BEGIN"));
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

/// The real binary with JSON debug logs through a Vonage session (GET and POST answers, events,
/// a forged request, an end-call): no caller digits, secret, key or JWT appears in its logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vonage_session_logs_no_numbers_secrets_or_tokens() {
    let fake = MockServer::start().await;
    let ended = uuid(81);
    mount_lookup(
        &fake,
        &ended,
        ResponseTemplate::new(200).set_body_json(call_resource(&ended, "answered")),
    )
    .await;
    mount_hangup(&fake, &ended, ResponseTemplate::new(204)).await;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fairline.log");
    let toml = crate::app::test_toml(
        &format!("sqlite://{}", dir.path().join("f.db").display()),
        &extra(&fake.uri()),
    );
    let mut server = crate::procs::Server::start(
        dir.path(),
        "vonage-logs",
        &toml,
        &[("FAIRLINE_LOG_FORMAT", "json"), ("RUST_LOG", "debug")],
        Some(&log),
    )
    .await;
    let client = reqwest::Client::new();
    let base = server.url.clone();
    for (number, extra) in [
        ("+447700900081", json!({"designated_staff": ["carol"]})),
        ("+447700900082", json!({"kind": "blocked"})),
    ] {
        let r = client
            .post(format!("{base}/api/v1/arrangements"))
            .bearer_auth(crate::app::MANAGER_TOKEN)
            .json(&arrangement(number, extra))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let mut tokens = Vec::new();
    let now = Utc::now();
    for (i, from) in ["447700900081", "447700900082", "447700900083"]
        .iter()
        .enumerate()
    {
        let body = answer_body(from, &uuid(80 + u32::try_from(i).unwrap())).to_string();
        let t = token(body.as_bytes(), now, SECRET);
        let r = client
            .post(format!("{base}{ANSWER}"))
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        tokens.push(t);
    }
    let query = format!("to={OUR_NUMBER}&from=447700900084&uuid={}", uuid(84));
    let t = token(
        vonage::query_json(&vonage::query_pairs(&query)).as_bytes(),
        now,
        SECRET,
    );
    let r = client
        .get(format!("{base}{ANSWER}?{query}"))
        .header("authorization", format!("Bearer {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokens.push(t);
    let forged = token(b"{}", now, "forged-secret");
    let r = client
        .post(format!("{base}{EVENT}"))
        .header("authorization", format!("Bearer {forged}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    tokens.push(forged);
    let event = json!({"uuid": uuid(80), "status": "completed", "duration": "12",
                       "direction": "inbound", "from": "447700900081", "to": OUR_NUMBER})
    .to_string();
    let t = token(event.as_bytes(), now, SECRET);
    let r = client
        .post(format!("{base}{EVENT}"))
        .header("authorization", format!("Bearer {t}"))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    tokens.push(t);
    let r = client
        .post(format!("{base}/api/v1/calls/vonage/{ended}/terminate"))
        .bearer_auth(crate::app::AGENT_TOKEN)
        .json(&json!({"reason": "abusive", "warning_given": true, "notes": "n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for r in fake.received_requests().await.unwrap() {
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        tokens.push(auth.trim_start_matches("Bearer ").to_owned());
    }

    assert_eq!(server.terminate().await, Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"provider\":\"vonage\""), "{text}");
    let mut forbidden: Vec<String> = vec![
        "7700900081".into(),
        "7700900082".into(),
        "7700900083".into(),
        "7700900084".into(),
        "7700900060".into(),
        SECRET.into(),
        "PRIVATE KEY".into(),
        PRIVATE_KEY.lines().nth(1).unwrap().into(),
    ];
    forbidden.extend(tokens);
    for secret in forbidden {
        assert!(!text.contains(&secret), "{secret:?} appears in the logs");
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input (the same path as fuzz/fuzz_targets/vonage_webhook.rs)
// ---------------------------------------------------------------------------------------------

fn webhook_path_on(data: &[u8]) {
    let now = Utc.timestamp_opt(1_705_314_660, 0).single().unwrap();
    let secret = Secret::new("fuzz-signature-secret");
    let text = String::from_utf8_lossy(data);
    let auth = format!("Bearer {text}");
    let _ = vonage::UnverifiedRequest::post(Some(&auth), bytes::Bytes::copy_from_slice(data))
        .verify(&secret, now);
    let _ = vonage::UnverifiedRequest::get(Some(&auth), &text).verify(&secret, now);
    for req in [
        vonage::UnverifiedRequest::post(None, bytes::Bytes::copy_from_slice(data)),
        vonage::UnverifiedRequest::get(None, &text),
    ] {
        if let Ok(fields) = req.skip_verification().fields() {
            if let Ok(call) = vonage::answer(&fields) {
                let cfg = vonage::VonageConfig::default();
                let _ = vonage::render_continue(&cfg, call.to.as_deref());
            }
            let _ = vonage::call_event(&fields);
        }
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        webhook_path_on(&data);
    }

    #[test]
    fn arbitrary_json_fields_never_panic(
        from in "\\PC{0,20}", to in "\\PC{0,20}", uuid in "\\PC{0,40}", status in "\\PC{0,12}",
        duration in "\\PC{0,6}",
    ) {
        let body = json!({"from": from, "to": to, "uuid": uuid, "status": status,
                          "duration": duration, "direction": "outbound"}).to_string();
        webhook_path_on(body.as_bytes());
        let query = format!("from={from}&to={to}&uuid={uuid}");
        webhook_path_on(query.as_bytes());
    }
}
