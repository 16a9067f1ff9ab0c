//! The Arrangements pages (SPEC §12–§13, issue 17) in a real headless Chromium, in the same
//! set-up as `console_browser.rs`: a manager creates an arrangement with two windows and an
//! allowance through the form using the keyboard alone, meets a validation error and fixes it,
//! edits it, meets a stale-version conflict from a second browser session, asks what would
//! happen if they called outside the windows, records a review and an appeal decision,
//! downloads the Welsh letter as a PDF (read back with `pdftotext`), and then a signed Twilio
//! webhook for the number is decided by the new rules. axe-core checks every page and error
//! state; screenshots 17–30 go to `docs/console/`.

use chrono::{Datelike, NaiveDate};
use fairline::clock::ManualClock;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};

use crate::app::{TestApp, AGENT_TOKEN, MANAGER_TOKEN};
use crate::console::{incoming_call, sid, spawn_console, Backend, CALLER};
use crate::console_arrangements::{at, shown, When};
use crate::console_browser::{
    axe, body_text, browser, check, press, sign_in, start_driver, tab_to, wait_for_text, wait_title,
};

const SUFFIX: &str = " – Fairline staff console";
const REF: &str = "PSOW-2026-00777";

fn titled(t: &str) -> String {
    format!("{t}{SUFFIX}")
}

/// Type into whatever has the focus.
async fn type_text(c: &Client, text: &str) {
    c.active_element()
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Tab to the element with this id and type into it.
async fn tab_type(c: &Client, id: &str, text: &str) {
    tab_to(c, "id", |v| v == id).await;
    type_text(c, text).await;
}

/// Tab to the checkbox with this name and value, and tick it with Space.
async fn tab_tick(c: &Client, name: &str, value: &str) {
    let css = format!("input[name='{name}'][value='{value}']");
    let id = c
        .find(Locator::Css(&css))
        .await
        .unwrap()
        .attr("id")
        .await
        .unwrap()
        .unwrap();
    tab_to(c, "id", |v| v == id).await;
    press(c, Key::Space).await;
}

/// Tab into a radio group and choose `value` with the arrow keys (Space when it has focus but
/// is not chosen yet).
async fn tab_choose(c: &Client, name: &str, value: &str) {
    tab_to(c, "name", |v| v == name).await;
    for _ in 0..8 {
        let el = c.active_element().await.unwrap();
        if el.attr("value").await.unwrap().as_deref() == Some(value) {
            press(c, Key::Space).await;
            return;
        }
        press(c, Key::Down).await;
    }
    panic!("the arrow keys never reached {name}={value}");
}

/// Tab to a date input's three fields and type the date.
async fn tab_date(c: &Client, id: &str, d: NaiveDate) {
    tab_type(c, &format!("{id}-day"), &d.day().to_string()).await;
    tab_type(c, &format!("{id}-month"), &d.month().to_string()).await;
    tab_type(c, &format!("{id}-year"), &d.year().to_string()).await;
}

/// Replace an input's value (by mouse-free scripting of the field, as a person retyping).
async fn fill(c: &Client, id: &str, text: &str) {
    let el = c.find(Locator::Id(id)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

async fn fill_date(c: &Client, id: &str, d: NaiveDate) {
    fill(c, &format!("{id}-day"), &d.day().to_string()).await;
    fill(c, &format!("{id}-month"), &d.month().to_string()).await;
    fill(c, &format!("{id}-year"), &d.year().to_string()).await;
}

async fn click_button(c: &Client, text: &str) {
    c.find(Locator::XPath(&format!(
        "//main//button[normalize-space()='{text}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
}

async fn click_id(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The create form by keyboard alone, with times 1 ending before it starts.
async fn create_by_keyboard(c: &Client, when: &When) {
    tab_type(c, "customer_ref", REF).await;
    tab_type(c, "customer_name", "Rhys Morgan").await;
    tab_type(c, "phone_numbers", "02920 123456").await;
    tab_tick(c, "w0_days", "tue").await;
    tab_tick(c, "w0_days", "thu").await;
    tab_type(c, "w0_start", "10:00").await;
    tab_type(c, "w0_end", "09:00").await;
    tab_tick(c, "w1_days", "mon").await;
    tab_type(c, "w1_start", "14:00").await;
    tab_type(c, "w1_end", "15:00").await;
    tab_type(c, "allowance_count", "1").await;
    tab_choose(c, "allowance_per", "day").await;
    tab_tick(c, "designated_staff", "alice").await;
    tab_choose(c, "language", "cy+en").await;
    tab_date(c, "ends_at", when.ends()).await;
    tab_date(c, "review_due", when.review()).await;
    tab_type(c, "reason", "Repeated abusive calls to the casework team").await;
    tab_type(c, "decided_by", "Director of Investigations").await;
    tab_type(
        c,
        "customer_explanation",
        "Some of your calls were abusive to our staff.",
    )
    .await;
    tab_choose(c, "equality_advice_sought", "yes").await;
    tab_to(c, "type", |t| t == "submit").await;
    let label = c.active_element().await.unwrap().text().await.unwrap();
    assert_eq!(label, "Save arrangement");
    press(c, Key::Enter).await;
}

/// Create (an error, then fixed); returns the arrangement's id.
async fn create(c: &Client, base: &str, when: &When) -> String {
    c.goto(&format!("{base}/console/arrangements"))
        .await
        .unwrap();
    wait_title(c, &titled("Arrangements")).await;
    let text = body_text(c).await;
    assert!(text.contains("PSOW-2026-00101") && text.contains("PSOW-2026-00102"));
    assert_eq!(text.matches("Review overdue").count(), 1, "{text}");
    check(c, "17-arrangements").await;
    c.find(Locator::LinkText("Create an arrangement"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_title(c, &titled("Create an arrangement")).await;
    check(c, "18-create").await;
    create_by_keyboard(c, when).await;
    wait_title(c, &titled("Error: Create an arrangement")).await;
    let text = body_text(c).await;
    assert!(text.contains("There is a problem"), "{text}");
    assert_eq!(
        text.matches("The end of times 1 must be later than its start")
            .count(),
        2,
        "in the summary and at the field: {text}"
    );
    check(c, "19-create-errors").await;
    // The summary's link takes the focus to the field.
    c.find(Locator::Css(".govuk-error-summary a[href='#w0_days']"))
        .await
        .unwrap();
    fill(c, "w0_end", "12:00").await;
    click_button(c, "Save arrangement").await;
    wait_title(c, &titled(&format!("Arrangement {REF}"))).await;
    let text = body_text(c).await;
    assert!(text.contains("The arrangement was created"));
    assert!(
        text.contains(
            "Calls on Tuesdays and Thursdays, 10:00 to 12:00; Mondays, 14:00 to 15:00. One call a day. All calls go to Alice Jones."
        ),
        "{text}"
    );
    check(c, "20-arrangement").await;
    let url = c.current_url().await.unwrap();
    url.path()
        .trim_start_matches("/console/arrangements/")
        .to_owned()
}

/// Two managers edit at once: the second save meets "someone else changed this".
async fn stale_edit(c: &Client, other: &Client, base: &str, id: &str) {
    let edit = format!("{base}/console/arrangements/{id}/edit");
    c.goto(&edit).await.unwrap();
    other.goto(&edit).await.unwrap();
    wait_title(c, &titled(&format!("Change arrangement {REF}"))).await;
    check(c, "21-edit").await;
    wait_title(other, &titled(&format!("Change arrangement {REF}"))).await;
    // The edit form's error state first: no reason.
    other
        .find(Locator::Id("reason"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    click_button(other, "Save arrangement").await;
    wait_title(other, &titled(&format!("Error: Change arrangement {REF}"))).await;
    assert!(body_text(other)
        .await
        .contains("Enter why the arrangement is needed"));
    axe(other, "edit errors").await;
    fill(
        other,
        "reason",
        "Repeated abusive calls to the casework team",
    )
    .await;
    fill(other, "allowance_count", "2").await;
    click_button(other, "Save arrangement").await;
    wait_for_text(other, "The arrangement was changed", true).await;
    fill(c, "decided_by", "Head of Service").await;
    click_button(c, "Save arrangement").await;
    wait_title(c, &titled("Someone else changed this")).await;
    let text = body_text(c).await;
    assert!(text.contains("Your changes have not been saved"), "{text}");
    assert!(
        text.contains("2 a day") && text.contains("1 a day"),
        "{text}"
    );
    assert!(text.contains("Head of Service"));
    check(c, "22-someone-else-changed-this").await;
}

/// "What would happen if they called" on the Friday at 12:30: refused; next, Monday 14:00.
async fn what_if(c: &Client, base: &str, id: &str, when: &When) {
    c.goto(&format!("{base}/console/arrangements/{id}"))
        .await
        .unwrap();
    wait_title(c, &titled(&format!("Arrangement {REF}"))).await;
    let text = body_text(c).await;
    assert!(text.contains("Version 2: changed"), "{text}");
    assert!(text.contains("1 a day → 2 a day"), "{text}");
    // Its error state: no such date or time.
    fill_date(c, "at", when.friday).await;
    fill(c, "at-day", "31").await;
    fill(c, "at-month", "2").await;
    fill(c, "at_time", "25:00").await;
    click_button(c, "Check").await;
    wait_title(c, &titled(&format!("Error: Arrangement {REF}"))).await;
    let text = body_text(c).await;
    assert!(text.contains("Enter a real date") && text.contains("Enter a time like 14:30"));
    axe(c, "what-if errors").await;
    fill_date(c, "at", when.friday).await;
    fill(c, "at_time", "12:30").await;
    click_button(c, "Check").await;
    wait_for_text(c, "The next time they may call", true).await;
    let text = body_text(c).await;
    assert!(
        text.contains("Refused: outside the caller's permitted times"),
        "{text}"
    );
    let next = shown(at(when.monday(), 14, 0));
    assert!(
        text.contains(&format!("The next time they may call: {next}.")),
        "{next} in {text}"
    );
    assert!(text.contains("What the caller hears"));
    check(c, "23-what-if").await;
}

/// A review (its error, then saved), an appeal (home counts it) and its decision.
async fn review_and_appeal(c: &Client, base: &str, id: &str, when: &When) {
    let title = titled(&format!("Arrangement {REF}"));
    click_id(c, "review-outcome").await;
    click_button(c, "Save review").await;
    wait_title(c, &format!("Error: {title}")).await;
    assert!(body_text(c)
        .await
        .contains("Enter the date of the next review, because the rules continue"));
    check(c, "24-review-errors").await;
    let next = when.review() + chrono::Days::new(30);
    fill_date(c, "review-next_review_due", next).await;
    fill(c, "review-notes", "Calls have been calmer").await;
    click_button(c, "Save review").await;
    wait_for_text(c, "The review was saved", true).await;
    assert!(body_text(c).await.contains("Calls have been calmer"));
    click_button(c, "Save appeal").await;
    wait_title(c, &format!("Error: {title}")).await;
    assert!(body_text(c)
        .await
        .contains("Enter the customer's grounds for appealing"));
    axe(c, "appeal errors").await;
    fill(c, "appeal-grounds", "I need to call on Fridays").await;
    click_button(c, "Save appeal").await;
    wait_for_text(c, "The appeal was saved", true).await;
    assert!(body_text(c).await.contains("Open appeal"));
    check(c, "25-appeal-open").await;
    // Home: one review overdue, one due within 14 days, one open appeal.
    c.goto(&format!("{base}/console/")).await.unwrap();
    wait_title(c, &titled("Home")).await;
    let text = body_text(c).await;
    for words in [
        "1\nreview overdue",
        "1\nreview due in the next 14 days",
        "1\nopen appeal",
    ] {
        assert!(text.contains(words), "{words:?} in {text}");
    }
    check(c, "30-home-manager-arrangements").await;
    c.find(Locator::Css("a[href='/console/arrangements?appeals=open']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_title(c, &titled("Arrangements")).await;
    assert!(body_text(c).await.contains(REF));
    c.goto(&format!("{base}/console/arrangements/{id}#appeals"))
        .await
        .unwrap();
    wait_title(c, &title).await;
    click_button(c, "Save decision").await;
    wait_title(c, &format!("Error: {title}")).await;
    let text = body_text(c).await;
    assert!(text.contains("Select the decision on the appeal"), "{text}");
    assert!(text.contains("Enter who decided the appeal"), "{text}");
    axe(c, "appeal decision errors").await;
    click_id(c, "decision-1-outcome-2").await;
    fill(c, "decision-1-decided_by", "Head of Service").await;
    click_button(c, "Save decision").await;
    wait_for_text(c, "The decision on the appeal was saved", true).await;
    let text = body_text(c).await;
    assert!(text.contains("Dismissed: the rules stay"), "{text}");
    assert!(!text.contains("Open appeal"));
    wait_title(c, &title).await;
    check(c, "26-appeal-decided").await;
}

/// The Welsh letter: preview, then the PDF (its text read back with pdftotext).
async fn welsh_letter(c: &Client, app: &TestApp, base: &str, id: &str) {
    c.goto(&format!(
        "{base}/console/arrangements/{id}/letter?kind=notice&language=cy"
    ))
    .await
    .unwrap();
    wait_title(c, &titled("Letter preview")).await;
    let text = body_text(c).await;
    assert!(text.contains("Annwyl Rhys Morgan"), "{text}");
    check(c, "27-letter-welsh").await;
    let href = c
        .find(Locator::LinkText("Download as PDF"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let cookie = c.get_named_cookie("fairline_console").await.unwrap();
    let res = reqwest::Client::new()
        .get(format!("{}{href}", app.url))
        .header("cookie", format!("fairline_console={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("letter.pdf");
    std::fs::write(&file, res.bytes().await.unwrap()).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(out.status.success());
    let pdf_text = String::from_utf8(out.stdout).unwrap();
    assert!(pdf_text.contains("Annwyl Rhys Morgan"), "{pdf_text}");
    assert!(pdf_text.contains(REF));
    assert!(!pdf_text.contains("Dear Rhys Morgan"), "Welsh only");
}

/// A signed Twilio call from the number, now (the Friday at 12:00): refused by these rules.
async fn webhook_decided(c: &Client, app: &TestApp, base: &str, id: &str) {
    incoming_call(app, CALLER, &sid(0x1717)).await;
    let number = fairline::domain::PhoneNumber::parse(CALLER).unwrap();
    let mut decided = None;
    for _ in 0..50 {
        let log = app
            .state
            .store
            .list_decisions(&fairline::store::DecisionFilter {
                phone: Some(number.clone()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(d) = log.into_iter().next() {
            decided = Some(d);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let d = decided.expect("the webhook's decision is in the log");
    assert_eq!(d.decision.outcome, fairline::engine::Outcome::Refuse);
    assert_eq!(
        d.decision.arrangement_id.as_ref().map(|a| a.as_str()),
        Some(id)
    );
    c.goto(&format!("{base}/console/arrangements/{id}#decisions"))
        .await
        .unwrap();
    wait_for_text(c, "Calls decided for these numbers", true).await;
    let text = body_text(c).await;
    assert!(
        text.contains("Refused: outside the caller's permitted times"),
        "{text}"
    );
}

/// Revoke: the confirmation page, its error, then revoked.
async fn revoke(c: &Client, base: &str, id: &str) {
    c.goto(&format!("{base}/console/arrangements/{id}/revoke"))
        .await
        .unwrap();
    wait_title(c, &titled("Revoke arrangement")).await;
    check(c, "28-revoke").await;
    click_button(c, "Revoke arrangement").await;
    wait_title(c, &titled("Error: Revoke arrangement")).await;
    assert!(body_text(c).await.contains("Enter why you are revoking it"));
    axe(c, "revoke errors").await;
    fill(c, "reason", "The customer moved away").await;
    click_button(c, "Revoke arrangement").await;
    wait_for_text(c, "The arrangement was revoked", true).await;
    assert!(body_text(c).await.contains("Revoked"));
}

#[tokio::test]
async fn arrangements_in_a_real_browser() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let when = When::new();
    let clock = ManualClock::new(when.now);
    let app = spawn_console(
        Backend::Sqlite,
        "arrangements_browser",
        "http://127.0.0.1:9",
        Some(clock),
        |c| c.server.public_url = "http://localhost".into(),
    )
    .await
    .unwrap();
    // Two more: one whose review is overdue, one due within 14 days.
    for (n, (number, review)) in [
        ("+442920000001", when.friday - chrono::Days::new(2)),
        ("+442920000002", when.friday + chrono::Days::new(10)),
    ]
    .into_iter()
    .enumerate()
    {
        app.create_arrangement(crate::app::arrangement(
            number,
            serde_json::json!({"customer_ref": format!("PSOW-2026-0010{}", n + 1),
                               "review_due": review.format("%Y-%m-%d").to_string(),
                               "designated_staff": ["bob"]}),
        ))
        .await;
    }
    let base = format!("http://localhost:{}", app.addr.port());
    let c = browser(&driver).await;
    sign_in(&c, &base, MANAGER_TOKEN).await;
    wait_title(&c, &titled("Home")).await;
    let id = create(&c, &base, &when).await;

    // The list finds it by the number written another way.
    c.goto(&format!("{base}/console/arrangements?q=02920+123456"))
        .await
        .unwrap();
    wait_title(&c, &titled("Arrangements")).await;
    assert!(body_text(&c).await.contains(REF));
    check(&c, "29-arrangements-search").await;

    let other = browser(&driver).await;
    sign_in(&other, &base, MANAGER_TOKEN).await;
    wait_title(&other, &titled("Home")).await;
    stale_edit(&c, &other, &base, &id).await;
    what_if(&c, &base, &id, &when).await;
    review_and_appeal(&c, &base, &id, &when).await;
    welsh_letter(&c, &app, &base, &id).await;
    webhook_decided(&c, &app, &base, &id).await;

    revoke(&c, &base, &id).await;

    // An agent is refused the Arrangements pages.
    other.delete_all_cookies().await.unwrap();
    sign_in(&other, &base, AGENT_TOKEN).await;
    wait_title(&other, &titled("Home")).await;
    other
        .goto(&format!("{base}/console/arrangements/{id}"))
        .await
        .unwrap();
    wait_for_text(
        &other,
        "Only managers can see and change arrangements",
        true,
    )
    .await;
    check(&other, "31-arrangements-refused-to-agent").await;

    other.close().await.unwrap();
    c.close().await.unwrap();
    app.stop().await;
}
