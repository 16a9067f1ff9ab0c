//! The spoken explanations of a refusal, in English and Welsh, with configurable overrides.
//!
//! [`Messages::render`] gives one text per spoken language, in speaking order. Built-in texts
//! name the organisation, state the permitted days and times and, when known, the next time the
//! caller may call, as local time in the organisation's timezone ("Tuesday 1 December at
//! 10:00", "dydd Mawrth 1 Rhagfyr am 10:00").
//!
//! # Overrides
//!
//! `[messages.en]` and `[messages.cy]` replace the built-in text of a key for that language. An
//! override may use these placeholders, replaced when the message is rendered:
//!
//! * `{organisation}` — the organisation's name (`organisation.name`);
//! * `{next_permitted}` — the next permitted call, e.g. `Tuesday 1 December at 10:00`, or an
//!   empty string when there is none (a block, or no window ever opens);
//! * `{windows}` — the permitted days and times, e.g. `Tuesdays and Thursdays, 10:00 to 12:00`
//!   (several windows are joined with `; `), or `at any time` / `ar unrhyw adeg` without windows;
//! * `{allowance}` — e.g. `one call each day` / `un alwad y dydd`, or an empty string without an
//!   allowance.
//!
//! Any other text in braces is left as written. Placeholders are rendered in the language of
//! the override they appear in.
//!
//! # Conventions
//!
//! * A window boundary of `00:00` or `24:00` is read as "midnight" / "hanner nos"; other times,
//!   and the time of the next permitted call, are written `HH:MM`, which text-to-speech reads
//!   as a time.
//! * Texts are plain sentences without markup; escaping for a platform's XML is the provider
//!   layer's job.
//! * A refusal with reason `lookup_failed` (when `decision.on_lookup_failure = "refuse"`) is
//!   spoken with [`MessageKey::ServiceUnavailable`], a generic "we cannot take your call right
//!   now" text, because the caller may have no arrangement at all; `[messages.en]` /
//!   `[messages.cy]` `service_unavailable` overrides it.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Allowance, AllowancePeriod, Day, Language, LanguageSetting, LocalTime, Window,
};
use crate::engine::{Decision, Outcome, Reason};
use crate::fields::{Fields, Optional};

/// `[messages.en]` / `[messages.cy]`: the operator's own wording of the built-in texts.
#[derive(Clone, Debug, Default)]
pub struct MessageOverrides {
    pub en: HashMap<MessageKey, String>,
    pub cy: HashMap<MessageKey, String>,
}

/// The configuration keys of the texts that may be overridden.
const OVERRIDABLE: [(&str, MessageKey); 6] = [
    ("outside_window", MessageKey::OutsideWindow),
    ("allowance_used", MessageKey::AllowanceUsed),
    ("blocked", MessageKey::Blocked),
    ("staff_unavailable", MessageKey::StaffUnavailable),
    ("service_unavailable", MessageKey::ServiceUnavailable),
    ("urgent_offer", MessageKey::UrgentOffer),
];

impl MessageOverrides {
    /// Read `[messages]` (a table of `en` and `cy` tables of texts).
    pub fn read(messages: &mut Fields<'_>) -> Option<MessageOverrides> {
        let before = messages.problem_count();
        let mut out = MessageOverrides::default();
        for lang in ["en", "cy"] {
            let mut texts = messages.section(lang);
            let mut map = HashMap::new();
            for (key, message) in OVERRIDABLE {
                let present = texts.has(key);
                let problems = texts.problem_count();
                match texts.text(key, Optional, 2000) {
                    Some(text) => {
                        map.insert(message, text);
                    }
                    // Empty or blank: an override that would say nothing.
                    None if present && texts.problem_count() == problems => {
                        texts.problem(key, "must not be empty")
                    }
                    None => {}
                }
            }
            messages.absorb(texts);
            if lang == "en" {
                out.en = map;
            } else {
                out.cy = map;
            }
        }
        (messages.problem_count() == before).then_some(out)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKey {
    OutsideWindow,
    AllowanceUsed,
    Blocked,
    StaffUnavailable,
    /// A refusal because the arrangement could not be looked up (`lookup_failed`).
    ServiceUnavailable,
    /// The safeguarding offer spoken after a refusal (SPEC §14); `{digit}` is the key to press
    /// (filled in by src/urgent).
    UrgentOffer,
}

impl MessageKey {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKey::OutsideWindow => "outside_window",
            MessageKey::AllowanceUsed => "allowance_used",
            MessageKey::Blocked => "blocked",
            MessageKey::StaffUnavailable => "staff_unavailable",
            MessageKey::ServiceUnavailable => "service_unavailable",
            MessageKey::UrgentOffer => "urgent_offer",
        }
    }
}

/// One text to be spoken, in one language.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpokenMessage {
    pub language: Language,
    pub text: String,
}

/// What a message may mention.
#[derive(Clone, Debug)]
pub struct MessageContext<'a> {
    /// The organisation's name; when empty, the name given to [`Messages::new`] is used.
    pub organisation: &'a str,
    pub tz: Tz,
    pub windows: &'a [Window],
    pub allowance: Option<Allowance>,
    pub next_permitted_at: Option<DateTime<Utc>>,
}

/// The message key for a decision: `Some` only for a refusal.
///
/// `lookup_failed` maps to [`MessageKey::ServiceUnavailable`] (see the module documentation).
pub fn message_key(decision: &Decision) -> Option<MessageKey> {
    if decision.outcome != Outcome::Refuse {
        return None;
    }
    match decision.reason {
        Reason::OutsideWindow => Some(MessageKey::OutsideWindow),
        Reason::AllowanceUsed => Some(MessageKey::AllowanceUsed),
        Reason::Blocked => Some(MessageKey::Blocked),
        Reason::LookupFailed => Some(MessageKey::ServiceUnavailable),
        Reason::WithheldNumber
        | Reason::UnrecognisedNumber
        | Reason::NoArrangement
        | Reason::DesignatedStaff
        | Reason::WithinArrangement
        | Reason::UrgentRoute => None,
    }
}

/// The texts of one organisation: built-in English and Welsh, with its overrides.
#[derive(Clone, Debug)]
pub struct Messages {
    organisation: String,
    en: HashMap<MessageKey, String>,
    cy: HashMap<MessageKey, String>,
}

impl Messages {
    pub fn new(org_name: &str, overrides: &MessageOverrides) -> Self {
        Messages {
            organisation: org_name.to_owned(),
            en: overrides.en.clone(),
            cy: overrides.cy.clone(),
        }
    }

    /// One message per language, in speaking order.
    pub fn render(
        &self,
        key: MessageKey,
        languages: LanguageSetting,
        ctx: &MessageContext,
    ) -> Vec<SpokenMessage> {
        languages
            .spoken()
            .iter()
            .map(|&language| SpokenMessage {
                language,
                text: self.render_one(key, language, ctx),
            })
            .collect()
    }

    fn render_one(&self, key: MessageKey, language: Language, ctx: &MessageContext) -> String {
        let org = if ctx.organisation.trim().is_empty() {
            self.organisation.as_str()
        } else {
            ctx.organisation
        };
        let overrides = match language {
            Language::En => &self.en,
            Language::Cy => &self.cy,
        };
        if let Some(template) = overrides.get(&key) {
            return fill(template, language, org, ctx);
        }
        match language {
            Language::En => english(key, org, ctx),
            Language::Cy => welsh(key, org, ctx),
        }
    }
}

/// Replace the known placeholders of an override; anything else in braces is kept.
fn fill(template: &str, language: Language, org: &str, ctx: &MessageContext) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            rest = after;
            break;
        };
        let name = &after[1..close];
        let value = match name {
            "organisation" => Some(org.to_owned()),
            "next_permitted" => Some(
                ctx.next_permitted_at
                    .map(|t| when(language, t, ctx.tz))
                    .unwrap_or_default(),
            ),
            "windows" => Some(windows_text(language, ctx.windows)),
            "allowance" => Some(
                ctx.allowance
                    .map(|a| allowance_text(language, a))
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&after[..=close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// Built-in texts
// ---------------------------------------------------------------------------------------------

fn english(key: MessageKey, org: &str, ctx: &MessageContext) -> String {
    let next = ctx
        .next_permitted_at
        .map(|t| {
            format!(
                " The next time you can call us is {}.",
                when(Language::En, t, ctx.tz)
            )
        })
        .unwrap_or_default();
    match key {
        MessageKey::OutsideWindow => format!(
            "Thank you for calling {org}. Under your contact arrangement, we can take your calls \
             at these times: {}.{next} Goodbye.",
            windows_text(Language::En, ctx.windows)
        ),
        MessageKey::AllowanceUsed => {
            let allowed = ctx
                .allowance
                .map(|a| {
                    format!(
                        " Your contact arrangement allows {}, and you have already reached that \
                         limit.",
                        allowance_text(Language::En, a)
                    )
                })
                .unwrap_or_else(|| {
                    " You have already made the calls your contact arrangement allows for now."
                        .to_owned()
                });
            format!("Thank you for calling {org}.{allowed}{next} Goodbye.")
        }
        MessageKey::Blocked => format!(
            "Thank you for calling {org}. We are not able to take your call on this line. \
             Please contact us in writing instead. Goodbye."
        ),
        MessageKey::StaffUnavailable => format!(
            "Thank you for calling {org}. The member of staff who deals with your calls is not \
             available at the moment. Please try again later. Goodbye."
        ),
        MessageKey::ServiceUnavailable => format!(
            "Thank you for calling {org}. We are sorry, we cannot take your call at the moment. \
             Please try again later. Goodbye."
        ),
        MessageKey::UrgentOffer => "If someone is at risk of harm, press {digit} now to speak to \
             the duty manager."
            .to_owned(),
    }
}

fn welsh(key: MessageKey, org: &str, ctx: &MessageContext) -> String {
    let next = ctx
        .next_permitted_at
        .map(|t| {
            format!(
                " Yr amser nesaf y gallwch ein ffonio yw {}.",
                when(Language::Cy, t, ctx.tz)
            )
        })
        .unwrap_or_default();
    match key {
        MessageKey::OutsideWindow => format!(
            "Diolch am ffonio {org}. Dan eich trefniant cyswllt, gallwn dderbyn eich galwadau ar \
             yr adegau hyn: {}.{next} Hwyl fawr.",
            windows_text(Language::Cy, ctx.windows)
        ),
        MessageKey::AllowanceUsed => {
            let allowed = ctx
                .allowance
                .map(|a| {
                    format!(
                        " Mae eich trefniant cyswllt yn caniatáu {}, ac rydych eisoes wedi \
                         cyrraedd y terfyn hwnnw.",
                        allowance_text(Language::Cy, a)
                    )
                })
                .unwrap_or_else(|| {
                    " Rydych eisoes wedi gwneud y galwadau y mae eich trefniant cyswllt yn eu \
                     caniatáu am y tro."
                        .to_owned()
                });
            format!("Diolch am ffonio {org}.{allowed}{next} Hwyl fawr.")
        }
        MessageKey::Blocked => format!(
            "Diolch am ffonio {org}. Nid ydym yn gallu derbyn eich galwad ar y llinell hon. \
             Cysylltwch â ni yn ysgrifenedig, os gwelwch yn dda. Hwyl fawr."
        ),
        MessageKey::StaffUnavailable => format!(
            "Diolch am ffonio {org}. Nid yw'r aelod o staff sy'n delio â'ch galwadau ar gael ar \
             hyn o bryd. Ffoniwch eto yn nes ymlaen, os gwelwch yn dda. Hwyl fawr."
        ),
        MessageKey::ServiceUnavailable => format!(
            "Diolch am ffonio {org}. Mae'n ddrwg gennym, ni allwn dderbyn eich galwad ar hyn o \
             bryd. Ffoniwch eto yn nes ymlaen, os gwelwch yn dda. Hwyl fawr."
        ),
        MessageKey::UrgentOffer => "Os oes rhywun mewn perygl o niwed, pwyswch {digit} nawr i \
             siarad â'r rheolwr ar ddyletswydd."
            .to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Pieces: dates, times, windows, allowances
// ---------------------------------------------------------------------------------------------

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const CY_MONTHS: [&str; 12] = [
    "Ionawr",
    "Chwefror",
    "Mawrth",
    "Ebrill",
    "Mai",
    "Mehefin",
    "Gorffennaf",
    "Awst",
    "Medi",
    "Hydref",
    "Tachwedd",
    "Rhagfyr",
];

fn en_day(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn cy_day(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "dydd Llun",
        Weekday::Tue => "dydd Mawrth",
        Weekday::Wed => "dydd Mercher",
        Weekday::Thu => "dydd Iau",
        Weekday::Fri => "dydd Gwener",
        Weekday::Sat => "dydd Sadwrn",
        Weekday::Sun => "dydd Sul",
    }
}

/// An instant in words, in local time: "Tuesday 1 December at 10:00" /
/// "dydd Mawrth 1 Rhagfyr am 10:00".
pub fn when(language: Language, t: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    let month = local.month0() as usize % 12;
    let (h, m, d) = (local.hour(), local.minute(), local.day());
    match language {
        Language::En => format!(
            "{} {d} {} at {h:02}:{m:02}",
            en_day(local.weekday()),
            EN_MONTHS[month]
        ),
        Language::Cy => format!(
            "{} {d} {} am {h:02}:{m:02}",
            cy_day(local.weekday()),
            CY_MONTHS[month]
        ),
    }
}

fn boundary(language: Language, t: LocalTime) -> String {
    if t == LocalTime::MIDNIGHT || t == LocalTime::END_OF_DAY {
        match language {
            Language::En => "midnight".to_owned(),
            Language::Cy => "hanner nos".to_owned(),
        }
    } else {
        t.to_string()
    }
}

/// Join a list the way it is spoken: "A", "A and B", "A, B and C".
fn join_list(items: &[String], and: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {and} {last}", init.join(", ")),
    }
}

fn days_text(language: Language, days: &[Day]) -> String {
    let mut sorted: Vec<Day> = days.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() == 7 {
        return match language {
            Language::En => "every day".to_owned(),
            Language::Cy => "bob dydd".to_owned(),
        };
    }
    if sorted == [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri] {
        return match language {
            Language::En => "Monday to Friday".to_owned(),
            Language::Cy => "dydd Llun i ddydd Gwener".to_owned(),
        };
    }
    let names: Vec<String> = sorted
        .iter()
        .map(|d| match language {
            Language::En => format!("{}s", en_day(d.weekday())),
            Language::Cy => cy_day(d.weekday()).to_owned(),
        })
        .collect();
    match language {
        Language::En => join_list(&names, "and"),
        Language::Cy => join_list(&names, "a"),
    }
}

/// The permitted days and times: "Tuesdays and Thursdays, 10:00 to 12:00".
pub fn windows_text(language: Language, windows: &[Window]) -> String {
    let parts: Vec<String> = windows
        .iter()
        .filter(|w| !w.days.is_empty())
        .map(|w| {
            let (start, end) = (boundary(language, w.start), boundary(language, w.end));
            match language {
                Language::En => format!("{}, {start} to {end}", days_text(language, &w.days)),
                Language::Cy => format!("{}, {start} tan {end}", days_text(language, &w.days)),
            }
        })
        .collect();
    if parts.is_empty() {
        return match language {
            Language::En => "at any time".to_owned(),
            Language::Cy => "ar unrhyw adeg".to_owned(),
        };
    }
    parts.join("; ")
}

/// How many calls are allowed: "one call each day" / "un alwad y dydd".
pub fn allowance_text(language: Language, a: Allowance) -> String {
    match language {
        Language::En => {
            let n = match a.count {
                1 => "one".to_owned(),
                2 => "two".to_owned(),
                3 => "three".to_owned(),
                4 => "four".to_owned(),
                5 => "five".to_owned(),
                n => n.to_string(),
            };
            let calls = if a.count == 1 { "call" } else { "calls" };
            let per = match a.per {
                AllowancePeriod::Day => "day",
                AllowancePeriod::Week => "week",
            };
            format!("{n} {calls} each {per}")
        }
        Language::Cy => {
            // "galwad" is feminine; the noun stays singular after a numeral.
            let calls = match a.count {
                1 => "un alwad".to_owned(),
                2 => "dwy alwad".to_owned(),
                3 => "tair galwad".to_owned(),
                4 => "pedair galwad".to_owned(),
                5 => "pum galwad".to_owned(),
                n => format!("{n} galwad"),
            };
            let per = match a.per {
                AllowancePeriod::Day => "y dydd",
                AllowancePeriod::Week => "yr wythnos",
            };
            format!("{calls} {per}")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::engine::Decision;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn win(days: &[Day], start: &str, end: &str) -> Window {
        Window {
            days: days.to_vec(),
            start: LocalTime::parse(start).unwrap(),
            end: LocalTime::parse(end).unwrap(),
        }
    }

    const LONDON: Tz = chrono_tz::Europe::London;

    fn ctx<'a>(windows: &'a [Window], next: Option<&str>) -> MessageContext<'a> {
        MessageContext {
            organisation: "Public Services Ombudsman for Wales",
            tz: LONDON,
            windows,
            allowance: Some(Allowance {
                count: 1,
                per: AllowancePeriod::Day,
            }),
            next_permitted_at: next.map(at),
        }
    }

    fn plain() -> Messages {
        Messages::new("Example Ombudsman", &MessageOverrides::default())
    }

    #[test]
    fn the_example_date_in_both_languages() {
        let t = at("2026-12-01T10:00:00Z");
        assert_eq!(when(Language::En, t, LONDON), "Tuesday 1 December at 10:00");
        assert_eq!(
            when(Language::Cy, t, LONDON),
            "dydd Mawrth 1 Rhagfyr am 10:00"
        );
        // Local time, not UTC: 10:00 BST is 09:00 UTC.
        let s = at("2026-06-04T09:00:00Z");
        assert_eq!(when(Language::En, s, LONDON), "Thursday 4 June at 10:00");
        assert_eq!(when(Language::Cy, s, LONDON), "dydd Iau 4 Mehefin am 10:00");
    }

    #[test]
    fn english_outside_window_states_times_and_next_call() {
        let windows = [win(&[Day::Tue, Day::Thu], "10:00", "12:00")];
        let out = plain().render(
            MessageKey::OutsideWindow,
            LanguageSetting::En,
            &ctx(&windows, Some("2026-12-01T10:00:00Z")),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].language, Language::En);
        assert_eq!(
            out[0].text,
            "Thank you for calling Public Services Ombudsman for Wales. Under your contact \
             arrangement, we can take your calls at these times: Tuesdays and Thursdays, 10:00 \
             to 12:00. The next time you can call us is Tuesday 1 December at 10:00. Goodbye."
        );
    }

    #[test]
    fn welsh_outside_window_states_times_and_next_call() {
        let windows = [win(&[Day::Tue, Day::Thu], "10:00", "12:00")];
        let out = plain().render(
            MessageKey::OutsideWindow,
            LanguageSetting::Cy,
            &ctx(&windows, Some("2026-12-01T10:00:00Z")),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].language, Language::Cy);
        let text = &out[0].text;
        assert!(text.starts_with("Diolch am ffonio Public Services Ombudsman for Wales."));
        assert!(
            text.contains("dydd Mawrth a dydd Iau, 10:00 tan 12:00"),
            "{text}"
        );
        assert!(
            text.contains("yw dydd Mawrth 1 Rhagfyr am 10:00."),
            "{text}"
        );
    }

    #[test]
    fn bilingual_messages_follow_the_configured_order() {
        let windows = [win(&[Day::Tue], "10:00", "12:00")];
        let c = ctx(&windows, Some("2026-12-01T10:00:00Z"));
        let cy_en = plain().render(MessageKey::OutsideWindow, LanguageSetting::CyEn, &c);
        let langs: Vec<Language> = cy_en.iter().map(|m| m.language).collect();
        assert_eq!(langs, [Language::Cy, Language::En]);
        assert!(cy_en[0].text.starts_with("Diolch"));
        assert!(cy_en[1].text.starts_with("Thank you"));
        let en_cy = plain().render(MessageKey::Blocked, LanguageSetting::EnCy, &c);
        let langs: Vec<Language> = en_cy.iter().map(|m| m.language).collect();
        assert_eq!(langs, [Language::En, Language::Cy]);
    }

    #[test]
    fn allowance_and_midnight_wording() {
        let windows = [
            win(&[Day::Mon, Day::Wed, Day::Fri], "22:00", "24:00"),
            win(&Day::ALL, "00:00", "06:00"),
            win(
                &[Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
                "09:30",
                "10:00",
            ),
        ];
        assert_eq!(
            windows_text(Language::En, &windows),
            "Mondays, Wednesdays and Fridays, 22:00 to midnight; every day, midnight to 06:00; \
             Monday to Friday, 09:30 to 10:00"
        );
        assert_eq!(
            windows_text(Language::Cy, &windows),
            "dydd Llun, dydd Mercher a dydd Gwener, 22:00 tan hanner nos; bob dydd, hanner nos \
             tan 06:00; dydd Llun i ddydd Gwener, 09:30 tan 10:00"
        );
        let day = Allowance {
            count: 1,
            per: AllowancePeriod::Day,
        };
        let week = Allowance {
            count: 2,
            per: AllowancePeriod::Week,
        };
        assert_eq!(allowance_text(Language::En, day), "one call each day");
        assert_eq!(allowance_text(Language::En, week), "two calls each week");
        assert_eq!(allowance_text(Language::Cy, day), "un alwad y dydd");
        assert_eq!(allowance_text(Language::Cy, week), "dwy alwad yr wythnos");
        let out = plain().render(
            MessageKey::AllowanceUsed,
            LanguageSetting::EnCy,
            &ctx(&[], Some("2026-12-02T00:00:00Z")),
        );
        assert!(
            out[0].text.contains("allows one call each day"),
            "{}",
            out[0].text
        );
        assert!(
            out[0].text.contains("Wednesday 2 December at 00:00"),
            "{}",
            out[0].text
        );
        assert!(out[1].text.contains("un alwad y dydd"), "{}", out[1].text);
        assert!(
            out[1].text.contains("dydd Mercher 2 Rhagfyr am 00:00"),
            "{}",
            out[1].text
        );
    }

    #[test]
    fn no_next_permitted_sentence_without_an_instant() {
        let out = plain().render(MessageKey::Blocked, LanguageSetting::En, &ctx(&[], None));
        assert!(out[0].text.contains("Public Services Ombudsman for Wales"));
        assert!(!out[0].text.contains("next time"));
        assert!(!out[0].text.contains('<') && !out[0].text.contains('{'));
    }

    #[test]
    fn overrides_replace_built_in_texts_with_placeholders() {
        let mut overrides = MessageOverrides::default();
        overrides.en.insert(
            MessageKey::OutsideWindow,
            "{organisation}: call {windows}. Next: {next_permitted}. Limit {allowance}. {other}"
                .to_owned(),
        );
        overrides.cy.insert(
            MessageKey::OutsideWindow,
            "{organisation}: {windows}; {next_permitted}; {allowance}".to_owned(),
        );
        let m = Messages::new("Example Ombudsman", &overrides);
        let windows = [win(&[Day::Tue], "10:00", "12:00")];
        let mut c = ctx(&windows, Some("2026-12-01T10:00:00Z"));
        c.organisation = "";
        let out = m.render(MessageKey::OutsideWindow, LanguageSetting::EnCy, &c);
        assert_eq!(
            out[0].text,
            "Example Ombudsman: call Tuesdays, 10:00 to 12:00. Next: Tuesday 1 December at \
             10:00. Limit one call each day. {other}"
        );
        assert_eq!(
            out[1].text,
            "Example Ombudsman: dydd Mawrth, 10:00 tan 12:00; dydd Mawrth 1 Rhagfyr am 10:00; \
             un alwad y dydd"
        );
        // Keys without an override keep the built-in text.
        let out = m.render(MessageKey::Blocked, LanguageSetting::En, &c);
        assert!(out[0]
            .text
            .starts_with("Thank you for calling Example Ombudsman."));
        // An unterminated brace is kept as written.
        assert_eq!(fill("a {b", Language::En, "O", &c), "a {b");
    }

    #[test]
    fn message_keys_for_decisions() {
        let refuse = |r| Decision::plain(Outcome::Refuse, r);
        assert_eq!(
            message_key(&refuse(Reason::OutsideWindow)),
            Some(MessageKey::OutsideWindow)
        );
        assert_eq!(
            message_key(&refuse(Reason::AllowanceUsed)),
            Some(MessageKey::AllowanceUsed)
        );
        assert_eq!(
            message_key(&refuse(Reason::Blocked)),
            Some(MessageKey::Blocked)
        );
        assert_eq!(
            message_key(&refuse(Reason::LookupFailed)),
            Some(MessageKey::ServiceUnavailable)
        );
        assert_eq!(
            message_key(&Decision::plain(Outcome::Continue, Reason::LookupFailed)),
            None
        );
        assert_eq!(
            message_key(&Decision::plain(Outcome::Route, Reason::DesignatedStaff)),
            None
        );
        assert_eq!(
            MessageKey::ServiceUnavailable.as_str(),
            "service_unavailable"
        );
    }
}
