//! The decision engine: a pure function of (caller, arrangement or none, counted calls in the
//! current period, instant, organisation calendar) → decision. No I/O, no clock: the instant is
//! an argument. SPEC §4 steps 1–7.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{
    AllowancePeriod, Arrangement, ArrangementId, ArrangementKind, CallerId, StaffId, Window,
};

/// How many local days ahead `next_permitted_at` is searched for before giving up.
pub const SEARCH_DAYS: u32 = 800;

/// The organisation's calendar: its timezone and the local dates on which no window is open.
#[derive(Clone, Debug)]
pub struct Calendar {
    pub tz: Tz,
    pub closed_dates: BTreeSet<NaiveDate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Continue,
    Route,
    Refuse,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Continue => "continue",
            Outcome::Route => "route",
            Outcome::Refuse => "refuse",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    WithheldNumber,
    UnrecognisedNumber,
    NoArrangement,
    Blocked,
    OutsideWindow,
    AllowanceUsed,
    DesignatedStaff,
    WithinArrangement,
    LookupFailed,
    /// A label only, for the decision log and live calls: a refused caller pressed the
    /// safeguarding digit and was put through to the duty target (SPEC §14, src/urgent). The
    /// engine never decides it.
    UrgentRoute,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WithheldNumber => "withheld_number",
            Reason::UnrecognisedNumber => "unrecognised_number",
            Reason::NoArrangement => "no_arrangement",
            Reason::Blocked => "blocked",
            Reason::OutsideWindow => "outside_window",
            Reason::AllowanceUsed => "allowance_used",
            Reason::DesignatedStaff => "designated_staff",
            Reason::WithinArrangement => "within_arrangement",
            Reason::LookupFailed => "lookup_failed",
            Reason::UrgentRoute => "urgent_route",
        }
    }
}

/// What to do with one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    pub arrangement_id: Option<ArrangementId>,
    pub arrangement_version: Option<i64>,
    /// The designated member of staff, for `route`.
    pub route_to: Option<StaffId>,
    /// For `outside_window` and `allowance_used`: the first instant a call would be permitted.
    pub next_permitted_at: Option<DateTime<Utc>>,
}

impl Decision {
    /// A decision with no arrangement behind it.
    pub fn plain(outcome: Outcome, reason: Reason) -> Self {
        Decision {
            outcome,
            reason,
            arrangement_id: None,
            arrangement_version: None,
            route_to: None,
            next_permitted_at: None,
        }
    }

    /// A counted call: `continue` or `route` under an arrangement in force.
    pub fn is_counted(&self) -> bool {
        self.arrangement_id.is_some() && matches!(self.outcome, Outcome::Continue | Outcome::Route)
    }
}

/// Decide for one call. `counted` is the number of counted calls already made in the allowance
/// period containing `t` (ignored when the arrangement has no allowance).
///
/// The caller is expected to pass the arrangement found for the caller's number (or none); this
/// function does not check that the number belongs to it.
pub fn decide(
    caller: &CallerId,
    arrangement: Option<&Arrangement>,
    counted: u32,
    t: DateTime<Utc>,
    calendar: &Calendar,
) -> Decision {
    // Step 1: a number we cannot match.
    match caller {
        CallerId::Withheld => return Decision::plain(Outcome::Continue, Reason::WithheldNumber),
        CallerId::Unrecognised => {
            return Decision::plain(Outcome::Continue, Reason::UnrecognisedNumber)
        }
        CallerId::Number(_) => {}
    }
    // Step 2: nothing in force.
    let Some(arr) = arrangement.filter(|a| a.in_force_at(t)) else {
        return Decision::plain(Outcome::Continue, Reason::NoArrangement);
    };
    let under = |outcome: Outcome, reason: Reason| Decision {
        outcome,
        reason,
        arrangement_id: Some(arr.id.clone()),
        arrangement_version: Some(arr.version),
        route_to: None,
        next_permitted_at: None,
    };
    // Step 3: blocked.
    if arr.kind == ArrangementKind::Blocked {
        return under(Outcome::Refuse, Reason::Blocked);
    }
    // Step 4: outside every window, or on a closed date.
    if !arr.windows.is_empty() && !inside_windows(&arr.windows, t, calendar) {
        let mut d = under(Outcome::Refuse, Reason::OutsideWindow);
        d.next_permitted_at = next_window_opening(&arr.windows, t, calendar);
        return d;
    }
    // Step 5: allowance used up in this period.
    if let Some(allowance) = arr.allowance {
        if counted >= allowance.count {
            let (_, next_period) = period_bounds(allowance.per, t, calendar.tz);
            let mut d = under(Outcome::Refuse, Reason::AllowanceUsed);
            d.next_permitted_at = if arr.windows.is_empty() {
                Some(next_period)
            } else {
                first_permitted_at_or_after(&arr.windows, next_period, calendar)
            };
            return d;
        }
    }
    // Step 6: designated staff.
    if let Some(staff) = arr.designated_staff.first() {
        let mut d = under(Outcome::Route, Reason::DesignatedStaff);
        d.route_to = Some(staff.clone());
        return d;
    }
    // Step 7.
    under(Outcome::Continue, Reason::WithinArrangement)
}

/// Whether `t` is inside one of `windows` (wall-clock comparison, `start <= local time < end`)
/// on a local date that is not closed. An empty list of windows contains nothing.
pub fn inside_windows(windows: &[Window], t: DateTime<Utc>, calendar: &Calendar) -> bool {
    let local = t.with_timezone(&calendar.tz);
    let date = local.date_naive();
    if calendar.closed_dates.contains(&date) {
        return false;
    }
    let weekday = date.weekday();
    let secs = local.num_seconds_from_midnight();
    windows.iter().any(|w| {
        u32::from(w.start.minutes()) * 60 <= secs
            && secs < u32::from(w.end.minutes()) * 60
            && w.days.iter().any(|d| d.weekday() == weekday)
    })
}

/// The first instant strictly after `t` that is inside one of `windows` on an open date, or
/// `None` when no window opens within [`SEARCH_DAYS`] local days.
///
/// The answer is always an instant that exists: a window whose start falls in a spring-forward
/// gap opens at the first instant after the gap (if its end lies beyond the gap), and a window
/// that lies wholly inside the gap does not open that day.
pub fn next_window_opening(
    windows: &[Window],
    t: DateTime<Utc>,
    calendar: &Calendar,
) -> Option<DateTime<Utc>> {
    let mut date = t.with_timezone(&calendar.tz).date_naive();
    for _ in 0..SEARCH_DAYS {
        if let Some(u) = first_inside_on(windows, date, t, calendar) {
            return Some(u);
        }
        date = date.succ_opt()?;
    }
    None
}

/// `t` itself when it is inside a window on an open date, otherwise [`next_window_opening`].
pub fn first_permitted_at_or_after(
    windows: &[Window],
    t: DateTime<Utc>,
    calendar: &Calendar,
) -> Option<DateTime<Utc>> {
    if inside_windows(windows, t, calendar) {
        Some(t)
    } else {
        next_window_opening(windows, t, calendar)
    }
}

/// The earliest instant after `after` whose local date is `date` (or, for a window start in a
/// gap at the end of the day, the first instant after that gap) and which is inside a window.
///
/// Inside-ness only switches on where local time reaches a window's start, or where local time
/// jumps (a DST transition), so those instants are the only candidates.
fn first_inside_on(
    windows: &[Window],
    date: NaiveDate,
    after: DateTime<Utc>,
    calendar: &Calendar,
) -> Option<DateTime<Utc>> {
    if calendar.closed_dates.contains(&date) {
        return None;
    }
    let tz = calendar.tz;
    let weekday = date.weekday();
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |u: DateTime<Utc>| {
        if u > after && best.is_none_or(|b| u < b) && inside_windows(windows, u, calendar) {
            best = Some(u);
        }
    };
    for w in windows
        .iter()
        .filter(|w| w.days.iter().any(|d| d.weekday() == weekday))
    {
        let Some(naive) = local_naive(date, w.start.minutes()) else {
            continue;
        };
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(x) => consider(x.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => {
                consider(a.with_timezone(&Utc));
                consider(b.with_timezone(&Utc));
            }
            LocalResult::None => {
                if let Some(u) = first_existing_at_or_after(naive, tz) {
                    consider(u);
                }
            }
        }
    }
    if let Some(u) = transition_on(date, tz) {
        consider(u);
    }
    best
}

/// `date` at `minutes` past midnight, for `minutes < 1440`.
fn local_naive(date: NaiveDate, minutes: u16) -> Option<NaiveDateTime> {
    let m = u32::from(minutes);
    NaiveTime::from_hms_opt(m / 60, m % 60, 0).map(|time| date.and_time(time))
}

/// Seconds east of UTC in `tz` at the UTC instant `ts` (Unix seconds).
fn offset_at(tz: Tz, ts: i64) -> Option<i32> {
    let utc = DateTime::from_timestamp(ts, 0)?.naive_utc();
    Some(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// The first instant in `(lo, hi]` whose UTC offset differs from the offset at `lo`, when the
/// offsets at `lo` and `hi` differ (assumes at most one transition in the range).
fn transition_between(tz: Tz, lo: i64, hi: i64) -> Option<DateTime<Utc>> {
    let before = offset_at(tz, lo)?;
    if offset_at(tz, hi)? == before {
        return None;
    }
    let (mut lo, mut hi) = (lo, hi);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid)? == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

/// A change of UTC offset happening during local date `date`, if any.
fn transition_on(date: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    // Local date `date` lies within these UTC bounds for every offset between -14 h and +14 h.
    let midnight = date.and_time(NaiveTime::MIN).and_utc().timestamp();
    let lo = midnight - 14 * 3600;
    let hi = midnight + 38 * 3600;
    let u = transition_between(tz, lo, hi)?;
    (u.with_timezone(&tz).date_naive() == date).then_some(u)
}

/// The first instant whose local wall-clock time is at or after `naive`: the instant itself when
/// it exists (the earlier one when it happens twice), otherwise the end of the gap containing it.
pub fn first_existing_at_or_after(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(x) => Some(x.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
        LocalResult::None => {
            // The transition that skips `naive` lies within these bounds for any offset
            // between -14 h and +14 h and a gap of up to a day.
            let as_utc = naive.and_utc().timestamp();
            transition_between(tz, as_utc - 38 * 3600, as_utc + 14 * 3600)
        }
    }
}

/// The first instant of local date `date` in `tz`.
pub fn local_day_start(date: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    first_existing_at_or_after(date.and_time(NaiveTime::MIN), tz)
}

/// The start (inclusive) and end (exclusive) instants of the local day or ISO week containing
/// `t` in `tz`. A day may be 23 or 25 hours long; a local midnight that does not exist starts
/// its day at the first instant after the gap.
pub fn period_bounds(
    per: AllowancePeriod,
    t: DateTime<Utc>,
    tz: Tz,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let date = t.with_timezone(&tz).date_naive();
    let (first, days): (Option<NaiveDate>, u32) = match per {
        AllowancePeriod::Day => (Some(date), 1),
        AllowancePeriod::Week => (
            date.checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday()))),
            7,
        ),
    };
    let start = first.and_then(|d| local_day_start(d, tz));
    let end = first
        .and_then(|d| d.checked_add_days(Days::new(u64::from(days))))
        .and_then(|d| local_day_start(d, tz));
    match (start, end) {
        (Some(s), Some(e)) => (s, e),
        // Only at the edges of chrono's representable range.
        _ => (
            t,
            t.checked_add_signed(TimeDelta::days(i64::from(days)))
                .unwrap_or(t),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::{Allowance, Day, LanguageSetting, LocalTime, PhoneNumber};
    use proptest::prelude::*;

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

    fn london() -> Calendar {
        Calendar {
            tz: chrono_tz::Europe::London,
            closed_dates: BTreeSet::new(),
        }
    }

    fn london_closed(dates: &[&str]) -> Calendar {
        Calendar {
            tz: chrono_tz::Europe::London,
            closed_dates: dates.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    fn caller() -> CallerId {
        CallerId::Number(PhoneNumber::parse("+442920123456").unwrap())
    }

    fn restricted(
        windows: Vec<Window>,
        allowance: Option<Allowance>,
        staff: &[&str],
    ) -> Arrangement {
        Arrangement {
            id: ArrangementId::parse("arr_01JF0000000000000000000000").unwrap(),
            customer_ref: "PSOW-2026-00123".into(),
            customer_name: None,
            phone_numbers: vec![PhoneNumber::parse("+442920123456").unwrap()],
            kind: ArrangementKind::Restricted,
            windows,
            allowance,
            designated_staff: staff.iter().map(|s| StaffId::parse(s).unwrap()).collect(),
            max_call_minutes: None,
            language: LanguageSetting::En,
            reason: "test".into(),
            decided_by: "Director".into(),
            equality_advice_sought: false,
            advocate: None,
            starts_at: at("2020-01-01T00:00:00Z"),
            ends_at: at("2030-01-01T00:00:00Z"),
            review_due: "2029-01-01".parse().unwrap(),
            revoked_at: None,
            revoked_reason: None,
            created_at: at("2020-01-01T00:00:00Z"),
            updated_at: at("2020-01-01T00:00:00Z"),
            version: 3,
            customer_explanation: None,
            open_appeals: 0,
            urgent_route: true,
        }
    }

    fn tue_thu() -> Vec<Window> {
        vec![win(&[Day::Tue, Day::Thu], "10:00", "12:00")]
    }

    fn per(count: u32, per: AllowancePeriod) -> Option<Allowance> {
        Some(Allowance { count, per })
    }

    #[test]
    fn withheld_and_unrecognised_callers_continue() {
        let a = restricted(tue_thu(), None, &[]);
        let t = at("2026-12-02T10:30:00Z");
        let d = decide(&CallerId::Withheld, Some(&a), 0, t, &london());
        assert_eq!(
            d,
            Decision::plain(Outcome::Continue, Reason::WithheldNumber)
        );
        let d = decide(&CallerId::Unrecognised, Some(&a), 0, t, &london());
        assert_eq!(
            d,
            Decision::plain(Outcome::Continue, Reason::UnrecognisedNumber)
        );
        assert!(!d.is_counted());
    }

    #[test]
    fn no_arrangement_continues() {
        let d = decide(&caller(), None, 0, at("2026-12-02T10:30:00Z"), &london());
        assert_eq!(d, Decision::plain(Outcome::Continue, Reason::NoArrangement));
    }

    #[test]
    fn arrangements_not_in_force_are_ignored() {
        // Outside every window, so an arrangement in force would refuse.
        let t = at("2026-12-02T10:30:00Z");
        let mut scheduled = restricted(tue_thu(), None, &[]);
        scheduled.starts_at = at("2026-12-02T10:30:01Z");
        let mut expired = restricted(tue_thu(), None, &[]);
        expired.ends_at = t; // ends_at is exclusive
        let mut revoked = restricted(tue_thu(), None, &[]);
        revoked.revoked_at = Some(at("2026-12-02T10:00:00Z"));
        for a in [&scheduled, &expired, &revoked] {
            let d = decide(&caller(), Some(a), 0, t, &london());
            assert_eq!(d, Decision::plain(Outcome::Continue, Reason::NoArrangement));
        }
        // Just inside the bounds it is enforced.
        let mut starting = restricted(tue_thu(), None, &[]);
        starting.starts_at = t;
        let d = decide(&caller(), Some(&starting), 0, t, &london());
        assert_eq!(d.reason, Reason::OutsideWindow);
        let mut revoked_later = restricted(tue_thu(), None, &[]);
        revoked_later.revoked_at = Some(at("2026-12-02T10:30:01Z"));
        let d = decide(&caller(), Some(&revoked_later), 0, t, &london());
        assert_eq!(d.reason, Reason::OutsideWindow);
    }

    #[test]
    fn blocked_is_refused_without_next_permitted() {
        let mut a = restricted(tue_thu(), per(1, AllowancePeriod::Day), &["alice"]);
        a.kind = ArrangementKind::Blocked;
        let d = decide(
            &caller(),
            Some(&a),
            0,
            at("2026-12-01T10:30:00Z"),
            &london(),
        );
        assert_eq!(d.outcome, Outcome::Refuse);
        assert_eq!(d.reason, Reason::Blocked);
        assert_eq!(d.next_permitted_at, None);
        assert_eq!(d.route_to, None);
        assert_eq!(d.arrangement_id, Some(a.id.clone()));
        assert_eq!(d.arrangement_version, Some(3));
        assert!(!d.is_counted());
    }

    #[test]
    fn inside_a_window_continues_with_the_arrangement() {
        let a = restricted(tue_thu(), None, &[]);
        // Tuesday 1 December 2026, 10:00 GMT exactly (start is inclusive).
        let d = decide(
            &caller(),
            Some(&a),
            0,
            at("2026-12-01T10:00:00Z"),
            &london(),
        );
        assert_eq!(d.outcome, Outcome::Continue);
        assert_eq!(d.reason, Reason::WithinArrangement);
        assert_eq!(d.arrangement_id, Some(a.id.clone()));
        assert_eq!(d.arrangement_version, Some(3));
        assert_eq!(d.next_permitted_at, None);
        assert!(d.is_counted());
        let d = decide(
            &caller(),
            Some(&a),
            0,
            at("2026-12-01T11:59:59Z"),
            &london(),
        );
        assert_eq!(d.reason, Reason::WithinArrangement);
    }

    #[test]
    fn outside_a_window_is_refused_with_the_next_opening() {
        let a = restricted(tue_thu(), None, &[]);
        // Tuesday at 12:00 (end is exclusive): next is Thursday 10:00.
        let d = decide(
            &caller(),
            Some(&a),
            0,
            at("2026-12-01T12:00:00Z"),
            &london(),
        );
        assert_eq!(d.outcome, Outcome::Refuse);
        assert_eq!(d.reason, Reason::OutsideWindow);
        assert_eq!(d.next_permitted_at, Some(at("2026-12-03T10:00:00Z")));
        assert_eq!(d.arrangement_version, Some(3));
        // Monday evening: next is Tuesday 10:00.
        let d = decide(
            &caller(),
            Some(&a),
            0,
            at("2026-11-30T20:00:00Z"),
            &london(),
        );
        assert_eq!(d.next_permitted_at, Some(at("2026-12-01T10:00:00Z")));
        // Same day, before the window; in summer time (10:00 BST = 09:00 UTC).
        let d = decide(
            &caller(),
            Some(&a),
            0,
            at("2026-06-02T08:59:59Z"),
            &london(),
        );
        assert_eq!(d.reason, Reason::OutsideWindow);
        assert_eq!(d.next_permitted_at, Some(at("2026-06-02T09:00:00Z")));
    }

    #[test]
    fn earliest_of_several_windows_is_chosen() {
        let a = restricted(
            vec![
                win(&[Day::Mon], "14:00", "16:00"),
                win(&[Day::Mon, Day::Wed], "09:00", "10:00"),
                win(&[Day::Fri], "00:00", "01:00"),
            ],
            None,
            &[],
        );
        let cal = london();
        // Monday 30 Nov 2026 10:00 → Monday 14:00.
        let d = decide(&caller(), Some(&a), 0, at("2026-11-30T10:00:00Z"), &cal);
        assert_eq!(d.next_permitted_at, Some(at("2026-11-30T14:00:00Z")));
        // Monday 16:00 → Wednesday 09:00.
        let d = decide(&caller(), Some(&a), 0, at("2026-11-30T16:00:00Z"), &cal);
        assert_eq!(d.next_permitted_at, Some(at("2026-12-02T09:00:00Z")));
        // Wednesday 10:00 → Friday 00:00.
        let d = decide(&caller(), Some(&a), 0, at("2026-12-02T10:00:00Z"), &cal);
        assert_eq!(d.next_permitted_at, Some(at("2026-12-04T00:00:00Z")));
    }

    #[test]
    fn windows_may_end_at_midnight() {
        let a = restricted(vec![win(&[Day::Tue], "22:00", "24:00")], None, &[]);
        let cal = london();
        let d = decide(&caller(), Some(&a), 0, at("2026-12-01T23:59:59Z"), &cal);
        assert_eq!(d.reason, Reason::WithinArrangement);
        let d = decide(&caller(), Some(&a), 0, at("2026-12-01T22:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::WithinArrangement);
        // Midnight belongs to Wednesday.
        let d = decide(&caller(), Some(&a), 0, at("2026-12-02T00:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
        assert_eq!(d.next_permitted_at, Some(at("2026-12-08T22:00:00Z")));
        // A Tuesday and Wednesday window spanning midnight is continuous.
        let b = restricted(
            vec![
                win(&[Day::Tue], "22:00", "24:00"),
                win(&[Day::Wed], "00:00", "02:00"),
            ],
            None,
            &[],
        );
        let d = decide(&caller(), Some(&b), 0, at("2026-12-02T00:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::WithinArrangement);
    }

    #[test]
    fn closed_dates_refuse_and_are_skipped() {
        let a = restricted(tue_thu(), None, &[]);
        let cal = london_closed(&["2026-12-01", "2026-12-03"]);
        // Inside the window, but Tuesday 1 December is closed.
        let d = decide(&caller(), Some(&a), 0, at("2026-12-01T10:30:00Z"), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
        // Thursday 3 December is closed too: next Tuesday.
        assert_eq!(d.next_permitted_at, Some(at("2026-12-08T10:00:00Z")));
        // Closed dates do not matter when there are no windows.
        let b = restricted(vec![], per(2, AllowancePeriod::Day), &[]);
        let d = decide(&caller(), Some(&b), 1, at("2026-12-01T10:30:00Z"), &cal);
        assert_eq!(d.reason, Reason::WithinArrangement);
    }

    #[test]
    fn no_window_ever_opening_gives_no_next_permitted() {
        let a = restricted(vec![win(&[], "10:00", "12:00")], None, &[]);
        let d = decide(
            &caller(),
            Some(&a),
            0,
            at("2026-12-01T10:30:00Z"),
            &london(),
        );
        assert_eq!(d.reason, Reason::OutsideWindow);
        assert_eq!(d.next_permitted_at, None);
    }

    #[test]
    fn daily_allowance_without_windows() {
        let a = restricted(vec![], per(1, AllowancePeriod::Day), &[]);
        let cal = london();
        let d = decide(&caller(), Some(&a), 0, at("2026-12-01T15:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::WithinArrangement);
        let d = decide(&caller(), Some(&a), 1, at("2026-12-01T15:00:00Z"), &cal);
        assert_eq!(d.outcome, Outcome::Refuse);
        assert_eq!(d.reason, Reason::AllowanceUsed);
        assert_eq!(d.next_permitted_at, Some(at("2026-12-02T00:00:00Z")));
        // In summer the local day starts at 23:00 UTC.
        let d = decide(&caller(), Some(&a), 3, at("2026-06-02T22:30:00Z"), &cal);
        assert_eq!(d.next_permitted_at, Some(at("2026-06-02T23:00:00Z")));
        // A count of 2 permits a second call.
        let b = restricted(vec![], per(2, AllowancePeriod::Day), &[]);
        let d = decide(&caller(), Some(&b), 1, at("2026-12-01T15:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::WithinArrangement);
    }

    #[test]
    fn weekly_allowance_resets_on_monday() {
        let a = restricted(vec![], per(2, AllowancePeriod::Week), &[]);
        let cal = london();
        // Wednesday 25 March 2026 (GMT); next Monday 30 March 00:00 is BST = 29 March 23:00 UTC.
        let d = decide(&caller(), Some(&a), 2, at("2026-03-25T12:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::AllowanceUsed);
        assert_eq!(d.next_permitted_at, Some(at("2026-03-29T23:00:00Z")));
        // Monday itself is in the new week.
        let d = decide(&caller(), Some(&a), 2, at("2026-12-07T00:00:00Z"), &cal);
        assert_eq!(d.next_permitted_at, Some(at("2026-12-14T00:00:00Z")));
    }

    #[test]
    fn allowance_next_permitted_respects_windows_and_closed_dates() {
        let a = restricted(tue_thu(), per(1, AllowancePeriod::Day), &[]);
        let cal = london_closed(&["2026-12-03"]);
        // Used on Tuesday 1 December; Wednesday has no window and Thursday is closed.
        let d = decide(&caller(), Some(&a), 1, at("2026-12-01T10:30:00Z"), &cal);
        assert_eq!(d.reason, Reason::AllowanceUsed);
        assert_eq!(d.next_permitted_at, Some(at("2026-12-08T10:00:00Z")));
        // Weekly allowance used on Tuesday: next week's Tuesday window.
        let b = restricted(tue_thu(), per(1, AllowancePeriod::Week), &[]);
        let d = decide(
            &caller(),
            Some(&b),
            1,
            at("2026-12-01T10:30:00Z"),
            &london(),
        );
        assert_eq!(d.next_permitted_at, Some(at("2026-12-08T10:00:00Z")));
        // A window from midnight: the period start itself is permitted.
        let c = restricted(
            vec![win(&Day::ALL, "00:00", "06:00")],
            per(1, AllowancePeriod::Day),
            &[],
        );
        let d = decide(
            &caller(),
            Some(&c),
            1,
            at("2026-12-01T05:00:00Z"),
            &london(),
        );
        assert_eq!(d.next_permitted_at, Some(at("2026-12-02T00:00:00Z")));
        // Outside a window, the window refusal comes first.
        let d = decide(&caller(), Some(&a), 5, at("2026-12-01T13:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
    }

    #[test]
    fn designated_staff_routes_to_the_first() {
        let a = restricted(tue_thu(), per(1, AllowancePeriod::Day), &["bob", "alice"]);
        let d = decide(
            &caller(),
            Some(&a),
            0,
            at("2026-12-01T10:30:00Z"),
            &london(),
        );
        assert_eq!(d.outcome, Outcome::Route);
        assert_eq!(d.reason, Reason::DesignatedStaff);
        assert_eq!(d.route_to, Some(StaffId::parse("bob").unwrap()));
        assert_eq!(d.arrangement_version, Some(3));
        assert!(d.is_counted());
        // The allowance is checked before routing.
        let d = decide(
            &caller(),
            Some(&a),
            1,
            at("2026-12-01T10:30:00Z"),
            &london(),
        );
        assert_eq!(d.reason, Reason::AllowanceUsed);
        assert_eq!(d.route_to, None);
        // Without staff it continues.
        let b = restricted(tue_thu(), None, &[]);
        let d = decide(
            &caller(),
            Some(&b),
            0,
            at("2026-12-01T10:30:00Z"),
            &london(),
        );
        assert_eq!(d.outcome, Outcome::Continue);
        assert_eq!(d.route_to, None);
    }

    // ---- Daylight saving time, Europe/London 2026 ------------------------------------------

    #[test]
    fn spring_gap_window_is_not_open_that_day() {
        // Sunday 29 March 2026: 01:00 GMT jumps to 02:00 BST.
        let a = restricted(vec![win(&[Day::Sun], "01:00", "02:00")], None, &[]);
        let cal = london();
        let d = decide(&caller(), Some(&a), 0, at("2026-03-29T00:30:00Z"), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
        // 01:00 BST on Sunday 5 April.
        assert_eq!(d.next_permitted_at, Some(at("2026-04-05T00:00:00Z")));
        // The instant of the jump (local 02:00 BST) is not inside.
        let d = decide(&caller(), Some(&a), 0, at("2026-03-29T01:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
    }

    #[test]
    fn spring_gap_window_start_opens_at_the_first_existing_instant() {
        let a = restricted(vec![win(&[Day::Sun], "01:30", "03:00")], None, &[]);
        let cal = london();
        let d = decide(&caller(), Some(&a), 0, at("2026-03-29T00:30:00Z"), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
        // Local 01:30 does not exist; the first existing local time after it is 02:00 BST
        // (01:00 UTC), which is inside 01:30–03:00 by wall-clock comparison.
        let next = d.next_permitted_at.unwrap();
        assert_eq!(next, at("2026-03-29T01:00:00Z"));
        assert_eq!(
            next.with_timezone(&cal.tz).format("%H:%M %Z").to_string(),
            "02:00 BST"
        );
        let d = decide(&caller(), Some(&a), 0, next, &cal);
        assert_eq!(d.reason, Reason::WithinArrangement);
        let d = decide(&caller(), Some(&a), 0, next - TimeDelta::seconds(1), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
    }

    #[test]
    fn autumn_repeated_hour_is_inside_both_times() {
        // Sunday 25 October 2026: 02:00 BST goes back to 01:00 GMT.
        let a = restricted(vec![win(&[Day::Sun], "01:00", "02:00")], None, &[]);
        let cal = london();
        for t in [
            "2026-10-25T00:00:00Z", // 01:00 BST
            "2026-10-25T00:30:00Z", // 01:30 BST
            "2026-10-25T01:00:00Z", // 01:00 GMT
            "2026-10-25T01:59:59Z", // 01:59:59 GMT
        ] {
            let d = decide(&caller(), Some(&a), 0, at(t), &cal);
            assert_eq!(d.reason, Reason::WithinArrangement, "{t}");
        }
        let d = decide(&caller(), Some(&a), 0, at("2026-10-25T02:00:00Z"), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
        assert_eq!(d.next_permitted_at, Some(at("2026-11-01T01:00:00Z")));
        // Before the window: it opens at the first 01:00, in summer time.
        let d = decide(&caller(), Some(&a), 0, at("2026-10-24T23:59:00Z"), &cal);
        assert_eq!(d.next_permitted_at, Some(at("2026-10-25T00:00:00Z")));
    }

    #[test]
    fn autumn_repeated_hour_reopens_a_window_when_the_clock_goes_back() {
        let a = restricted(vec![win(&[Day::Sun], "00:30", "01:15")], None, &[]);
        let cal = london();
        // 01:20 BST is after the window, but at 01:00 UTC the clock reads 01:00 GMT again.
        let d = decide(&caller(), Some(&a), 0, at("2026-10-25T00:20:00Z"), &cal);
        assert_eq!(d.reason, Reason::OutsideWindow);
        assert_eq!(d.next_permitted_at, Some(at("2026-10-25T01:00:00Z")));
        // A window starting in the repeated hour opens at its first occurrence, then again.
        let b = restricted(vec![win(&[Day::Sun], "01:30", "01:45")], None, &[]);
        let d = decide(&caller(), Some(&b), 0, at("2026-10-25T00:00:00Z"), &cal);
        assert_eq!(d.next_permitted_at, Some(at("2026-10-25T00:30:00Z")));
        let d = decide(&caller(), Some(&b), 0, at("2026-10-25T00:45:00Z"), &cal);
        assert_eq!(d.next_permitted_at, Some(at("2026-10-25T01:30:00Z")));
    }

    #[test]
    fn day_periods_around_the_transitions() {
        let tz = chrono_tz::Europe::London;
        let (s, e) = period_bounds(AllowancePeriod::Day, at("2026-03-29T12:00:00Z"), tz);
        assert_eq!(
            (s, e),
            (at("2026-03-29T00:00:00Z"), at("2026-03-29T23:00:00Z"))
        );
        assert_eq!((e - s).num_hours(), 23);
        let (s, e) = period_bounds(AllowancePeriod::Day, at("2026-10-25T12:00:00Z"), tz);
        assert_eq!(
            (s, e),
            (at("2026-10-24T23:00:00Z"), at("2026-10-26T00:00:00Z"))
        );
        assert_eq!((e - s).num_hours(), 25);
        // Both occurrences of 01:30 on 25 October belong to that day.
        for t in ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"] {
            let (s2, e2) = period_bounds(AllowancePeriod::Day, at(t), tz);
            assert_eq!((s2, e2), (s, e));
        }
        // The boundaries themselves.
        let (s, _) = period_bounds(AllowancePeriod::Day, at("2026-03-29T23:00:00Z"), tz);
        assert_eq!(s, at("2026-03-29T23:00:00Z"));
        let (_, e) = period_bounds(AllowancePeriod::Day, at("2026-03-29T22:59:59Z"), tz);
        assert_eq!(e, at("2026-03-29T23:00:00Z"));
    }

    #[test]
    fn week_periods_around_the_transitions() {
        let tz = chrono_tz::Europe::London;
        // The week of Monday 23 March 2026 ends on Monday 30 March 00:00 BST.
        let (s, e) = period_bounds(AllowancePeriod::Week, at("2026-03-29T12:00:00Z"), tz);
        assert_eq!(
            (s, e),
            (at("2026-03-23T00:00:00Z"), at("2026-03-29T23:00:00Z"))
        );
        assert_eq!((e - s).num_hours(), 7 * 24 - 1);
        // The week of Monday 19 October 2026 starts in BST and ends in GMT.
        let (s, e) = period_bounds(AllowancePeriod::Week, at("2026-10-25T01:30:00Z"), tz);
        assert_eq!(
            (s, e),
            (at("2026-10-18T23:00:00Z"), at("2026-10-26T00:00:00Z"))
        );
        assert_eq!((e - s).num_hours(), 7 * 24 + 1);
        // Monday 00:00 local belongs to the new week.
        let (s, _) = period_bounds(AllowancePeriod::Week, at("2026-10-18T23:00:00Z"), tz);
        assert_eq!(s, at("2026-10-18T23:00:00Z"));
    }

    #[test]
    fn a_missing_local_midnight_starts_the_day_after_the_gap() {
        // São Paulo skipped 00:00–01:00 on 4 November 2018 (−03 → −02).
        let tz = chrono_tz::America::Sao_Paulo;
        let (s, e) = period_bounds(AllowancePeriod::Day, at("2018-11-04T15:00:00Z"), tz);
        assert_eq!(s, at("2018-11-04T03:00:00Z"));
        assert_eq!(e, at("2018-11-05T02:00:00Z"));
        assert_eq!(s.with_timezone(&tz).format("%H:%M").to_string(), "01:00");
        // The day before is 24 hours and ends where this one starts.
        let (s0, e0) = period_bounds(AllowancePeriod::Day, at("2018-11-03T15:00:00Z"), tz);
        assert_eq!((s0, e0), (at("2018-11-03T03:00:00Z"), s));
    }

    // ---- Property: next_permitted_at is the first permitted instant --------------------------

    /// Independent check of "inside": wall-clock minutes of the local time.
    fn oracle_inside(windows: &[Window], t: DateTime<Utc>, cal: &Calendar) -> bool {
        let local = t.with_timezone(&cal.tz);
        if cal.closed_dates.contains(&local.date_naive()) {
            return false;
        }
        let day = Day::from_weekday(local.weekday());
        let minute = (local.hour() * 60 + local.minute()) as u16;
        windows.iter().any(|w| {
            w.days.contains(&day) && w.start.minutes() <= minute && minute < w.end.minutes()
        })
    }

    fn window_strategy() -> impl Strategy<Value = Window> {
        // Half-hour boundaries from 00:00 to 24:00 so that DST edges (01:00, 01:30, 02:00) occur.
        // Half of the bounds fall between 00:00 and 03:00, where the transitions are.
        let bound = || prop_oneof![0u16..=48, 0u16..=6];
        (prop::collection::vec(0usize..7, 0..4), bound(), bound()).prop_map(|(days, a, b)| {
            let start = a.min(b).min(47);
            let end = a.max(b).max(start + 1);
            let mut ds: Vec<Day> = days.into_iter().map(|i| Day::ALL[i]).collect();
            ds.sort();
            ds.dedup();
            Window {
                days: ds,
                start: LocalTime::from_minutes(start * 30).unwrap(),
                end: LocalTime::from_minutes(end * 30).unwrap(),
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn next_permitted_is_the_first_permitted_instant(
            windows in prop::collection::vec(window_strategy(), 1..4),
            autumn in any::<bool>(),
            // A third of the instants fall within three hours of the transition (base + 7 d 1 h).
            offset_minutes in prop_oneof![
                2 => 0i64..(14 * 24 * 60),
                1 => (7 * 24 * 60 + 60 - 180i64)..(7 * 24 * 60 + 60 + 180),
            ],
            second in 0i64..60,
            closed in prop::collection::vec(0u64..21, 0..4),
            staff in any::<bool>(),
        ) {
            // Two weeks around each 2026 Europe/London transition.
            let base = if autumn { at("2026-10-18T00:00:00Z") } else { at("2026-03-22T00:00:00Z") };
            let t = base + TimeDelta::minutes(offset_minutes) + TimeDelta::seconds(second);
            let base_date = base.date_naive();
            let cal = Calendar {
                tz: chrono_tz::Europe::London,
                closed_dates: closed.iter().map(|d| base_date + Days::new(*d)).collect(),
            };
            let a = restricted(windows.clone(), None, if staff { &["alice"] } else { &[] });
            let d = decide(&caller(), Some(&a), 0, t, &cal);
            match d.outcome {
                Outcome::Continue | Outcome::Route => {
                    prop_assert!(oracle_inside(&windows, t, &cal));
                    prop_assert_eq!(d.outcome == Outcome::Route, staff);
                    prop_assert_eq!(d.next_permitted_at, None);
                }
                Outcome::Refuse => {
                    prop_assert_eq!(d.reason, Reason::OutsideWindow);
                    prop_assert!(!oracle_inside(&windows, t, &cal));
                    // Step minute by minute from the next whole minute after t.
                    let first_minute = t - TimeDelta::seconds(second) + TimeDelta::minutes(1);
                    match d.next_permitted_at {
                        Some(next) => {
                            prop_assert!(next > t);
                            prop_assert!(oracle_inside(&windows, next, &cal));
                            prop_assert!(!cal.closed_dates.contains(
                                &next.with_timezone(&cal.tz).date_naive()));
                            prop_assert_eq!(next.timestamp() % 60, 0);
                            let mut u = first_minute;
                            while u < next {
                                prop_assert!(!oracle_inside(&windows, u, &cal), "earlier {u}");
                                u += TimeDelta::minutes(1);
                            }
                        }
                        None => {
                            // Nothing opens in the next five weeks either.
                            let mut u = first_minute;
                            let until = t + TimeDelta::days(35);
                            while u < until {
                                prop_assert!(!oracle_inside(&windows, u, &cal), "missed {u}");
                                u += TimeDelta::minutes(1);
                            }
                        }
                    }
                }
            }
        }
    }
}
