//! Providers switched on by configuration (SPEC §11): a platform whose section is absent, or
//! that says `enabled = false`, has no webhook and no end-call path, and needs no keys.

use fairline::config;
use fairline::state::{AppState, Overrides};
use reqwest::StatusCode;
use serde_json::json;

use crate::app::{test_toml, TestApp};

/// The test configuration with the `[telnyx]` section taken out.
fn without_telnyx(storage_url: &str, extra: &str) -> String {
    let full = test_toml(storage_url, extra);
    let cut = full.replace("[telnyx]\nverify_signatures = false\n", "");
    assert_ne!(cut, full, "the test configuration changed shape");
    cut
}

async fn spawn_from(toml_for: impl Fn(&str) -> String) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
    let config = config::from_sources(&toml_for(&url), &[]).unwrap();
    let state = AppState::build(config, Overrides::default()).await.unwrap();
    TestApp::start(state, Some(dir)).await
}

async fn status_of(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ctype)
}

async fn terminate(app: &TestApp, provider: &str, call: &str) -> (StatusCode, String) {
    let resp = app
        .agent(
            reqwest::Method::POST,
            &format!("/api/v1/calls/{provider}/{call}/terminate"),
        )
        .json(&json!({"reason": "abusive_language", "warning_given": true}))
        .send()
        .await
        .unwrap();
    status_of(resp).await
}

#[tokio::test]
async fn an_absent_section_switches_the_platform_off() {
    let app = spawn_from(|url| without_telnyx(url, "")).await;
    assert!(app.state.config.twilio.enabled);
    assert!(!app.state.config.telnyx.enabled);

    let resp = app
        .client
        .post(format!("{}/webhooks/telnyx", app.url))
        .header("content-type", "application/json")
        .body(include_str!(
            "../../fixtures/telnyx/call_initiated_inbound.json"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let (status, ctype) = terminate(&app, "telnyx", "v3:abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ctype, "application/problem+json");

    // Twilio is still there: an unsigned request is refused by its signature check, not 404.
    let resp = app
        .client
        .post(format!("{}/webhooks/twilio/voice", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CA1&From=%2B447700900001&To=%2B442920000000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn enabled_false_switches_it_off_and_no_key_is_required() {
    // Signature checks on and no auth token: an error for an enabled Twilio, nothing for a
    // disabled one.
    let twilio_off = |url: &str| {
        test_toml(url, "")
            .replace("[twilio]\n", "[twilio]\nenabled = false\n")
            .replace(
                "auth_token = \"test-twilio-auth-token\"\n",
                "auth_token = \"\"\n",
            )
    };
    let app = spawn_from(twilio_off).await;
    assert!(!app.state.config.twilio.enabled);
    assert!(app.state.config.telnyx.enabled);
    for path in [
        "/webhooks/twilio/voice",
        "/webhooks/twilio/dial-status",
        "/webhooks/twilio/status",
    ] {
        let resp = app
            .client
            .post(format!("{}{path}", app.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("CallSid=CA1&From=%2B447700900001")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = terminate(&app, "twilio", "CA0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Telnyx (signature checks off in the test configuration) still answers its webhook.
    let resp = app
        .client
        .post(format!("{}/webhooks/telnyx", app.url))
        .header("content-type", "application/json")
        .body(include_str!("../../fixtures/telnyx/call_hangup.json"))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), StatusCode::NOT_FOUND);
    app.stop().await;

    // The same file with Twilio switched on is refused for the missing token.
    let on = twilio_off("sqlite://x.db").replace("enabled = false\n", "");
    let err = config::from_sources(&on, &[]).unwrap_err();
    assert!(
        err.problems()
            .iter()
            .any(|p| p.starts_with("twilio.auth_token")),
        "{:?}",
        err.problems()
    );
}

#[test]
fn check_config_says_which_platforms_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let run = |toml: String| {
        let path = dir.path().join("fairline.toml");
        std::fs::write(&path, toml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fairline"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        stdout
            .lines()
            .find(|l| l.starts_with("providers "))
            .unwrap_or_else(|| panic!("no providers line in:\n{stdout}"))
            .to_string()
    };
    let both = run(test_toml("sqlite://x.db", ""));
    assert!(both.ends_with("twilio, telnyx enabled"), "{both}");
    let one = run(without_telnyx("sqlite://x.db", ""));
    assert!(one.ends_with("twilio enabled"), "{one}");
    assert!(!one.contains("telnyx"), "{one}");
}
