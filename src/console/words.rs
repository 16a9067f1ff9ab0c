//! Plain words for what the records hold: reasons, decisions, outcomes, arrangements, times.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::domain::{AllowancePeriod, Arrangement, ArrangementKind, Day};
use crate::domain::{ReviewOutcome, TerminationReason};
use crate::engine::{Outcome, Reason};

/// The label and (optional) hint of a reason for ending a call, as the agent reads them.
pub fn termination_reason(r: TerminationReason) -> (&'static str, Option<&'static str>) {
    match r {
        TerminationReason::Aggressive => ("They were aggressive", None),
        TerminationReason::Abusive => ("They were abusive", None),
        TerminationReason::Offensive => ("They were offensive", None),
        TerminationReason::Swearing => ("They kept swearing", None),
        TerminationReason::NotLettingStaffSpeak => ("They would not let me speak", None),
        TerminationReason::Sexist => ("They made sexist remarks", None),
        TerminationReason::Racist => ("They made racist remarks", None),
        TerminationReason::UpsettingStaff => ("They were upsetting me or other staff", None),
        TerminationReason::ThreatOfViolence => (
            "They threatened violence",
            Some("You do not have to warn them first. A manager will consider telling the police."),
        ),
        TerminationReason::UnreasonableDemands => ("They made unreasonable demands", None),
        TerminationReason::Other => ("Something else", Some("Say what happened in the notes.")),
    }
}

pub fn review_outcome(o: ReviewOutcome) -> &'static str {
    match o {
        ReviewOutcome::NoFurtherAction => "No further action",
        ReviewOutcome::WriteToCustomer => "Write to the customer",
        ReviewOutcome::ProposeArrangement => "Propose a contact arrangement",
        ReviewOutcome::ReferToPolice => "Refer to the police",
    }
}

/// What Fairline did with a call, in words.
pub fn decision(
    config: &Config,
    outcome: Outcome,
    reason: Reason,
    route_to: Option<&crate::domain::StaffId>,
) -> String {
    match outcome {
        Outcome::Continue => match reason {
            Reason::LookupFailed => "Let through (the arrangements could not be checked)".into(),
            _ => "Let through to the normal call flow".into(),
        },
        Outcome::Route => {
            let who = route_to
                .map(|id| {
                    config
                        .staff_member(id)
                        .map(|s| s.name.clone())
                        .unwrap_or_else(|| id.as_str().to_owned())
                })
                .unwrap_or_else(|| "the designated member of staff".into());
            format!("Put through to {who}")
        }
        Outcome::Refuse => match reason {
            Reason::Blocked => "Refused: the caller may not call".into(),
            Reason::OutsideWindow => "Refused: outside the caller's permitted times".into(),
            Reason::AllowanceUsed => "Refused: the caller has used their calls".into(),
            Reason::LookupFailed => "Refused (the arrangements could not be checked)".into(),
            _ => "Refused".into(),
        },
    }
}

fn day_plural(d: Day) -> &'static str {
    match d {
        Day::Mon => "Mondays",
        Day::Tue => "Tuesdays",
        Day::Wed => "Wednesdays",
        Day::Thu => "Thursdays",
        Day::Fri => "Fridays",
        Day::Sat => "Saturdays",
        Day::Sun => "Sundays",
    }
}

/// "a, b and c"
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn count_words(n: u32) -> String {
    match n {
        1 => "One call".into(),
        2 => "Two calls".into(),
        3 => "Three calls".into(),
        n => format!("{n} calls"),
    }
}

/// The rules of an arrangement in plain words, e.g. "Calls on Tuesdays and Thursdays, 10:00
/// to 12:00. One call a day. All calls go to Alice Jones."
pub fn arrangement_rules(config: &Config, a: &Arrangement) -> String {
    if a.kind == ArrangementKind::Blocked {
        return "No calls at all.".into();
    }
    let mut parts = Vec::new();
    if !a.windows.is_empty() {
        let windows: Vec<String> = a
            .windows
            .iter()
            .map(|w| {
                let days: Vec<String> = w.days.iter().map(|d| day_plural(*d).to_owned()).collect();
                format!("{}, {} to {}", and_list(&days), w.start, w.end)
            })
            .collect();
        parts.push(format!("Calls on {}.", windows.join("; ")));
    }
    if let Some(al) = a.allowance {
        let per = match al.per {
            AllowancePeriod::Day => "a day",
            AllowancePeriod::Week => "a week",
        };
        parts.push(format!("{} {per}.", count_words(al.count)));
    }
    if let Some(first) = a.designated_staff.first() {
        let name = config
            .staff_member(first)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| first.as_str().to_owned());
        parts.push(format!("All calls go to {name}."));
    }
    if let Some(m) = a.max_call_minutes {
        parts.push(format!("Calls last at most {m} minutes."));
    }
    parts.join(" ")
}

/// An instant in the organisation's local time, e.g. "Mon 7 Dec 2026, 14:05".
pub fn local(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M")
        .to_string()
}

/// Just the local clock time, e.g. "14:05:09".
pub fn local_time(tz: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz).format("%H:%M:%S").to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_like_english() {
        assert_eq!(and_list(&["a".into()]), "a");
        assert_eq!(and_list(&["a".into(), "b".into()]), "a and b");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}
