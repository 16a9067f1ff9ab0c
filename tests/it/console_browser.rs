//! The staff console in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven with fantoccini: every page and error state checked with axe-core against WCAG 2.2
//! A/AA, the end-call task done with the keyboard alone, and a screenshot of each page saved
//! to `docs/console/`. Skipped (with a printed line) only when `chromedriver` is missing and
//! `CI` is not set; in CI it must run.

use std::process::Stdio;
use std::time::Duration;

use fairline::clock::ManualClock;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::app::{AGENT_TOKEN, MANAGER_TOKEN};
use crate::console::{
    fake_twilio, hangups, incoming_call, sid, spawn_console, status_completed, Backend, CALLER,
};

const AXE: &str = include_str!("../assets/axe.min.js");
const AXE_TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

/// chromedriver on a free port, killed on drop.
pub(crate) struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver_path() -> Option<String> {
    if let Ok(p) = std::env::var("CHROMEDRIVER") {
        return Some(p);
    }
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(str::to_owned)
}

pub(crate) async fn start_driver() -> Option<Driver> {
    let Some(bin) = chromedriver_path() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromedriver is missing, and CI is set: install chromium and chromium-driver");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "console browser tests: skipped: chromedriver not found (install chromium and chromium-driver)"
        );
        return None;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // The browser is not under test: when CI runs the suite with a moved clock (libfaketime,
    // .ci/moved-clock), only the server's clock moves, not Chromium's.
    let child = std::process::Command::new(bin)
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{}/status", driver.url)).send().await {
            if r.status().is_success() {
                return Some(driver);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

pub(crate) async fn browser(driver: &Driver) -> Client {
    let mut chrome = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1200,900", "--hide-scrollbars", "--force-device-scale-factor=1"]
    });
    if let Ok(bin) = std::env::var("CHROMIUM") {
        chrome["binary"] = Value::String(bin);
    } else if std::path::Path::new("/usr/bin/chromium").exists() {
        chrome["binary"] = Value::String("/usr/bin/chromium".into());
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), chrome);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// Run axe-core on the page; fail the test with every WCAG 2.2 A/AA violation.
pub(crate) async fn axe(c: &Client, what: &str) {
    let present = c
        .execute("return typeof window.axe !== 'undefined';", vec![])
        .await
        .unwrap();
    if present != Value::Bool(true) {
        c.execute(AXE, vec![]).await.unwrap();
    }
    let script = r#"
        var done = arguments[arguments.length - 1];
        window.axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})
          .then(function (r) {
            done(r.violations.map(function (v) {
              return v.id + ': ' + v.help + ' at ' +
                v.nodes.map(function (n) { return n.target.join(' '); }).join(' | ');
            }));
          }, function (e) { done(['axe did not run: ' + e]); });
    "#;
    let violations = c
        .execute_async(script, vec![json!(AXE_TAGS)])
        .await
        .unwrap();
    let list = violations.as_array().cloned().unwrap_or_default();
    assert!(list.is_empty(), "axe on {what}: {list:#?}");
}

/// A screenshot of the whole page to docs/console/{name}.png.
pub(crate) async fn screenshot(c: &Client, name: &str) {
    let height = c
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(900)
        .clamp(600, 8000);
    c.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    c.set_window_size(1200, height as u32 + 140).await.unwrap();
    let png = c.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    c.set_window_size(1200, 900).await.unwrap();
}

/// axe and a screenshot.
pub(crate) async fn check(c: &Client, name: &str) {
    screenshot(c, name).await;
    axe(c, name).await;
}

/// The page's visible text (retried while a navigation replaces the document).
pub(crate) async fn body_text(c: &Client) -> String {
    for _ in 0..50 {
        if let Ok(Value::String(s)) = c
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not read the page's text");
}

pub(crate) async fn title(c: &Client) -> String {
    c.title().await.unwrap()
}

/// Wait (up to 15 s) for the page title to be `want` (navigation after a click is asynchronous).
pub(crate) async fn wait_title(c: &Client, want: &str) {
    for _ in 0..150 {
        if c.title().await.map(|t| t == want).unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the page title never became {want:?}: it is {:?}\n{}",
        title(c).await,
        body_text(c).await
    );
}

pub(crate) fn key(k: Key) -> String {
    char::from(k).to_string()
}

/// Press a key in whatever has the focus.
pub(crate) async fn press(c: &Client, k: Key) {
    c.active_element()
        .await
        .unwrap()
        .send_keys(&key(k))
        .await
        .unwrap();
}

/// Tab until the focused element satisfies `is`, by attribute; fails after 60 presses.
pub(crate) async fn tab_to(c: &Client, attr: &str, is: impl Fn(&str) -> bool) {
    for _ in 0..60 {
        press(c, Key::Tab).await;
        let el = c.active_element().await.unwrap();
        if let Ok(Some(v)) = el.attr(attr).await {
            if is(&v) {
                return;
            }
        }
    }
    panic!("tabbing never reached the element wanted ({attr})");
}

/// Sign in with the keyboard alone: Tab to the token field, type, Enter.
pub(crate) async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/console/sign-in")).await.unwrap();
    tab_to(c, "id", |id| id == "token").await;
    c.active_element()
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    press(c, Key::Enter).await;
}

pub(crate) async fn wait_for_text(c: &Client, present: &str, want: bool) {
    for _ in 0..150 {
        if body_text(c).await.contains(present) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the page never {} {present:?}",
        if want { "showed" } else { "lost" }
    );
}

#[tokio::test]
async fn console_in_a_real_browser() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let call = sid(0xb0);
    let twilio = fake_twilio(&call, CALLER).await;
    let clock = ManualClock::new(chrono::Utc::now());
    // The browser talks plain http to localhost: a non-https public_url, so no Secure cookie.
    let app = spawn_console(
        Backend::Sqlite,
        "browser",
        &twilio.uri(),
        Some(clock.clone()),
        |c| c.server.public_url = "http://localhost".into(),
    )
    .await
    .unwrap();
    app.create_arrangement(crate::app::arrangement(
        CALLER,
        json!({"designated_staff": ["alice"], "max_call_minutes": 20}),
    ))
    .await;
    let base = format!("http://localhost:{}", app.addr.port());
    let c = browser(&driver).await;

    // Sign-in, and its error state.
    c.goto(&format!("{base}/console/sign-in")).await.unwrap();
    assert_eq!(title(&c).await, "Sign in – Fairline staff console");
    check(&c, "01-sign-in").await;
    c.find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_title(&c, "Error: Sign in – Fairline staff console").await;
    assert!(body_text(&c).await.contains("Enter your access token"));
    check(&c, "02-sign-in-error").await;

    // The agent signs in.
    sign_in(&c, &base, AGENT_TOKEN).await;
    wait_title(&c, "Home – Fairline staff console").await;
    check(&c, "03-home-agent").await;

    // A Twilio call: the open Live calls page shows it by itself (the 5-second refresh).
    c.goto(&format!("{base}/console/calls")).await.unwrap();
    assert!(body_text(&c)
        .await
        .contains("There are no calls in progress"));
    incoming_call(&app, CALLER, &call).await;
    wait_for_text(&c, CALLER, true).await;
    let live = body_text(&c).await;
    assert!(live.contains("Put through to Alice Jones"), "{live}");
    assert!(live.contains("All calls go to Alice Jones. Calls last at most 20 minutes."));
    check(&c, "04-live-calls").await;

    // A cross-site POST (a page on another site submitting the end-call form): the
    // SameSite=Strict cookie is not sent and there is no CSRF token: nothing happens.
    let attacker = MockServer::start().await;
    let end_url = format!("{base}/console/calls/twilio/{call}/end");
    Mock::given(method("GET"))
        .and(path("/attack"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html")
                .set_body_string(format!(
            "<!DOCTYPE html><html lang=en><title>x</title><form method=post action=\"{end_url}\">\
             <input name=reason value=abusive><input name=warning_given value=yes></form>\
             <script>document.forms[0].submit()</script></html>"
        )),
        )
        .mount(&attacker)
        .await;
    c.goto(&format!("{}/attack", attacker.uri())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hangups(&twilio).await, 0);
    // The same form from this site but without its CSRF token: 403, nothing happens.
    c.goto(&end_url).await.unwrap();
    check(&c, "05-end-call").await;
    c.execute(
        "document.querySelector('main form input[name=csrf_token]').remove();\
         document.getElementById('reason').checked = true;\
         document.getElementById('warning_given').checked = true;\
         document.querySelector('main form').submit();",
        vec![],
    )
    .await
    .unwrap();
    wait_title(
        &c,
        "Your request could not be checked – Fairline staff console",
    )
    .await;
    check(&c, "06-refused-without-csrf").await;
    assert_eq!(hangups(&twilio).await, 0);
    assert!(app
        .state
        .store
        .find_termination(
            fairline::domain::Provider::Twilio,
            &fairline::domain::CallId::parse(&call).unwrap()
        )
        .await
        .unwrap()
        .is_none());

    // The end-call form's error state.
    c.goto(&end_url).await.unwrap();
    c.find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_title(&c, "Error: End call – Fairline staff console").await;
    assert!(body_text(&c)
        .await
        .contains("Select why you ended the call"));
    check(&c, "07-end-call-errors").await;

    // Keyboard only: from Live calls, Tab to End call, Enter; Tab to the reason, Space;
    // Tab to "I warned the caller: Yes", Space; Tab to the notes, type; Tab to the button, Enter.
    c.goto(&format!("{base}/console/calls")).await.unwrap();
    tab_to(&c, "href", |h| h.ends_with("/end")).await;
    press(&c, Key::Enter).await;
    wait_for_text(&c, "Why did you end the call?", true).await;
    tab_to(&c, "id", |id| id == "reason").await;
    press(&c, Key::Space).await;
    tab_to(&c, "id", |id| id == "warning_given").await;
    press(&c, Key::Space).await;
    tab_to(&c, "id", |id| id == "notes").await;
    c.active_element()
        .await
        .unwrap()
        .send_keys("Shouted at me after a warning")
        .await
        .unwrap();
    tab_to(&c, "type", |t| t == "submit").await;
    let label = c.active_element().await.unwrap().text().await.unwrap();
    assert_eq!(label, "End call");
    press(&c, Key::Enter).await;
    wait_for_text(&c, "It has been recorded for a manager to review", true).await;
    assert!(body_text(&c).await.contains("Call ended"));
    check(&c, "08-call-ended").await;
    assert_eq!(hangups(&twilio).await, 1);

    // Sign out (a button in the header), then the manager signs in and reviews.
    c.find(Locator::Css("form[action='/console/sign-out'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&c, "You have signed out", true).await;
    sign_in(&c, &base, MANAGER_TOKEN).await;
    wait_title(&c, "Home – Fairline staff console").await;
    assert!(body_text(&c).await.contains("ended call awaiting review"));
    check(&c, "09-home-manager").await;
    c.goto(&format!("{base}/console/terminations"))
        .await
        .unwrap();
    check(&c, "10-ended-calls").await;
    c.find(Locator::Css("main table a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_title(&c, "Ended call – Fairline staff console").await;
    let detail = body_text(&c).await;
    assert!(detail.contains("Shouted at me after a warning"));
    assert!(detail.contains("contact-centre"));
    assert!(detail.contains("PSOW-2026-00123: All calls go to Alice Jones."));
    check(&c, "11-ended-call").await;
    c.find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_title(&c, "Error: Ended call – Fairline staff console").await;
    assert!(body_text(&c).await.contains("Select what happens next"));
    check(&c, "12-review-errors").await;
    // The review by keyboard alone: Tab into the radios (focus lands on the first), the Down
    // arrow to "Write to the customer", Tab to the notes, type, Tab to the button, Enter.
    tab_to(&c, "name", |n| n == "outcome").await;
    press(&c, Key::Down).await;
    let chosen = c.active_element().await.unwrap().attr("id").await.unwrap();
    assert_eq!(chosen.as_deref(), Some("outcome-2"));
    tab_to(&c, "id", |id| id == "notes").await;
    c.active_element()
        .await
        .unwrap()
        .send_keys("Letter about the arrangement to follow")
        .await
        .unwrap();
    tab_to(&c, "type", |t| t == "submit").await;
    press(&c, Key::Enter).await;
    wait_for_text(&c, "Review saved", true).await;
    let reviewed = body_text(&c).await;
    assert!(reviewed.contains("Review saved"), "{reviewed}");
    assert!(reviewed.contains("Write to the customer"));
    assert!(reviewed.contains("casework-manager"));
    check(&c, "13-reviewed").await;

    // The status callback: the call leaves Live calls.
    c.goto(&format!("{base}/console/calls")).await.unwrap();
    assert!(body_text(&c).await.contains(CALLER));
    status_completed(&app, CALLER, &call).await;
    wait_for_text(&c, CALLER, false).await;
    check(&c, "14-live-calls-empty").await;

    // Idle past the timeout: sent to sign-in, told why.
    clock.set(chrono::Utc::now() + chrono::Duration::minutes(31));
    c.goto(&format!("{base}/console/calls")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/sign-in"));
    assert!(body_text(&c).await.contains("not used for a while"));
    check(&c, "15-timed-out").await;

    c.close().await.unwrap();
    app.stop().await;
}

/// Sign-in through the organisation's identity provider (the fake one in console_oidc.rs),
/// in the browser: the provider is another site, so this also shows the session cookie
/// (SameSite=Strict) survives the way back.
#[tokio::test]
async fn oidc_sign_in_in_a_real_browser() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let idp = crate::console_oidc::start_idp("Dana Scully", &["contact-centre"]).await;
    let app = crate::console_oidc::spawn_oidc_app(&idp, "localhost", "http://127.0.0.1:9").await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/console/sign-in", app.url))
        .await
        .unwrap();
    check(&c, "16-sign-in-with-oidc").await;
    c.find(Locator::LinkText("Sign in with your organisation account"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_title(&c, "Home – Fairline staff console").await;
    assert!(body_text(&c).await.contains("Signed in as Dana Scully"));
    axe(&c, "home after OpenID Connect sign-in").await;
    c.close().await.unwrap();
}
