//! The arrangement form (SPEC §12): what a manager typed, turned into the JSON API's body so
//! that the API's own validation (`crate::api::arrangements::check`) judges it, and the API's
//! `errors[].field` mapped back onto the form's fields in plain words. Also each version's
//! fields in words, for history and for a stale edit ("theirs" vs. "yours"). No HTTP here.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::domain::{AllowancePeriod, Arrangement, ArrangementKind, Day};

use super::views::FieldProblem;

/// How many windows the form offers.
pub const WINDOW_SLOTS: usize = 3;

/// A GOV.UK date input: day, month and year as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DateParts {
    pub day: String,
    pub month: String,
    pub year: String,
}

impl DateParts {
    pub fn of(d: NaiveDate) -> Self {
        use chrono::Datelike;
        DateParts {
            day: d.day().to_string(),
            month: d.month().to_string(),
            year: d.year().to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.day.trim().is_empty() && self.month.trim().is_empty() && self.year.trim().is_empty()
    }

    /// The date, when the three parts make a real one.
    pub fn date(&self) -> Option<NaiveDate> {
        let d = self.day.trim().parse().ok()?;
        let m = self.month.trim().parse().ok()?;
        let y: i32 = self.year.trim().parse().ok()?;
        if !(1000..=9999).contains(&y) {
            return None;
        }
        NaiveDate::from_ymd_opt(y, m, d)
    }

    /// The date as the API takes it, or what was typed (so the API reports it).
    fn api_text(&self) -> String {
        match self.date() {
            Some(d) => d.format("%Y-%m-%d").to_string(),
            None => format!(
                "{}-{}-{}",
                self.year.trim(),
                self.month.trim(),
                self.day.trim()
            ),
        }
    }
}

/// One window of the form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowSlot {
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

impl WindowSlot {
    fn is_empty(&self) -> bool {
        self.days.is_empty() && self.start.trim().is_empty() && self.end.trim().is_empty()
    }
}

/// The arrangement form as typed (kept to show it again).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrangementForm {
    pub customer_ref: String,
    pub customer_name: String,
    /// One number a line (commas also separate).
    pub phone_numbers: String,
    pub kind: String,
    pub windows: Vec<WindowSlot>,
    pub allowance_count: String,
    pub allowance_per: String,
    pub designated_staff: Vec<String>,
    pub max_call_minutes: String,
    pub language: String,
    pub reason: String,
    pub decided_by: String,
    pub equality_advice_sought: String,
    pub advocate: String,
    pub customer_explanation: String,
    pub starts_at: DateParts,
    pub ends_at: DateParts,
    pub review_due: DateParts,
    /// The version the edit form was loaded at.
    pub version: String,
}

pub fn day_code(d: Day) -> &'static str {
    match d {
        Day::Mon => "mon",
        Day::Tue => "tue",
        Day::Wed => "wed",
        Day::Thu => "thu",
        Day::Fri => "fri",
        Day::Sat => "sat",
        Day::Sun => "sun",
    }
}

pub fn day_name(d: Day) -> &'static str {
    match d {
        Day::Mon => "Monday",
        Day::Tue => "Tuesday",
        Day::Wed => "Wednesday",
        Day::Thu => "Thursday",
        Day::Fri => "Friday",
        Day::Sat => "Saturday",
        Day::Sun => "Sunday",
    }
}

/// The local date of an instant.
fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

impl ArrangementForm {
    /// The empty form with its window slots.
    pub fn blank() -> Self {
        ArrangementForm {
            windows: vec![WindowSlot::default(); WINDOW_SLOTS],
            ..Default::default()
        }
    }

    /// From a urlencoded form's pairs (checkboxes repeat their name).
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = ArrangementForm::blank();
        for (k, v) in pairs {
            match k.as_str() {
                "customer_ref" => f.customer_ref = v.clone(),
                "customer_name" => f.customer_name = v.clone(),
                "phone_numbers" => f.phone_numbers = v.clone(),
                "kind" => f.kind = v.clone(),
                "allowance_count" => f.allowance_count = v.clone(),
                "allowance_per" => f.allowance_per = v.clone(),
                "designated_staff" => f.designated_staff.push(v.clone()),
                "max_call_minutes" => f.max_call_minutes = v.clone(),
                "language" => f.language = v.clone(),
                "reason" => f.reason = v.clone(),
                "decided_by" => f.decided_by = v.clone(),
                "equality_advice_sought" => f.equality_advice_sought = v.clone(),
                "advocate" => f.advocate = v.clone(),
                "customer_explanation" => f.customer_explanation = v.clone(),
                "version" => f.version = v.clone(),
                "starts_at-day" => f.starts_at.day = v.clone(),
                "starts_at-month" => f.starts_at.month = v.clone(),
                "starts_at-year" => f.starts_at.year = v.clone(),
                "ends_at-day" => f.ends_at.day = v.clone(),
                "ends_at-month" => f.ends_at.month = v.clone(),
                "ends_at-year" => f.ends_at.year = v.clone(),
                "review_due-day" => f.review_due.day = v.clone(),
                "review_due-month" => f.review_due.month = v.clone(),
                "review_due-year" => f.review_due.year = v.clone(),
                other => {
                    // w{i}_days, w{i}_start, w{i}_end
                    let Some(rest) = other.strip_prefix('w') else {
                        continue;
                    };
                    let Some((i, part)) = rest.split_once('_') else {
                        continue;
                    };
                    let Some(slot) = i.parse::<usize>().ok().and_then(|i| f.windows.get_mut(i))
                    else {
                        continue;
                    };
                    match part {
                        "days" => slot.days.push(v.clone()),
                        "start" => slot.start = v.clone(),
                        "end" => slot.end = v.clone(),
                        _ => {}
                    }
                }
            }
        }
        f
    }

    /// The form filled in from a stored arrangement (for editing).
    pub fn of(a: &Arrangement, tz: Tz) -> Self {
        let mut windows: Vec<WindowSlot> = a
            .windows
            .iter()
            .map(|w| WindowSlot {
                days: w.days.iter().map(|d| day_code(*d).to_owned()).collect(),
                start: w.start.to_string(),
                end: w.end.to_string(),
            })
            .collect();
        while windows.len() < WINDOW_SLOTS {
            windows.push(WindowSlot::default());
        }
        ArrangementForm {
            customer_ref: a.customer_ref.clone(),
            customer_name: a.customer_name.clone().unwrap_or_default(),
            phone_numbers: a
                .phone_numbers
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect::<Vec<_>>()
                .join("\n"),
            kind: match a.kind {
                ArrangementKind::Restricted => "restricted".into(),
                ArrangementKind::Blocked => "blocked".into(),
            },
            windows,
            allowance_count: a
                .allowance
                .map(|al| al.count.to_string())
                .unwrap_or_default(),
            allowance_per: a
                .allowance
                .map(|al| match al.per {
                    AllowancePeriod::Day => "day".to_owned(),
                    AllowancePeriod::Week => "week".to_owned(),
                })
                .unwrap_or_default(),
            designated_staff: a
                .designated_staff
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            max_call_minutes: a
                .max_call_minutes
                .map(|m| m.to_string())
                .unwrap_or_default(),
            language: a.language.to_string(),
            reason: a.reason.clone(),
            decided_by: a.decided_by.clone(),
            equality_advice_sought: if a.equality_advice_sought {
                "yes"
            } else {
                "no"
            }
            .into(),
            advocate: a.advocate.clone().unwrap_or_default(),
            customer_explanation: a.customer_explanation.clone().unwrap_or_default(),
            starts_at: DateParts::of(local_date(tz, a.starts_at)),
            ends_at: DateParts::of(local_date(tz, a.ends_at)),
            review_due: DateParts::of(a.review_due),
            version: a.version.to_string(),
        }
    }

    /// The phone numbers as listed (blank lines dropped).
    pub fn phone_list(&self) -> Vec<String> {
        self.phone_numbers
            .split(['\n', ',', ';'])
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The indexes of the window slots that were filled in, in order: the API's
    /// `windows[i]` is slot `slots[i]`.
    pub fn filled_slots(&self) -> Vec<usize> {
        self.windows
            .iter()
            .enumerate()
            .filter(|(_, w)| !w.is_empty())
            .map(|(i, _)| i)
            .collect()
    }

    /// The body the JSON API takes (SPEC §5). Dates are local (the organisation's time
    /// zone): a start or end is the beginning of that day, except that an edit keeps the
    /// stored instant when its day is unchanged.
    pub fn to_body(&self, tz: Tz, existing: Option<&Arrangement>) -> Value {
        let mut m = Map::new();
        let text = |m: &mut Map<String, Value>, key: &str, v: &str| {
            if !v.trim().is_empty() {
                m.insert(key.into(), Value::String(v.trim().to_owned()));
            }
        };
        text(&mut m, "customer_ref", &self.customer_ref);
        text(&mut m, "customer_name", &self.customer_name);
        text(&mut m, "kind", &self.kind);
        text(&mut m, "language", &self.language);
        text(&mut m, "reason", &self.reason);
        text(&mut m, "decided_by", &self.decided_by);
        text(&mut m, "advocate", &self.advocate);
        text(&mut m, "customer_explanation", &self.customer_explanation);
        let phones = self.phone_list();
        if !phones.is_empty() {
            m.insert("phone_numbers".into(), json!(phones));
        }
        let windows: Vec<Value> = self
            .filled_slots()
            .into_iter()
            .map(|i| {
                let w = &self.windows[i];
                json!({"days": w.days, "start": w.start.trim(), "end": w.end.trim()})
            })
            .collect();
        m.insert("windows".into(), Value::Array(windows));
        let count = self.allowance_count.trim();
        let per = self.allowance_per.trim();
        if !count.is_empty() || !per.is_empty() {
            let count = match count.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => json!(count),
            };
            let per = if per.is_empty() {
                Value::Null
            } else {
                json!(per)
            };
            m.insert("allowance".into(), json!({"count": count, "per": per}));
        }
        m.insert("designated_staff".into(), json!(self.designated_staff));
        let minutes = self.max_call_minutes.trim();
        if !minutes.is_empty() {
            let v = match minutes.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => json!(minutes),
            };
            m.insert("max_call_minutes".into(), v);
        }
        m.insert(
            "equality_advice_sought".into(),
            Value::Bool(self.equality_advice_sought == "yes"),
        );
        if let Some(v) = local_day_instant(tz, &self.starts_at, existing.map(|e| e.starts_at)) {
            m.insert("starts_at".into(), v);
        }
        if let Some(v) = local_day_instant(tz, &self.ends_at, existing.map(|e| e.ends_at)) {
            m.insert("ends_at".into(), v);
        }
        if !self.review_due.is_empty() {
            m.insert("review_due".into(), json!(self.review_due.api_text()));
        }
        Value::Object(m)
    }

    /// The API's `errors[]` (field, message) as problems on this form's fields, in the
    /// form's order, one per field, in plain words.
    pub fn problems(&self, errors: &[(String, String)]) -> Vec<FieldProblem> {
        let slots = self.filled_slots();
        let phones = self.phone_list();
        let mut out: Vec<FieldProblem> = Vec::new();
        for (field, message) in errors {
            let p = map_error(field, message, &slots, &phones);
            if !out.iter().any(|o| o.field == p.field) {
                out.push(p);
            }
        }
        out.sort_by_key(|p| field_order(&p.field));
        out
    }
}

/// A start or end date as the API's instant: the beginning of that local day, or the stored
/// instant `kept` when its day is unchanged; what was typed when it is not a date (the API
/// then says what is wrong). `None` when left empty.
fn local_day_instant(tz: Tz, parts: &DateParts, kept: Option<DateTime<Utc>>) -> Option<Value> {
    if parts.is_empty() {
        return None;
    }
    Some(match parts.date() {
        Some(d) if kept.is_some_and(|k| local_date(tz, k) == d) => {
            json!(kept.map(|k| k.to_rfc3339()))
        }
        Some(d) => match tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN)) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                json!(t.with_timezone(&Utc).to_rfc3339())
            }
            chrono::LocalResult::None => json!(parts.api_text()),
        },
        None => json!(parts.api_text()),
    })
}

/// The form's fields, in page order, with the id of each one's first input.
const FORM_FIELDS: [(&str, &str); 19] = [
    ("customer_ref", "customer_ref"),
    ("customer_name", "customer_name"),
    ("phone_numbers", "phone_numbers"),
    ("kind", "kind"),
    ("w0", "w0_days"),
    ("w1", "w1_days"),
    ("w2", "w2_days"),
    ("allowance", "allowance_count"),
    ("designated_staff", "designated_staff"),
    ("max_call_minutes", "max_call_minutes"),
    ("language", "language"),
    ("starts_at", "starts_at-day"),
    ("ends_at", "ends_at-day"),
    ("review_due", "review_due-day"),
    ("reason", "reason"),
    ("decided_by", "decided_by"),
    ("equality_advice_sought", "equality_advice_sought"),
    ("advocate", "advocate"),
    ("customer_explanation", "customer_explanation"),
];

fn field_order(field: &str) -> usize {
    FORM_FIELDS
        .iter()
        .position(|(f, _)| *f == field)
        .unwrap_or(FORM_FIELDS.len())
}

fn anchor(field: &str) -> String {
    FORM_FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, id)| (*id).to_owned())
        .unwrap_or_else(|| "customer_ref".into())
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        id: anchor(field),
        field: field.to_owned(),
        message: message.into(),
    }
}

/// One API error as a problem on the form, in the form's words.
fn map_error(field: &str, message: &str, slots: &[usize], phones: &[String]) -> FieldProblem {
    let indexed = |prefix: &str| -> Option<usize> {
        field
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.split(']').next())
            .and_then(|i| i.parse().ok())
    };
    if field.starts_with("phone_numbers") {
        return phone_problem(
            indexed("phone_numbers").and_then(|i| phones.get(i)),
            message,
        );
    }
    if let Some(i) = indexed("windows") {
        return window_problem(field, message, slots.get(i).copied().unwrap_or(0));
    }
    match field {
        "customer_ref" => required_text_problem(field, message),
        "customer_name" => problem("customer_name", format!("The customer's name {message}")),
        "kind" if message.contains("needs at least one") => problem(
            "kind",
            "Give at least one rule: days and times, a number of calls, or a member of staff",
        ),
        "kind" => problem("kind", "Select whether the caller may call at all"),
        "windows" | "designated_staff" if message.contains("blocked") => problem(
            if field == "windows" {
                "w0"
            } else {
                "designated_staff"
            },
            "Leave this empty when the caller may not call at all",
        ),
        "windows" => problem("w0", "Check the days and times"),
        "allowance" if message.contains("blocked") => problem(
            "allowance",
            "Leave the number of calls empty when the caller may not call at all",
        ),
        "allowance" | "allowance.count" => problem(
            "allowance",
            "Enter the number of calls as a whole number from 1 to 1000",
        ),
        "allowance.per" => problem("allowance", "Select whether the calls are a day or a week"),
        f if f.starts_with("designated_staff") => problem(
            "designated_staff",
            format!("Choose staff from the list ({message})"),
        ),
        "max_call_minutes" => problem(
            "max_call_minutes",
            "Enter the longest call as a whole number of minutes from 1 to 240",
        ),
        "language" => problem("language", "Select the language for calls and letters"),
        "reason" => required_text_problem(field, message),
        "decided_by" => required_text_problem(field, message),
        "advocate" => problem("advocate", format!("The advocate {message}")),
        "customer_explanation" => problem(
            "customer_explanation",
            format!("The explanation for the customer {message}"),
        ),
        "equality_advice_sought" => problem(
            "equality_advice_sought",
            "Select yes if equality advice was sought",
        ),
        "starts_at" | "ends_at" | "review_due" => date_problem(field, message),
        other => problem("customer_ref", format!("{other} {message}")),
    }
}

/// A problem with one of the form's dates.
fn date_problem(field: &str, message: &str) -> FieldProblem {
    let required = message.starts_with("is required");
    let bad_date = message.contains("RFC 3339") || message.contains("YYYY-MM-DD");
    match field {
        "starts_at" if bad_date => problem("starts_at", "The start date must be a real date"),
        "starts_at" => problem("starts_at", format!("The start date {message}")),
        "ends_at" if required => problem("ends_at", "Enter the date the rules end"),
        "ends_at" if bad_date => problem("ends_at", "The end date must be a real date"),
        "ends_at" if message.contains("later than starts_at") => {
            problem("ends_at", "The end date must be after the start date")
        }
        "ends_at" => problem("ends_at", format!("The end date {message}")),
        "review_due" if required => problem("review_due", "Enter the date of the next review"),
        "review_due" if bad_date => problem("review_due", "The review date must be a real date"),
        "review_due" if message.contains("on or before ends_at") => problem(
            "review_due",
            "The review date must be on or before the end date",
        ),
        "review_due" => problem("review_due", format!("The review date {message}")),
        other => problem(other, format!("The date {message}")),
    }
}

/// A problem with a required text field.
fn required_text_problem(field: &str, message: &str) -> FieldProblem {
    let (enter, label) = match field {
        "customer_ref" => ("Enter the customer reference", "The customer reference"),
        "reason" => ("Enter why the arrangement is needed", "The reason"),
        _ => ("Enter who decided it", "Who decided"),
    };
    if message.starts_with("is required") || message.contains("empty") {
        problem(field, enter)
    } else {
        problem(field, format!("{label} {message}"))
    }
}

fn phone_problem(number: Option<&String>, message: &str) -> FieldProblem {
    let msg = match number {
        Some(n) if message.contains("twice") => format!("{n} is listed twice"),
        Some(n) if message.contains("withheld") => {
            format!("{n} is how a withheld number shows: enter a real number")
        }
        Some(n) => format!("{n} is not a phone number: enter it like 02920 123456"),
        None => "Enter one or more phone numbers, one a line".into(),
    };
    problem("phone_numbers", msg)
}

/// A problem with the window in form slot `slot`.
fn window_problem(field: &str, message: &str, slot: usize) -> FieldProblem {
    let key = format!("w{slot}");
    let n = slot + 1;
    let msg = if field.contains(".days") {
        format!("Select the days for times {n}")
    } else if message.contains("later than start") {
        format!("The end of times {n} must be later than its start")
    } else if field.ends_with(".start") {
        format!("Enter the start of times {n} like 10:00")
    } else if field.ends_with(".end") {
        format!("Enter the end of times {n} like 12:00")
    } else {
        format!("Check times {n}")
    };
    problem(&key, msg)
}

/// An arrangement's fields in words, labelled (history, a stale edit).
pub fn fields_in_words(config: &Config, tz: Tz, a: &Arrangement) -> Vec<(&'static str, String)> {
    let none = || "None".to_owned();
    let windows = windows_words(a);
    let allowance = allowance_words(a);
    let staff = staff_words(config, a);
    vec![
        ("Customer reference", a.customer_ref.clone()),
        (
            "Customer name",
            a.customer_name.clone().unwrap_or_else(none),
        ),
        (
            "Phone numbers",
            a.phone_numbers
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "May call",
            match a.kind {
                ArrangementKind::Restricted => "Yes, under rules".into(),
                ArrangementKind::Blocked => "No calls at all".into(),
            },
        ),
        ("Days and times", windows),
        ("Number of calls", allowance),
        ("Designated staff", staff),
        (
            "Longest call",
            a.max_call_minutes
                .map(|m| format!("{m} minutes"))
                .unwrap_or_else(none),
        ),
        ("Language", language_words(&a.language.to_string()).into()),
        ("Starts", super::words::local(tz, a.starts_at)),
        ("Ends", super::words::local(tz, a.ends_at)),
        ("Review due", a.review_due.format("%-d %B %Y").to_string()),
        ("Reason", a.reason.clone()),
        ("Decided by", a.decided_by.clone()),
        (
            "Equality advice sought",
            if a.equality_advice_sought {
                "Yes"
            } else {
                "No"
            }
            .into(),
        ),
        ("Advocate", a.advocate.clone().unwrap_or_else(none)),
        (
            "Explanation for the customer",
            a.customer_explanation.clone().unwrap_or_else(none),
        ),
        (
            "Revoked",
            match (&a.revoked_at, &a.revoked_reason) {
                (Some(t), Some(r)) => format!("{}: {r}", super::words::local(tz, *t)),
                (Some(t), None) => super::words::local(tz, *t),
                _ => "No".into(),
            },
        ),
    ]
}

fn windows_words(a: &Arrangement) -> String {
    let none = || "None".to_owned();
    if a.windows.is_empty() {
        none()
    } else {
        a.windows
            .iter()
            .map(|w| {
                let days: Vec<&str> = w.days.iter().map(|d| day_name(*d)).collect();
                format!("{} {}–{}", days.join(", "), w.start, w.end)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn allowance_words(a: &Arrangement) -> String {
    let none = || "None".to_owned();
    a.allowance
        .map(|al| {
            let per = match al.per {
                AllowancePeriod::Day => "day",
                AllowancePeriod::Week => "week",
            };
            format!("{} a {per}", al.count)
        })
        .unwrap_or_else(none)
}

fn staff_words(config: &Config, a: &Arrangement) -> String {
    let none = || "None".to_owned();
    if a.designated_staff.is_empty() {
        none()
    } else {
        a.designated_staff
            .iter()
            .map(|s| {
                config
                    .staff_member(s)
                    .map(|m| m.name.clone())
                    .unwrap_or_else(|| s.as_str().to_owned())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The fields that differ between two versions: (label, old, new).
pub fn changes(
    config: &Config,
    tz: Tz,
    old: &Arrangement,
    new: &Arrangement,
) -> Vec<(&'static str, String, String)> {
    fields_in_words(config, tz, old)
        .into_iter()
        .zip(fields_in_words(config, tz, new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((label, a), (_, b))| (label, a, b))
        .collect()
}

pub fn language_words(code: &str) -> &'static str {
    match code {
        "en" => "English",
        "cy" => "Welsh",
        "en+cy" => "English, then Welsh",
        "cy+en" => "Welsh, then English",
        _ => "Not known",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn checkboxes_and_windows_are_read_from_repeated_fields() {
        let f = ArrangementForm::from_pairs(&pairs(&[
            ("w0_days", "tue"),
            ("w0_days", "thu"),
            ("w0_start", "10:00"),
            ("w0_end", "12:00"),
            ("w2_days", "sat"),
            ("designated_staff", "alice"),
            ("designated_staff", "bob"),
            ("phone_numbers", "02920 123456\n\n+442079460123"),
        ]));
        assert_eq!(f.filled_slots(), vec![0, 2]);
        assert_eq!(f.designated_staff, ["alice", "bob"]);
        let body = f.to_body(chrono_tz::Europe::London, None);
        assert_eq!(
            body["windows"],
            json!([{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"},
                   {"days": ["sat"], "start": "", "end": ""}])
        );
        assert_eq!(
            body["phone_numbers"],
            json!(["02920 123456", "+442079460123"])
        );
    }

    #[test]
    fn dates_are_local_days_and_bad_ones_go_to_the_api_as_typed() {
        let mut f = ArrangementForm::blank();
        f.ends_at = DateParts {
            day: "1".into(),
            month: "7".into(),
            year: "2027".into(),
        };
        f.review_due = DateParts {
            day: "31".into(),
            month: "2".into(),
            year: "2027".into(),
        };
        let body = f.to_body(chrono_tz::Europe::London, None);
        // Midnight in London in summer is 23:00 UTC the day before.
        assert_eq!(body["ends_at"], json!("2027-06-30T23:00:00+00:00"));
        assert_eq!(body["review_due"], json!("2027-2-31"));
        assert!(body.get("starts_at").is_none());
    }

    #[test]
    fn api_errors_land_on_the_fields_they_belong_to() {
        let mut f = ArrangementForm::blank();
        f.windows[1].start = "12:00".into();
        f.phone_numbers = "02920 123456\nnot a number".into();
        let errors = vec![
            (
                "review_due".to_owned(),
                "must be on or before ends_at".to_owned(),
            ),
            (
                "windows[0].end".to_owned(),
                "must be later than start".to_owned(),
            ),
            (
                "phone_numbers[1]".to_owned(),
                "is not a phone number".to_owned(),
            ),
            (
                "windows[0].days".to_owned(),
                "must list one or more days".to_owned(),
            ),
        ];
        let p = f.problems(&errors);
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.field.as_str(), p.id.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("phone_numbers", "phone_numbers"),
                ("w1", "w1_days"),
                ("review_due", "review_due-day")
            ]
        );
        assert_eq!(
            p[0].message,
            "not a number is not a phone number: enter it like 02920 123456"
        );
        assert_eq!(
            p[1].message,
            "The end of times 2 must be later than its start"
        );
    }
}
