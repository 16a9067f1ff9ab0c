#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::domain::LanguageSetting;
use std::time::Duration;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problems(toml: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match from_sources(toml, &env(vars)) {
        Ok(_) => vec![],
        Err(e) => e.problems(),
    }
}

const MINIMAL: &str = "[[auth.tokens]]\nname = \"m\"\nrole = \"manager\"\nsha256 = \"sha256:2fb45d55493f2a01708bf8079a547104e5d60bd027b54ec838971fd0ecbedb54\"\n";

#[test]
fn a_provider_is_on_when_its_section_is_written_and_off_when_absent() {
    let c = from_sources(MINIMAL, &[]).unwrap();
    assert!(!c.twilio.enabled && !c.telnyx.enabled);
    assert!(c.enabled_providers().is_empty());

    let twilio = format!("{MINIMAL}[twilio]\nverify_signatures = false\n");
    let c = from_sources(&twilio, &[]).unwrap();
    assert!(c.twilio.enabled && !c.telnyx.enabled);
    assert_eq!(c.enabled_providers(), ["twilio"]);

    let off = format!("{MINIMAL}[twilio]\nenabled = false\n");
    let c = from_sources(&off, &[]).unwrap();
    assert!(!c.twilio.enabled);

    // An environment variable naming the section counts as writing it.
    let c = from_sources(
        MINIMAL,
        &env(&[("FAIRLINE_TELNYX__VERIFY_SIGNATURES", "false")]),
    )
    .unwrap();
    assert!(c.telnyx.enabled && !c.twilio.enabled);

    // A disabled platform's missing keys are not problems; an enabled one's are.
    assert!(problems(MINIMAL, &[]).is_empty());
    let p = problems(&format!("{MINIMAL}[telnyx]\n"), &[]);
    assert!(
        p.iter().any(|p| p.starts_with("telnyx.public_key")),
        "{p:?}"
    );
    assert!(problems(&format!("{MINIMAL}[telnyx]\nenabled = false\n"), &[]).is_empty());
    let p = problems(&format!("{MINIMAL}[telnyx]\nenabled = \"yes\"\n"), &[]);
    assert!(p.iter().any(|p| p.starts_with("telnyx.enabled")), "{p:?}");
}

#[test]
fn the_default_file_loads() {
    let text = include_str!("../../config/default.toml");
    let c = from_sources(text, &[]).unwrap();
    assert_eq!(c.server.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.storage.url.expose(), "sqlite://data/fairline.db");
    assert_eq!(c.organisation.timezone, chrono_tz::Europe::London);
    assert_eq!(c.staff.len(), 2);
    assert_eq!(c.auth.tokens.len(), 2);
    assert_eq!(c.cache.ttl, Duration::from_secs(30));
    assert_eq!(c.decision.on_lookup_failure, LookupFailurePolicy::Continue);
    assert_eq!(c.twilio.refuse_blocked_with, RefuseBlockedWith::Reject);
    assert!(c.notifications.webhook_url.is_none());
}

#[test]
fn the_production_example_loads_with_secrets_from_the_environment() {
    let text = include_str!("../../config/production.example.toml");
    let p = problems(text, &[]);
    assert_eq!(
            p,
            vec!["twilio.auth_token: is empty but twilio.verify_signatures = true: set the auth token (FAIRLINE_TWILIO__AUTH_TOKEN)".to_string()]
        );
    let c = from_sources(text, &env(&[("FAIRLINE_TWILIO__AUTH_TOKEN", "12345")])).unwrap();
    assert_eq!(c.twilio.auth_token.expose(), "12345");
    assert!(c.telnyx.public_key.is_some());
    assert_eq!(c.organisation.language, LanguageSetting::EnCy);
    assert_eq!(c.messages.en.len(), 1);
    assert!(c.storage.is_postgres());
}

#[test]
fn environment_overrides_the_file() {
    let c = from_sources(
            "[server]\nbind = \"127.0.0.1:9000\"\n[twilio]\nverify_signatures = false\n[telnyx]\nverify_signatures = false\n",
            &env(&[
                ("FAIRLINE_SERVER__BIND", "127.0.0.1:9100"),
                ("FAIRLINE_CACHE__TTL_SECONDS", "5"),
                ("FAIRLINE_TWILIO__VERIFY_SIGNATURES", "false"),
                ("FAIRLINE_ORGANISATION__CLOSED_DATES", "[\"2026-12-25\"]"),
                ("FAIRLINE_LOG_FORMAT", "json"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
    assert_eq!(c.server.bind.to_string(), "127.0.0.1:9100");
    assert_eq!(c.cache.ttl, Duration::from_secs(5));
    assert_eq!(c.organisation.closed_dates.len(), 1);
}

#[test]
fn every_problem_is_reported_at_once_with_its_key() {
    let toml = r#"
[server]
bind = "nowhere"
public_url = "not a url"
[organisation]
timezone = "Europe/Cardif"
language = "fr"
closed_dates = ["2026-12-25", "25/12/2026"]
[decision]
on_lookup_failure = "maybe"
[twilio]
verify_signatures = true
auth_token = ""
continue_url = "ftp://example.org/x"
[telnyx]
verify_signatures = true
public_key = "not base64!"
[[staff]]
id = "Alice"
name = "A"
[[staff]]
id = "bob"
name = "B"
twilio = "bob@example.org"
[[staff]]
id = "bob"
name = "B again"
[[auth.tokens]]
name = "x"
role = "admin"
sha256 = "abc"
[mystery]
key = 1
"#;
    let p = problems(toml, &[]);
    let expect = [
        "server.bind:",
        "server.public_url:",
        "organisation.timezone:",
        "organisation.language:",
        "organisation.closed_dates[1]:",
        "decision.on_lookup_failure:",
        "twilio.auth_token:",
        "twilio.continue_url:",
        "telnyx.public_key:",
        "staff[0].id:",
        "staff[1].twilio:",
        "staff[2].id: duplicate staff id",
        "auth.tokens[0].role:",
        "auth.tokens[0].sha256:",
        "mystery: unknown key",
    ];
    for e in expect {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), expect.len(), "{p:#?}");
}

#[test]
fn unknown_keys_inside_sections_are_errors() {
    let p = problems(
            "[twilio]\nverify_signatures = false\nauth_tokn = \"x\"\n[telnyx]\nverify_signatures = false\n",
            &[],
        );
    assert_eq!(p, vec!["twilio.auth_tokn: unknown key".to_string()]);
    let p = problems(
        "[twilio]\nverify_signatures = false\n[telnyx]\nverify_signatures = false\n",
        &[("FAIRLINE_SERVER__BINDD", "x")],
    );
    assert_eq!(p, vec!["server.bindd: unknown key".to_string()]);
}

#[test]
fn secrets_are_hidden_from_debug_and_summary() {
    let c = from_sources(
        include_str!("../../config/production.example.toml"),
        &env(&[
            ("FAIRLINE_TWILIO__AUTH_TOKEN", "s3cret-twilio"),
            ("FAIRLINE_TELNYX__API_KEY", "KEYs3cret"),
            (
                "FAIRLINE_STORAGE__URL",
                "postgres://fairline:hunter2@db/fairline",
            ),
        ]),
    )
    .unwrap();
    let dbg = format!("{c:?}");
    let summary = c.summary();
    for secret in ["s3cret-twilio", "KEYs3cret", "hunter2"] {
        assert!(!dbg.contains(secret), "{secret} in Debug");
        assert!(!summary.contains(secret), "{secret} in summary");
    }
    assert!(!summary.contains("461ebf6d4b05"));
}

#[test]
fn token_hash_format() {
    assert_eq!(
        hash_token("dev-agent-token"),
        "sha256:461ebf6d4b05429948791eef4c4b12032c438a092bee97eeca46ec0bb29806a2"
    );
}
