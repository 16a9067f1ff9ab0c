//! The staff console (SPEC §12) over HTTP: sign-in, sessions and their timeouts, CSRF, the
//! security headers, live calls from a Twilio webhook to its status callback, ending a call
//! against a fake Twilio REST API, and the manager's review — on SQLite and PostgreSQL.
//! The same journeys in a real headless Chromium are in `console_browser.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fairline::clock::ManualClock;
use fairline::config::{self, Config, Secret};
use fairline::providers::twilio;
use fairline::state::{AppState, Overrides};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wiremock::matchers::{body_string, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::app::{self, TestApp, ACCOUNT_SID, AGENT_TOKEN, MANAGER_TOKEN, TWILIO_TOKEN};
use crate::support::pg_schema;

pub const INCOMING: &str = include_str!("../../fixtures/twilio/incoming-call.txt");
pub const STATUS_COMPLETED: &str = include_str!("../../fixtures/twilio/status-completed.txt");
pub const CALLER: &str = "+442920123456";
pub const VOICE: &str = "/webhooks/twilio/voice";
pub const STATUS: &str = "/webhooks/twilio/status";

pub fn sid(n: u32) -> String {
    format!("CA{n:032x}")
}

/// A Twilio fixture with some fields replaced.
pub fn with_fields(fixture: &str, replace: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(fixture.trim().as_bytes())
        .into_owned()
        .collect();
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

/// POST a Twilio webhook signed for the app's `public_url`.
pub async fn post_twilio(app: &TestApp, path: &str, body: &str) -> u16 {
    post_twilio_to(&app.url, &app.state.config.server.public_url, path, body).await
}

/// POST a Twilio webhook to the server at `base`, signed for `public_url`.
pub async fn post_twilio_to(base: &str, public_url: &str, path: &str, body: &str) -> u16 {
    let fields: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let sig = twilio::compute_signature(
        &format!("{public_url}{path}"),
        &fields,
        &Secret::new(TWILIO_TOKEN),
    );
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(twilio::SIGNATURE_HEADER, sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub async fn incoming_call(app: &TestApp, from: &str, call_sid: &str) {
    incoming_call_to(
        &app.url,
        &app.state.config.server.public_url,
        from,
        call_sid,
    )
    .await;
}

pub async fn incoming_call_to(base: &str, public_url: &str, from: &str, call_sid: &str) {
    let body = with_fields(
        INCOMING,
        &[("From", from), ("Caller", from), ("CallSid", call_sid)],
    );
    assert_eq!(post_twilio_to(base, public_url, VOICE, &body).await, 200);
}

pub async fn status_completed(app: &TestApp, from: &str, call_sid: &str) {
    let body = with_fields(
        STATUS_COMPLETED,
        &[("From", from), ("Caller", from), ("CallSid", call_sid)],
    );
    assert_eq!(post_twilio(app, STATUS, &body).await, 204);
}

pub fn call_path(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json")
}

/// A fake Twilio REST API that knows `sid` (from `from`) and hangs it up.
pub async fn fake_twilio(sid: &str, from: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(call_path(sid)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sid": sid, "from": from, "to": "+442920000100",
            "status": "in-progress", "parent_call_sid": null
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(call_path(sid)))
        .and(body_string("Status=completed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sid": sid})))
        .mount(&server)
        .await;
    server
}

pub async fn hangups(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count()
}

/// The test configuration pointed at a fake Twilio, edited by `edit`.
pub fn console_config(
    storage_url: &str,
    twilio_base: &str,
    edit: impl FnOnce(&mut Config),
) -> Config {
    let mut cfg = config::from_sources(
        &app::test_toml(storage_url, ""),
        &[(
            "FAIRLINE_TWILIO__API_BASE_URL".to_string(),
            twilio_base.to_string(),
        )],
    )
    .expect("config");
    edit(&mut cfg);
    cfg
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The real server on `backend` (None: PostgreSQL not configured, skipped).
pub async fn spawn_console(
    backend: Backend,
    test: &str,
    twilio_base: &str,
    clock: Option<ManualClock>,
    edit: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let overrides = Overrides {
        clock: clock.map(|c| Arc::new(c) as Arc<dyn fairline::clock::Clock>),
        ..Overrides::default()
    };
    match backend {
        Backend::Sqlite => {
            let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
            let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
            let cfg = console_config(&url, twilio_base, edit);
            let state = AppState::build(cfg, overrides).await.expect("state");
            Some(TestApp::start(state, Some(dir)).await)
        }
        Backend::Postgres => {
            let (url, schema) = pg_schema(test)?;
            let store = fairline::store::postgres::PgStore::connect_in_schema(&url, &schema)
                .await
                .expect("postgres store");
            let cfg = console_config(&url, twilio_base, edit);
            let state = AppState::with_store(cfg, Arc::new(store), overrides).expect("state");
            Some(TestApp::start(state, None).await)
        }
    }
}

/// A minimal cookie-keeping browser over reqwest (no redirects followed).
pub struct Visitor {
    base: String,
    client: reqwest::Client,
    pub cookies: HashMap<String, String>,
    /// The raw `Set-Cookie` headers of the last response.
    pub set_cookies: Vec<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the hidden CSRF field in the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("a csrf field") + marker.len();
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }
}

impl Visitor {
    pub fn new(app: &TestApp) -> Visitor {
        Self::at(&app.url)
    }

    pub fn at(base: &str) -> Visitor {
        Visitor {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header("cookie", header);
        }
        if let Some(f) = form {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f.iter().copied())
                .finish();
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let resp = req.send().await.unwrap();
        self.set_cookies = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &self.set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: resp.status(),
            location: resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    pub async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        let csrf = form.csrf();
        self.post(
            "/console/sign-in",
            &[("csrf_token", &csrf), ("token", token)],
        )
        .await
    }
}

/// Poll `check` on the Live calls page until it holds (the writer is asynchronous).
pub async fn wait_for_calls(v: &mut Visitor, check: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let p = v.get("/console/calls").await;
        assert_eq!(p.status, 200);
        if check(&p.body) {
            return p.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the Live calls page never showed what was expected");
}

fn assert_security_headers(p: &Page) {
    let csp = p.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(p.headers["referrer-policy"], "no-referrer");
    assert_eq!(p.headers["cache-control"], "no-store");
}

async fn terminations_api(app: &TestApp) -> Vec<Value> {
    let v: Value = app
        .manager(Method::GET, "/api/v1/terminations")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn journey(backend: Backend, test: &str) {
    let call = sid(0x15);
    let twilio = fake_twilio(&call, CALLER).await;
    let Some(app) = spawn_console(backend, test, &twilio.uri(), None, |_| {}).await else {
        return;
    };
    let mut agent = Visitor::new(&app);

    // Not signed in: to the sign-in page, which carries the security headers.
    let home = agent.get("/console/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location.as_deref(), Some("/console/sign-in"));
    assert_security_headers(&home);
    let form = agent.get("/console/sign-in").await;
    assert_eq!(form.status, 200);
    assert_security_headers(&form);
    assert!(!form.body.contains("<script>"), "no inline script");

    // A sign-in POST without its CSRF token is refused.
    let p = agent
        .post("/console/sign-in", &[("token", AGENT_TOKEN)])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(!agent.cookies.contains_key("fairline_console"));
    // A wrong token is a form error, not a session.
    let p = agent.sign_in("not-a-token").await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("There is a problem"));
    assert!(p.body.contains("href=\"#token\""));
    assert!(!agent.cookies.contains_key("fairline_console"));

    // The agent signs in: an HttpOnly, SameSite=Strict, Secure (https public_url) cookie.
    let p = agent.sign_in(AGENT_TOKEN).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let cookie = agent
        .set_cookies
        .iter()
        .find(|c| c.starts_with("fairline_console="))
        .expect("a session cookie")
        .clone();
    for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/console"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let home = agent.get("/console/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Signed in as"));
    assert!(home.body.contains("contact-centre"));
    assert!(
        !home.body.contains("Ended calls"),
        "agents do not see ended calls"
    );
    assert_eq!(
        agent.get("/console/terminations").await.status,
        StatusCode::FORBIDDEN
    );

    // A Twilio call appears on Live calls.
    incoming_call(&app, CALLER, &call).await;
    let page = wait_for_calls(&mut agent, |b| b.contains(CALLER)).await;
    assert!(page.contains("Let through to the normal call flow"));
    let end_link = format!("/console/calls/twilio/{call}/end");
    assert!(page.contains(&end_link));

    // A cross-site POST (no CSRF token) changes nothing: 403, no hang-up, no record.
    let p = agent
        .post(
            &end_link,
            &[("reason", "abusive"), ("warning_given", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = agent
        .post(
            &end_link,
            &[
                ("csrf_token", "forged"),
                ("reason", "abusive"),
                ("warning_given", "yes"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(hangups(&twilio).await, 0);
    assert!(terminations_api(&app).await.is_empty());

    // The form with problems: every one in the summary and nothing happens.
    let form = agent.get(&end_link).await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    let p = agent
        .post(&end_link, &[("csrf_token", &csrf), ("warning_given", "no")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Select why you ended the call"));
    assert_eq!(hangups(&twilio).await, 0);

    // Ending it does exactly §9: hung up through Twilio, recorded with the agent's name.
    let p = agent
        .post(
            &end_link,
            &[
                ("csrf_token", &csrf),
                ("reason", "threat_of_violence"),
                ("warning_given", "no"),
                ("notes", "said he would come round"),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("Call ended"));
    assert_eq!(hangups(&twilio).await, 1);
    let recorded = terminations_api(&app).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["agent"], "contact-centre");
    assert_eq!(recorded[0]["caller"], CALLER);
    assert_eq!(recorded[0]["police_report_required"], true);
    let trm = recorded[0]["id"].as_str().unwrap().to_owned();
    // Pressing again: the same record, nothing more hung up.
    let p = agent
        .post(
            &end_link,
            &[
                ("csrf_token", &csrf),
                ("reason", "abusive"),
                ("warning_given", "yes"),
            ],
        )
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(terminations_api(&app).await.len(), 1);

    // The manager reviews it.
    let mut manager = Visitor::new(&app);
    assert_eq!(
        manager.sign_in(MANAGER_TOKEN).await.status,
        StatusCode::SEE_OTHER
    );
    let home = manager.get("/console/").await;
    assert!(
        home.body.contains("ended call awaiting review"),
        "{}",
        home.body
    );
    let list = manager.get("/console/terminations").await;
    assert!(list.body.contains("Police report needed"));
    assert!(list.body.contains(&trm));
    let detail_path = format!("/console/terminations/{trm}");
    let detail = manager.get(&detail_path).await;
    assert!(detail.body.contains("said he would come round"));
    let review_path = format!("{detail_path}/review");
    // Without the CSRF token: refused, still pending.
    let p = manager
        .post(&review_path, &[("outcome", "refer_to_police")])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(
        terminations_api(&app).await[0]["review"]["status"],
        "pending"
    );
    // The agent's token is not the manager's.
    let p = agent
        .post(
            &review_path,
            &[("csrf_token", &csrf), ("outcome", "refer_to_police")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let csrf_m = detail.csrf();
    let p = manager
        .post(&review_path, &[("csrf_token", &csrf_m), ("notes", "x")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Select what happens next"));
    let p = manager
        .post(
            &review_path,
            &[
                ("csrf_token", &csrf_m),
                ("outcome", "refer_to_police"),
                ("notes", "reported"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let t = &terminations_api(&app).await[0];
    assert_eq!(t["review"]["status"], "reviewed");
    assert_eq!(t["review"]["outcome"], "refer_to_police");
    assert_eq!(t["review"]["reviewer"], "casework-manager");

    // The status callback removes the call from Live calls.
    status_completed(&app, CALLER, &call).await;
    wait_for_calls(&mut agent, |b| !b.contains(CALLER)).await;

    // Sign-out ends the session: the old cookie no longer works.
    let old = agent.cookies.clone();
    let home = agent.get("/console/").await;
    let p = agent
        .post("/console/sign-out", &[("csrf_token", &home.csrf())])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    agent.cookies = old;
    assert_eq!(agent.get("/console/").await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn console_journey_on_sqlite() {
    journey(Backend::Sqlite, "console_journey_on_sqlite").await;
}

#[tokio::test]
async fn console_journey_on_postgres() {
    journey(Backend::Postgres, "console_journey_on_postgres").await;
}

async fn timeouts(backend: Backend, test: &str) {
    let start: DateTime<Utc> = Utc::now();
    let clock = ManualClock::new(start);
    let Some(app) = spawn_console(
        backend,
        test,
        "http://127.0.0.1:9",
        Some(clock.clone()),
        |c| c.console.session_idle = Duration::from_secs(10 * 60),
    )
    .await
    else {
        return;
    };
    let mut v = Visitor::new(&app);
    assert_eq!(v.sign_in(AGENT_TOKEN).await.status, StatusCode::SEE_OTHER);
    // Used every 9 minutes: still signed in after 27.
    for m in [9, 18, 27] {
        clock.set(start + chrono::Duration::minutes(m));
        assert_eq!(
            v.get("/console/calls").await.status,
            200,
            "after {m} minutes"
        );
    }
    // The page's own background refresh does not count as use.
    clock.set(start + chrono::Duration::minutes(36));
    let p = v
        .client
        .get(format!("{}/console/calls", v.base))
        .header("x-fairline-background", "1")
        .header(
            "cookie",
            format!("fairline_console={}", v.cookies["fairline_console"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(p.status(), 200);
    // Idle for more than 10 minutes: to sign-in, saying why.
    clock.set(start + chrono::Duration::minutes(38));
    let p = v.get("/console/calls").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location.as_deref(), Some("/console/sign-in?timed_out=1"));
    assert!(v
        .get("/console/sign-in?timed_out=1")
        .await
        .body
        .contains("not used for a while"));

    // However busy, a session ends 12 hours after sign-in.
    let mut busy = Visitor::new(&app);
    let t0 = start + chrono::Duration::hours(1);
    clock.set(t0);
    assert_eq!(
        busy.sign_in(AGENT_TOKEN).await.status,
        StatusCode::SEE_OTHER
    );
    let mut t = t0;
    while t < t0 + chrono::Duration::hours(12) - chrono::Duration::minutes(5) {
        t += chrono::Duration::minutes(5);
        clock.set(t);
        assert_eq!(busy.get("/console/").await.status, 200);
    }
    clock.set(t0 + chrono::Duration::hours(12));
    assert_eq!(busy.get("/console/").await.status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn console_sessions_time_out_on_sqlite() {
    timeouts(Backend::Sqlite, "console_sessions_time_out_on_sqlite").await;
}

#[tokio::test]
async fn console_sessions_time_out_on_postgres() {
    timeouts(Backend::Postgres, "console_sessions_time_out_on_postgres").await;
}

/// The store keeps a hash of the session id, never the id in the cookie.
#[tokio::test]
async fn only_a_hash_of_the_session_id_is_stored() {
    let Some(app) =
        spawn_console(Backend::Sqlite, "hash", "http://127.0.0.1:9", None, |_| {}).await
    else {
        return;
    };
    let mut v = Visitor::new(&app);
    v.sign_in(MANAGER_TOKEN).await;
    let id = v.cookies["fairline_console"].clone();
    assert!(app.state.store.get_session(&id).await.unwrap().is_none());
    let hashed = fairline::console::session::hash_id(&id);
    let s = app.state.store.get_session(&hashed).await.unwrap().unwrap();
    assert_eq!(s.name, "casework-manager");
    app.stop().await;
}

/// Live-call rows: retried webhooks are one row; old rows are swept; withheld numbers show.
#[tokio::test]
async fn live_calls_are_shared_and_swept() {
    let Some(app) =
        spawn_console(Backend::Sqlite, "sweep", "http://127.0.0.1:9", None, |_| {}).await
    else {
        return;
    };
    incoming_call(&app, CALLER, &sid(1)).await;
    incoming_call(&app, CALLER, &sid(1)).await;
    incoming_call(&app, "anonymous", &sid(2)).await;
    let mut v = Visitor::new(&app);
    v.sign_in(AGENT_TOKEN).await;
    let body = wait_for_calls(&mut v, |b| b.contains("Number withheld")).await;
    assert_eq!(
        body.matches(&format!("/console/calls/twilio/{}/end", sid(1)))
            .count(),
        1
    );
    let now = Utc::now();
    assert_eq!(
        app.state
            .store
            .purge_live_calls(now + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        2
    );
    assert!(app
        .state
        .store
        .list_live_calls(now - chrono::Duration::hours(4))
        .await
        .unwrap()
        .is_empty());
    app.stop().await;
}

#[tokio::test]
async fn console_config_is_checked() {
    let ok = config::from_sources(
        &app::test_toml("sqlite://x.db", "[console]\nsession_idle_minutes = 45\n"),
        &[],
    )
    .unwrap();
    assert_eq!(ok.console.session_idle, Duration::from_secs(45 * 60));
    let default = config::from_sources(&app::test_toml("sqlite://x.db", ""), &[]).unwrap();
    assert_eq!(default.console.session_idle, Duration::from_secs(30 * 60));
    for bad in [
        "[console]\nsession_idle_minutes = 0\n",
        "[console]\nsession_minutes = 5\n",
        "[console.oidc]\nissuer = \"not a url\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrole_claim = \"roles\"\nagent_roles = [\"a\"]\n",
        "[console.oidc]\nissuer = \"https://id.example.org\"\nclient_id = \"c\"\nclient_secret = \"s\"\nrole_claim = \"roles\"\n",
        "[console.oidc]\nissuer = \"https://id.example.org\"\n",
    ] {
        assert!(
            config::from_sources(&app::test_toml("sqlite://x.db", bad), &[]).is_err(),
            "{bad}"
        );
    }
}

/// The console's storage on both backends: sessions, live calls, sign-ins under way.
async fn console_store_contract(store: Arc<dyn fairline::store::Store>) {
    use fairline::config::Role;
    use fairline::domain::{CallId, PhoneNumber, Provider};
    use fairline::engine::{Outcome, Reason};
    use fairline::store::{ConsoleSession, LiveCall, PendingLogin};

    let t0: DateTime<Utc> = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let s = ConsoleSession {
        id_hash: "a".repeat(64),
        csrf_token: "csrf".into(),
        name: "Dana Scully".into(),
        role: Role::Manager,
        created_at: t0,
        last_seen_at: t0,
    };
    store.create_session(&s).await.unwrap();
    assert_eq!(
        store.get_session(&s.id_hash).await.unwrap(),
        Some(s.clone())
    );
    let later = t0 + chrono::Duration::minutes(5);
    store.touch_session(&s.id_hash, later).await.unwrap();
    // Touching never moves last use backwards.
    store.touch_session(&s.id_hash, t0).await.unwrap();
    assert_eq!(
        store
            .get_session(&s.id_hash)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        later
    );
    assert_eq!(store.purge_sessions(later, t0).await.unwrap(), 0);
    assert_eq!(
        store
            .purge_sessions(later + chrono::Duration::seconds(1), t0)
            .await
            .unwrap(),
        1
    );
    assert!(store.get_session(&s.id_hash).await.unwrap().is_none());

    let calls: Vec<LiveCall> = (0..250u32)
        .map(|n| LiveCall {
            provider: if n % 2 == 0 {
                Provider::Twilio
            } else {
                Provider::Telnyx
            },
            call_id: CallId::parse(&sid(n)).unwrap(),
            started_at: t0 + chrono::Duration::seconds(i64::from(n)),
            caller: (n % 3 != 0).then(|| PhoneNumber::parse(CALLER).unwrap()),
            outcome: Outcome::Continue,
            reason: Reason::NoArrangement,
            route_to: None,
            arrangement_id: None,
        })
        .collect();
    // More than one INSERT's worth, and a repeat of the first: kept once.
    store.insert_live_calls(&calls).await.unwrap();
    store.insert_live_calls(&calls[..1]).await.unwrap();
    let listed = store.list_live_calls(t0).await.unwrap();
    assert_eq!(listed.len(), 250);
    assert_eq!(listed[0], calls[249], "newest first");
    assert_eq!(
        store
            .get_live_call(Provider::Twilio, &calls[0].call_id)
            .await
            .unwrap(),
        Some(calls[0].clone())
    );
    assert!(store
        .delete_live_call(Provider::Twilio, &calls[0].call_id)
        .await
        .unwrap());
    assert!(!store
        .delete_live_call(Provider::Twilio, &calls[0].call_id)
        .await
        .unwrap());
    assert_eq!(
        store
            .purge_live_calls(t0 + chrono::Duration::seconds(100))
            .await
            .unwrap(),
        99
    );

    let login = PendingLogin {
        state_hash: "b".repeat(64),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        created_at: t0,
    };
    store.create_login(&login).await.unwrap();
    assert_eq!(
        store.take_login(&login.state_hash).await.unwrap(),
        Some(login.clone())
    );
    assert_eq!(
        store.take_login(&login.state_hash).await.unwrap(),
        None,
        "taken once"
    );
}

#[tokio::test]
async fn console_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = fairline::store::sqlite::SqliteStore::open_path(&dir.path().join("f.db"))
        .await
        .unwrap();
    console_store_contract(Arc::new(store)).await;
}

#[tokio::test]
async fn console_store_on_postgres() {
    let Some((url, schema)) = pg_schema("console_store_on_postgres") else {
        return;
    };
    let store = fairline::store::postgres::PgStore::connect_in_schema(&url, &schema)
        .await
        .unwrap();
    console_store_contract(Arc::new(store)).await;
}
