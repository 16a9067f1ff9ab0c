//! The console's Arrangements pages (SPEC §12–§13, issue 17) over HTTP, on SQLite and
//! PostgreSQL: create through the form (a validation error from the API's own rules shown on
//! its field, then fixed), search by a number in any format and by customer reference, edit,
//! a stale edit from a second session (nothing overwritten), "what would happen if they
//! called", a review, an appeal and its decision, the Welsh letter's preview and PDF, revoke;
//! and then a Twilio webhook decided by the rules made in the console. The same journey in a
//! real Chromium is in `console_browser.rs`.

use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Europe::London;
use fairline::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::Value;

use crate::app::{TestApp, AGENT_TOKEN, MANAGER_TOKEN};
use crate::console::{incoming_call, sid, spawn_console, Backend, Page, Visitor, CALLER};

/// The test's dates, relative to the real today (the suite is also run with the clock moved):
/// the service's clock is the next Friday after today at 12:00 in London.
pub struct When {
    pub friday: NaiveDate,
    pub now: DateTime<Utc>,
}

impl When {
    pub fn new() -> Self {
        let mut friday = Utc::now().with_timezone(&London).date_naive() + Days::new(1);
        while friday.weekday() != Weekday::Fri {
            friday = friday + Days::new(1);
        }
        When {
            friday,
            now: at(friday, 12, 0),
        }
    }
    /// The rules end (about six and a half months on).
    pub fn ends(&self) -> NaiveDate {
        self.friday + Days::new(200)
    }
    /// The first review (about three months on).
    pub fn review(&self) -> NaiveDate {
        self.friday + Days::new(100)
    }
    /// The Monday after the Friday.
    pub fn monday(&self) -> NaiveDate {
        self.friday + Days::new(3)
    }
}

/// A local London time as an instant.
pub fn at(d: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    London
        .from_local_datetime(&d.and_hms_opt(h, m, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

/// How the console writes a local time ("Mon 23 Nov 2026, 14:00").
pub fn shown(t: DateTime<Utc>) -> String {
    t.with_timezone(&London)
        .format("%a %-d %b %Y, %H:%M")
        .to_string()
}

fn ymd(d: NaiveDate) -> [String; 3] {
    [
        d.day().to_string(),
        d.month().to_string(),
        d.year().to_string(),
    ]
}

async fn api_get(app: &TestApp, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", app.url))
        .bearer_auth(MANAGER_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The fields of the new-arrangement form, filled in: calls on Tuesdays and Thursdays 10:00
/// to 12:00 and Mondays 14:00 to 15:00, one call a day, Welsh then English.
pub fn valid_form(csrf: &str, when: &When) -> Vec<(&'static str, String)> {
    let mut form: Vec<(&'static str, String)> = [
        ("csrf_token", csrf),
        ("customer_ref", "PSOW-2026-00777"),
        ("customer_name", "Rhys Morgan"),
        ("phone_numbers", "02920 123456"),
        ("kind", "restricted"),
        ("w0_days", "tue"),
        ("w0_days", "thu"),
        ("w0_start", "10:00"),
        ("w0_end", "12:00"),
        ("w1_days", "mon"),
        ("w1_start", "14:00"),
        ("w1_end", "15:00"),
        ("allowance_count", "1"),
        ("allowance_per", "day"),
        ("designated_staff", "alice"),
        ("language", "cy+en"),
        ("reason", "Repeated abusive calls to the casework team"),
        ("decided_by", "Director of Investigations"),
        (
            "customer_explanation",
            "Some of your calls were abusive to our staff.",
        ),
        ("equality_advice_sought", "yes"),
    ]
    .iter()
    .map(|(k, v)| (*k, (*v).to_owned()))
    .collect();
    let [d, m, y] = ymd(when.ends());
    form.extend([
        ("ends_at-day", d),
        ("ends_at-month", m),
        ("ends_at-year", y),
    ]);
    let [d, m, y] = ymd(when.review());
    form.extend([
        ("review_due-day", d),
        ("review_due-month", m),
        ("review_due-year", y),
    ]);
    form
}

fn replace(form: &[(&'static str, String)], key: &str, value: &str) -> Vec<(&'static str, String)> {
    form.iter()
        .map(|(k, v)| {
            if *k == key {
                (*k, value.to_owned())
            } else {
                (*k, v.clone())
            }
        })
        .collect()
}

async fn post(v: &mut Visitor, path: &str, form: &[(&'static str, String)]) -> Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    v.post(path, &pairs).await
}

fn arrangement_id(location: &str) -> String {
    location
        .trim_start_matches("/console/arrangements/")
        .split(['?', '/', '#'])
        .next()
        .unwrap()
        .to_owned()
}

async fn journey(backend: Backend, test: &str) {
    let when = When::new();
    let clock = ManualClock::new(when.now);
    let Some(app) = spawn_console(backend, test, "http://127.0.0.1:9", Some(clock), |_| {}).await
    else {
        return;
    };
    // An agent may not see the Arrangements pages.
    let mut agent = Visitor::new(&app);
    agent.sign_in(AGENT_TOKEN).await;
    let p = agent.get("/console/arrangements").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("Only managers"));
    assert_eq!(agent.get("/console/arrangements/new").await.status, 403);

    let mut manager = Visitor::new(&app);
    manager.sign_in(MANAGER_TOKEN).await;
    let home = manager.get("/console/").await;
    assert!(home.body.contains("reviews overdue"), "{}", home.body);
    assert!(home.body.contains("open appeals"));
    let form = manager.get("/console/arrangements/new").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();

    // Without a CSRF token nothing is created.
    let mut no_csrf = valid_form(&csrf, &when);
    no_csrf.remove(0);
    assert_eq!(
        post(&mut manager, "/console/arrangements", &no_csrf)
            .await
            .status,
        403
    );

    // The API's rules, on the form's fields: times 1 ends before it starts, the review is after
    // the end, no reason.
    let bad = replace(&valid_form(&csrf, &when), "w0_end", "09:00");
    let late = (when.ends().year() + 1).to_string();
    let bad = replace(&bad, "review_due-year", &late);
    let bad = replace(&bad, "reason", "");
    let p = post(&mut manager, "/console/arrangements", &bad).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("<title>Error: Create an arrangement"));
    for (anchor, words) in [
        (
            "#w0_days",
            "The end of times 1 must be later than its start",
        ),
        (
            "#review_due-day",
            "The review date must be on or before the end date",
        ),
        ("#reason", "Enter why the arrangement is needed"),
    ] {
        assert!(
            p.body
                .contains(&format!("<a href=\"{anchor}\">{words}</a>")),
            "summary link {anchor} in {}",
            p.body
        );
        assert!(
            p.body.contains(&format!("Error: </span>{words}")),
            "{words} at its field"
        );
    }
    // What was typed is kept.
    assert!(p.body.contains("value=\"PSOW-2026-00777\""));
    assert!(p.body.contains("value=\"09:00\""));
    assert!(api_get(&app, "/api/v1/arrangements").await["items"]
        .as_array()
        .unwrap()
        .is_empty());

    // Fixed: created, and the JSON API sees exactly the rules typed.
    let p = post(
        &mut manager,
        "/console/arrangements",
        &valid_form(&csrf, &when),
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let location = p.location.unwrap();
    let id = arrangement_id(&location);
    let a = api_get(&app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["phone_numbers"][0], CALLER);
    assert_eq!(
        a["windows"],
        serde_json::json!([{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"},
                           {"days": ["mon"], "start": "14:00", "end": "15:00"}])
    );
    assert_eq!(
        a["allowance"],
        serde_json::json!({"count": 1, "per": "day"})
    );
    assert_eq!(a["designated_staff"], serde_json::json!(["alice"]));
    assert_eq!(a["language"], "cy+en");
    assert_eq!(
        a["review_due"],
        when.review().format("%Y-%m-%d").to_string()
    );
    // The rules end at the start of that day in London.
    let ends: DateTime<Utc> = a["ends_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends, at(when.ends(), 0, 0));
    assert_eq!(a["version"], 1);
    let detail = manager.get(&location).await;
    assert!(detail.body.contains("The arrangement was created"));
    assert!(detail.body.contains(
        "Calls on Tuesdays and Thursdays, 10:00 to 12:00; Mondays, 14:00 to 15:00. One call a day. All calls go to Alice Jones."
    ), "{}", detail.body);

    // An agent, with a good CSRF token of their own, may change nothing: 403 and unchanged.
    let agent_csrf = agent.get("/console/").await.csrf();
    let p = agent
        .post(
            &format!("/console/arrangements/{id}/revoke"),
            &[("csrf_token", &agent_csrf), ("reason", "An agent tries")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let mut by_agent = valid_form(&agent_csrf, &when);
    by_agent = replace(&by_agent, "allowance_count", "9");
    by_agent.push(("version", "1".into()));
    let p = post(
        &mut agent,
        &format!("/console/arrangements/{id}/edit"),
        &by_agent,
    )
    .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(
        post(&mut agent, "/console/arrangements", &by_agent)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The manager's own form without its token: refused too.
    let p = manager
        .post(
            &format!("/console/arrangements/{id}/revoke"),
            &[("reason", "No token")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let a = api_get(&app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(
        (a["version"].as_i64(), a["status"].as_str()),
        (Some(1), Some("active"))
    );
    assert_eq!(
        api_get(&app, "/api/v1/arrangements").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Search: a number in another format, a reference in another case; filters.
    for q in ["02920+123456", "%2B442920123456", "psow-2026-00777"] {
        let list = manager.get(&format!("/console/arrangements?q={q}")).await;
        assert!(list.body.contains(&id), "search {q}");
    }
    let list = manager.get("/console/arrangements?q=PSOW-2026-00000").await;
    assert!(list.body.contains("No arrangements match"));
    let list = manager.get("/console/arrangements?status=revoked").await;
    assert!(!list.body.contains(&id));
    let list = manager.get("/console/arrangements?review=overdue").await;
    assert!(!list.body.contains(&id));

    // Edit from two sessions: the first saves; the second's stale form changes nothing.
    let mut other = Visitor::new(&app);
    other.sign_in(MANAGER_TOKEN).await;
    let mine = manager
        .get(&format!("/console/arrangements/{id}/edit"))
        .await;
    let theirs = other.get(&format!("/console/arrangements/{id}/edit")).await;
    assert!(mine.body.contains("name=\"version\" value=\"1\""));
    let mut edited = valid_form(&theirs.csrf(), &when);
    edited = replace(&edited, "allowance_count", "2");
    edited.push(("version", "1".into()));
    let p = post(
        &mut other,
        &format!("/console/arrangements/{id}/edit"),
        &edited,
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let mut stale = valid_form(&mine.csrf(), &when);
    stale = replace(&stale, "decided_by", "Head of Service");
    stale.push(("version", "1".into()));
    let p = post(
        &mut manager,
        &format!("/console/arrangements/{id}/edit"),
        &stale,
    )
    .await;
    assert_eq!(p.status, StatusCode::CONFLICT);
    assert!(p.body.contains("Someone else changed this"));
    assert!(p.body.contains("Number of calls"), "the field that differs");
    assert!(p.body.contains("2 a day") && p.body.contains("1 a day"));
    assert!(p.body.contains("Head of Service"));
    let a = api_get(&app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["version"], 2);
    assert_eq!(a["allowance"]["count"], 2);
    assert_eq!(
        a["decided_by"], "Director of Investigations",
        "nothing overwritten"
    );
    // History says who changed what.
    let detail = manager.get(&format!("/console/arrangements/{id}")).await;
    assert!(detail.body.contains("Version 2: changed"));
    assert!(detail.body.contains("1 a day → 2 a day"), "{}", detail.body);

    // What would happen if they called on Friday at 12:30: refused, next Monday 14:00.
    let [d, m, y] = ymd(when.friday);
    let p = manager
        .get(&format!(
            "/console/arrangements/{id}/what-if?number=%2B442920123456&at-day={d}&at-month={m}&at-year={y}&at_time=12:30"
        ))
        .await;
    assert_eq!(p.status, 200);
    assert!(
        p.body
            .contains("Refused: outside the caller&#39;s permitted times")
            || p.body
                .contains("Refused: outside the caller's permitted times"),
        "{}",
        p.body
    );
    let next = shown(at(when.monday(), 14, 0));
    assert!(p.body.contains(&next), "{next} in {}", p.body);
    assert!(p.body.contains("What the caller hears"));
    let p = manager
        .get(&format!(
            "/console/arrangements/{id}/what-if?at-day=31&at-month=2&at-year={y}&at_time=25:00"
        ))
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Enter a real date"));

    // A review that continues needs the next date; then it is recorded.
    let next_review = when.review() + Days::new(30);
    let [nd, nm, ny] = ymd(next_review);
    let csrf = detail.csrf();
    let p = manager
        .post(
            &format!("/console/arrangements/{id}/reviews"),
            &[("csrf_token", &csrf), ("outcome", "continue")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("href=\"#review-next_review_due-day\""));
    let p = manager
        .post(
            &format!("/console/arrangements/{id}/reviews"),
            &[
                ("csrf_token", &csrf),
                ("outcome", "continue"),
                ("review-next_review_due-day", &nd),
                ("review-next_review_due-month", &nm),
                ("review-next_review_due-year", &ny),
                ("review-notes", "Calls have been calmer"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let a = api_get(&app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["review_due"], next_review.format("%Y-%m-%d").to_string());

    // An appeal, then its decision (once).
    let p = manager
        .post(
            &format!("/console/arrangements/{id}/appeals"),
            &[
                ("csrf_token", &csrf),
                ("appeal-grounds", "I need to call on Fridays"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let detail = manager.get(&format!("/console/arrangements/{id}")).await;
    assert!(detail.body.contains("Open appeal"));
    let appeals = api_get(&app, "/api/v1/appeals?status=open").await;
    let appeal = appeals["items"][0]["id"].as_str().unwrap().to_owned();
    let p = manager
        .post(
            &format!("/console/appeals/{appeal}/decision"),
            &[("csrf_token", &csrf), ("outcome", "dismissed")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Enter who decided the appeal"));
    let p = manager
        .post(
            &format!("/console/appeals/{appeal}/decision"),
            &[
                ("csrf_token", &csrf),
                ("outcome", "dismissed"),
                ("decision-1-decided_by", "Head of Service"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let ap = api_get(&app, &format!("/api/v1/appeals/{appeal}")).await;
    assert_eq!(ap["status"], "decided");
    assert_eq!(ap["outcome"], "dismissed");
    assert_eq!(ap["decided_by"], "Head of Service");
    let p = manager
        .post(
            &format!("/console/appeals/{appeal}/decision"),
            &[
                ("csrf_token", &csrf),
                ("outcome", "upheld"),
                ("decision-1-decided_by", "Someone"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::CONFLICT);

    // The Welsh letter: a preview, and a PDF download.
    let p = manager
        .get(&format!(
            "/console/arrangements/{id}/letter?kind=notice&language=cy"
        ))
        .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("lang=\"cy\""));
    assert!(p.body.contains("Download as PDF"));
    let pdf = reqwest::Client::new()
        .get(format!(
            "{}/console/arrangements/{id}/letter.pdf?kind=notice&language=cy",
            app.url
        ))
        .header(
            "cookie",
            format!("fairline_console={}", manager.cookies["fairline_console"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF"));

    // A Twilio call from that number now, a Friday at 12:00: refused by the console's rules.
    let call = sid(0x1707);
    incoming_call(&app, CALLER, &call).await;
    let mut refused = false;
    for _ in 0..50 {
        let d = api_get(&app, "/api/v1/decisions?phone=%2B442920123456").await;
        if let Some(item) = d["items"].as_array().and_then(|v| v.first()) {
            assert_eq!(item["outcome"], "refuse");
            assert_eq!(item["reason"], "outside_window");
            assert_eq!(item["arrangement_id"], id.as_str());
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the webhook's decision is in the log");
    let detail = manager.get(&format!("/console/arrangements/{id}")).await;
    assert!(detail.body.contains("Refused: outside the caller"));

    // Revoke: a reason is needed; then it is revoked.
    let p = manager
        .get(&format!("/console/arrangements/{id}/revoke"))
        .await;
    assert!(p.body.contains("Are you sure"));
    let p = manager
        .post(
            &format!("/console/arrangements/{id}/revoke"),
            &[("csrf_token", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    let p = manager
        .post(
            &format!("/console/arrangements/{id}/revoke"),
            &[("csrf_token", &csrf), ("reason", "The customer moved away")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let a = api_get(&app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(a["status"], "revoked");
    let list = manager.get("/console/arrangements?status=revoked").await;
    assert!(list.body.contains(&id));
    // A revoked arrangement's edit form is not offered, and a stale one changes nothing.
    let p = manager
        .get(&format!("/console/arrangements/{id}/edit"))
        .await;
    assert!(p.body.contains("This arrangement has been revoked"));
    let mut late = valid_form(&csrf, &when);
    late.push(("version", a["version"].to_string()));
    let p = post(
        &mut manager,
        &format!("/console/arrangements/{id}/edit"),
        &late,
    )
    .await;
    assert_eq!(p.status, StatusCode::CONFLICT);
    assert!(
        p.body.contains("This arrangement has been revoked"),
        "{}",
        p.body
    );
    let after = api_get(&app, &format!("/api/v1/arrangements/{id}")).await;
    assert_eq!(after["version"], a["version"]);
}

#[tokio::test]
async fn console_arrangements_on_sqlite() {
    journey(Backend::Sqlite, "console_arrangements_sqlite").await;
}

#[tokio::test]
async fn console_arrangements_on_postgres() {
    journey(Backend::Postgres, "console_arrangements_pg").await;
}

/// The list's paging (20 a page, keyset), its review filters and the open-appeals view.
#[tokio::test]
async fn console_arrangement_list_pages_and_filters() {
    let when = When::new();
    let Some(app) = spawn_console(
        Backend::Sqlite,
        "console_arrangement_list",
        "http://127.0.0.1:9",
        Some(ManualClock::new(when.now)),
        |_| {},
    )
    .await
    else {
        return;
    };
    // 22 arrangements: the first overdue for review, the second due in 10 days, the rest later.
    let mut ids = Vec::new();
    for i in 0..22u32 {
        let review = match i {
            0 => when.friday - Days::new(1),
            1 => when.friday + Days::new(10),
            _ => when.friday + Days::new(60),
        };
        let a = app
            .create_arrangement(crate::app::arrangement(
                &format!("+4429200001{i:02}"),
                serde_json::json!({"customer_ref": format!("REF-{i:03}"),
                                   "designated_staff": ["alice"],
                                   "review_due": review.format("%Y-%m-%d").to_string()}),
            ))
            .await;
        ids.push(a["id"].as_str().unwrap().to_owned());
    }
    let mut manager = Visitor::new(&app);
    manager.sign_in(MANAGER_TOKEN).await;
    let rows = |p: &Page| {
        ids.iter()
            .filter(|id| p.body.contains(&format!("/console/arrangements/{id}\"")))
            .count()
    };
    let first = manager.get("/console/arrangements").await;
    assert_eq!(rows(&first), 20);
    assert!(first.body.contains("Next page"));
    assert!(!first.body.contains("First page"));
    let marker = "href=\"/console/arrangements?after=";
    let start = first.body.find(marker).expect("a next link") + "href=\"".len();
    let end = start + first.body[start..].find('"').unwrap();
    let next = first.body[start..end].replace("&amp;", "&");
    let second = manager.get(&next).await;
    assert_eq!(rows(&second), 2);
    assert!(second.body.contains("First page"));
    assert!(!second.body.contains("Next page"));

    let overdue = manager.get("/console/arrangements?review=overdue").await;
    assert_eq!(rows(&overdue), 1);
    assert!(overdue.body.contains("REF-000") && overdue.body.contains("Review overdue"));
    let due = manager.get("/console/arrangements?review=due").await;
    assert_eq!(rows(&due), 1);
    assert!(due.body.contains("REF-001"));
    let home = manager.get("/console/").await;
    assert!(home.body.contains("<span class=\"fl-count__number\">1</span><span class=\"fl-count__label\">review overdue</span>"), "{}", home.body);
    assert!(home.body.contains("<span class=\"fl-count__number\">1</span><span class=\"fl-count__label\">review due in the next 14 days</span>"));

    // An appeal against the 5th: the open-appeals view lists it alone, with its badge.
    let p = manager
        .get(&format!("/console/arrangements/{}", ids[4]))
        .await;
    let csrf = p.csrf();
    let p = manager
        .post(
            &format!("/console/arrangements/{}/appeals", ids[4]),
            &[("csrf_token", &csrf), ("appeal-grounds", "Unfair")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let open = manager.get("/console/arrangements?appeals=open").await;
    assert_eq!(rows(&open), 1);
    assert!(open.body.contains("REF-004") && open.body.contains("Open appeal"));
    // Search by reference, any case; a reference that is not there.
    let found = manager.get("/console/arrangements?q=ref-021").await;
    assert_eq!(rows(&found), 1);
    assert!(found.body.contains("REF-021"));
    app.stop().await;
}
