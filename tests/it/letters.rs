//! Letters to the customer (SPEC §13): golden files for each kind × language × format (the PDF
//! checked through `pdftotext` from poppler-utils, its page size and embedded fonts through
//! `pdfinfo` / `pdffonts`), the Welsh dates and days, template overrides, and errors.
//! `UPDATE_GOLDEN=1` rewrites the golden files.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fairline::clock::ManualClock;
use fairline::config;
use fairline::state::{AppState, Overrides};
use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{arrangement, test_toml, TestApp};

/// A Tuesday.
const NOW: &str = "2026-11-10T10:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn env() -> Vec<(String, String)> {
    [
        (
            "ORGANISATION__ADDRESS",
            "Fairline House\n1 Ffordd yr Afon\nCaerdydd CF10 1AA",
        ),
        ("ORGANISATION__PHONE", "0300 790 0203"),
        // A debug build lays out a PDF slowly, and with the whole suite (browsers included)
        // sharing the machine one can take longer than the default 5 s request timeout. These
        // tests check the letters, not the timeout (tests/it/ops.rs does).
        ("SERVER__REQUEST_TIMEOUT_MS", "60000"),
        ("ORGANISATION__EMAIL", "casework@example.org"),
        (
            "ORGANISATION__APPEAL_CONTACT",
            "the Head of Casework, Fairline House, 1 Ffordd yr Afon, Caerdydd CF10 1AA",
        ),
    ]
    .iter()
    .map(|(k, v)| (format!("FAIRLINE_{k}"), v.to_string()))
    .collect()
}

async fn spawn(extra_env: &[(String, String)]) -> (TestApp, ManualClock) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("fairline.db").display());
    let mut vars = env();
    vars.extend(extra_env.iter().cloned());
    let cfg = config::from_sources(&test_toml(&url, ""), &vars).unwrap();
    let clock = ManualClock::new(t(NOW));
    let state = AppState::build(
        cfg,
        Overrides {
            clock: Some(Arc::new(clock.clone())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (TestApp::start(state, Some(dir)).await, clock)
}

fn record(number: &str) -> Value {
    arrangement(
        number,
        json!({
            "customer_name": "Mr Gwilym Ŵyn Prŷs",
            "windows": [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}],
            "allowance": {"count": 1, "per": "day"},
            "designated_staff": ["alice", "bob"],
            "max_call_minutes": 20,
            "advocate": "Ms Siân Jones, Advocacy Cymru, 029 2000 0000",
            "customer_explanation": "On three calls in October you shouted at our staff and used abusive language.",
            "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": "2027-05-01T00:00:00Z",
            "review_due": "2027-02-01",
        }),
    )
}

async fn fetch(app: &TestApp, id: &str, query: &str) -> (u16, String, Vec<u8>) {
    let resp = app
        .manager(
            Method::GET,
            &format!("/api/v1/arrangements/{id}/letter?{query}"),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/letters")
}

fn check_golden(name: &str, got: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(got, want, "{name} differs from its golden file");
}

/// Run a poppler tool on `pdf`; `None` (printed) when poppler-utils is missing and CI is not set.
fn poppler(tool: &str, args: &[&str], pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("letter.pdf");
    std::fs::write(&file, pdf).unwrap();
    let mut cmd = Command::new(tool);
    cmd.args(args).arg(&file);
    if tool == "pdftotext" {
        cmd.arg("-");
    }
    match cmd.output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{tool} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{tool} is missing: CI must install poppler-utils"
            );
            eprintln!("letters: {tool} not installed; PDF text check skipped");
            None
        }
    }
}

const LANGUAGES: [&str; 4] = ["en", "cy", "en+cy", "cy+en"];

async fn all_formats(app: &TestApp, id: &str, kind: &str) {
    for lang in LANGUAGES {
        let tag = lang.replace('+', "-");
        let q = |format: &str| {
            format!(
                "kind={kind}&language={}&format={format}",
                lang.replace('+', "%2B")
            )
        };
        let (status, ct, html) = fetch(app, id, &q("html")).await;
        assert_eq!(status, 200, "{kind} {lang} html");
        assert_eq!(ct, "text/html; charset=utf-8");
        check_golden(
            &format!("{kind}.{tag}.html"),
            &String::from_utf8(html).unwrap(),
        );

        let (status, ct, text) = fetch(app, id, &q("text")).await;
        assert_eq!(status, 200);
        assert_eq!(ct, "text/plain; charset=utf-8");
        check_golden(
            &format!("{kind}.{tag}.txt"),
            &String::from_utf8(text).unwrap(),
        );

        let (status, ct, pdf) = fetch(app, id, &q("pdf")).await;
        assert_eq!(status, 200);
        assert_eq!(ct, "application/pdf");
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.len() < 400_000, "{kind} {lang}: {} bytes", pdf.len());
        if let Some(text) = poppler("pdftotext", &["-enc", "UTF-8"], &pdf) {
            check_golden(&format!("{kind}.{tag}.pdf.txt"), &text);
            let info = poppler("pdfinfo", &[], &pdf).unwrap();
            assert!(info.contains("(A4)"), "{info}");
            let fonts = poppler("pdffonts", &[], &pdf).unwrap();
            let rows: Vec<&str> = fonts.lines().skip(2).collect();
            assert!(!rows.is_empty(), "{fonts}");
            for line in rows {
                // name type encoding emb sub uni object ID: embedded, with a Unicode map.
                let cols: Vec<&str> = line.split_whitespace().collect();
                let n = cols.len();
                assert!(n >= 8 && cols[n - 5] == "yes", "font not embedded: {line}");
                assert!(cols[n - 3] == "yes", "font without a Unicode map: {line}");
            }
        }
    }
}

#[tokio::test]
async fn every_kind_language_and_format_matches_its_golden_file() {
    let (app, clock) = spawn(&[]).await;
    let a = app.create_arrangement(record("+442920123456")).await;
    let id = a["id"].as_str().unwrap();
    all_formats(&app, id, "notice").await;

    // No review yet; not ended yet.
    let (status, _, _) = fetch(&app, id, "kind=review").await;
    assert_eq!(status, 409);
    let (status, _, _) = fetch(&app, id, "kind=ended").await;
    assert_eq!(status, 409);

    clock.set(t("2027-01-28T11:00:00Z"));
    let resp = app
        .manager(Method::POST, &format!("/api/v1/arrangements/{id}/reviews"))
        .json(&json!({"outcome": "continue", "next_review_due": "2027-04-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    all_formats(&app, id, "review").await;

    clock.set(t("2027-03-04T09:30:00Z"));
    let resp = app
        .manager(Method::POST, &format!("/api/v1/arrangements/{id}/reviews"))
        .json(&json!({"outcome": "end", "notes": "internal: behaviour improved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    all_formats(&app, id, "ended").await;
    // The manager's notes are not written to the customer.
    let (_, _, text) = fetch(&app, id, "kind=review&format=text").await;
    assert!(!String::from_utf8(text).unwrap().contains("internal"));
    app.stop().await;
}

#[tokio::test]
async fn welsh_letter_dates_days_and_rules() {
    let (app, _clock) = spawn(&[]).await;
    let a = app.create_arrangement(record("+442920123456")).await;
    let id = a["id"].as_str().unwrap();
    let (status, _, text) = fetch(&app, id, "kind=notice&language=cy&format=text").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    for want in [
        "Dydd Mawrth 10 Tachwedd 2026",
        "ar 1 Tachwedd 2026 ac yn dod i ben ar 1 Mai 2027",
        "erbyn 1 Chwefror 2027",
        "dydd Mawrth a dydd Iau, 10:00 tan 12:00",
        "Cewch wneud un alwad y dydd.",
        "Dim ond at Alice Jones neu Bob Evans y bydd eich galwadau'n cael eu trosglwyddo.",
        "Gall pob galwad bara hyd at 20 munud.",
        "Annwyl Mr Gwilym Ŵyn Prŷs,",
        "Rydych wedi dweud wrthym fod Ms Siân Jones, Advocacy Cymru, 029 2000 0000 yn eich helpu.",
        "Ysgrifennwch at the Head of Casework",
        "Yn gywir,",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // No English in the Welsh letter's own sentences.
    assert!(!text.contains("You may"), "{text}");
    // The default language is the arrangement's: cy+en puts Welsh first.
    let mut body = record("+442920999888");
    body["language"] = json!("cy+en");
    let b = app.create_arrangement(body).await;
    let (_, _, both) = fetch(&app, b["id"].as_str().unwrap(), "kind=notice&format=text").await;
    let both = String::from_utf8(both).unwrap();
    let cy = both.find("Eich trefniant cyswllt").unwrap();
    let en = both.find("Your contact arrangement").unwrap();
    assert!(cy < en);
    app.stop().await;
}

#[tokio::test]
async fn templates_can_be_overridden_and_bad_queries_are_422() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notice.en.txt"),
        "# Our own heading\nRef {{customer_ref}}\n\n{{rules}}\n\nSigned, {{organisation}}\n",
    )
    .unwrap();
    let (app, _clock) = spawn(&[(
        "FAIRLINE_LETTERS__TEMPLATES_DIR".to_string(),
        dir.path().display().to_string(),
    )])
    .await;
    let a = app.create_arrangement(record("+442920123456")).await;
    let id = a["id"].as_str().unwrap();
    let (status, _, text) = fetch(&app, id, "kind=notice&language=en&format=text").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("Our own heading"), "{text}");
    assert!(text.contains("Ref PSOW-2026-00123"), "{text}");
    assert!(
        text.contains("  * Each call may last up to 20 minutes."),
        "{text}"
    );
    // The Welsh one is still the built-in template.
    let (_, _, cy) = fetch(&app, id, "kind=notice&language=cy&format=text").await;
    assert!(String::from_utf8(cy)
        .unwrap()
        .contains("Eich trefniant cyswllt"));

    let (status, _, body) = fetch(&app, id, "kind=memo&language=fr&format=doc").await;
    assert_eq!(status, 422);
    let p: Value = serde_json::from_slice(&body).unwrap();
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["kind", "language", "format"]);
    let (status, _, _) = fetch(&app, id, "language=en").await;
    assert_eq!(status, 422);
    let resp = app
        .agent(
            Method::GET,
            &format!("/api/v1/arrangements/{id}/letter?kind=notice"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let (status, _, _) = fetch(&app, "arr_01JF000000000000000000000Z", "kind=notice").await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// The same letter from a PostgreSQL store as from SQLite (the golden file).
#[tokio::test]
async fn postgres_letters_match_the_golden_files() {
    let Some((url, schema)) =
        crate::support::pg_schema("letters::postgres_letters_match_the_golden_files")
    else {
        return;
    };
    let store = fairline::store::postgres::PgStore::connect_in_schema(&url, &schema)
        .await
        .unwrap();
    let cfg = config::from_sources(&test_toml(&url, ""), &env()).unwrap();
    let clock = ManualClock::new(t(NOW));
    let state = AppState::with_store(
        cfg,
        Arc::new(store),
        Overrides {
            clock: Some(Arc::new(clock.clone())),
            ..Default::default()
        },
    )
    .unwrap();
    let app = TestApp::start(state, None).await;
    let a = app.create_arrangement(record("+442920123456")).await;
    let id = a["id"].as_str().unwrap();
    let (status, _, text) = fetch(&app, id, "kind=notice&language=en%2Bcy&format=text").await;
    assert_eq!(status, 200);
    check_golden("notice.en-cy.txt", &String::from_utf8(text).unwrap());
    clock.set(t("2027-01-28T11:00:00Z"));
    let resp = app
        .manager(Method::POST, &format!("/api/v1/arrangements/{id}/reviews"))
        .json(&json!({"outcome": "continue", "next_review_due": "2027-04-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let (status, _, html) = fetch(&app, id, "kind=review&language=cy&format=html").await;
    assert_eq!(status, 200);
    check_golden("review.cy.html", &String::from_utf8(html).unwrap());
    app.stop().await;
    let _ = fairline::store::postgres::PgStore::drop_schema(&url, &schema).await;
}
